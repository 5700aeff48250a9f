//! Linear (de)quantization, per tensor or per axis: what int8 weight-only variants are built from.

use candle_core::{DType, Tensor};

use super::super::float8::Float8;
use super::super::node::{Node, axis, optional, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// Scale and zero point shaped to broadcast against `x` along `axis` when they are 1-D, or expanded
/// block by block along it when `block_size` is set (they then have x's rank). Any other shape is
/// refused, as ONNX Runtime refuses it: broadcast against x, a `[1330, 1]` scale made a `[512]` input's
/// result 1,330 times its size (found by the evaluator's fuzzer: 16 MB from 7 kB under a 2 MB limit).
fn per_axis(node: &Node<'_>, x: &Tensor, t: &Tensor) -> Result<Tensor, ModelError> {
    let block = node.int("block_size", 0);
    if block > 0 {
        let dim = axis(node.int("axis", 1), x.rank())?;
        let len = x.dim(dim)?;
        let blocks = len.div_ceil(block as usize);
        // As ONNX Runtime checks: the parameters have x's dimensions but along the axis, where they have
        // one a block (another dimension of theirs would broadcast x's result to its multiple).
        let mut needed = x.dims().to_vec();
        needed[dim] = blocks;
        if t.dims() != needed {
            return Err(ModelError::Evaluation(format!(
                "blocked quantization of {:?} in blocks of {block} along axis {dim} needs parameters \
                 of shape {needed:?} ({blocks} blocks there), not {:?}",
                x.dims(),
                t.dims()
            )));
        }
        let owners: Vec<u32> = (0..len).map(|i| (i / block as usize) as u32).collect();
        let owners = Tensor::from_vec(owners, len, t.device())?;
        return Ok(t.index_select(&owners, dim)?);
    }
    match t.dims() {
        [] | [1] => Ok(t.clone()),
        &[n] => {
            let dim = axis(node.int("axis", 1), x.rank())?;
            if n != x.dim(dim)? {
                return Err(ModelError::Evaluation(format!(
                    "per-axis quantization of {:?} along axis {dim} needs {} scales (and zero points), \
                     not {n}",
                    x.dims(),
                    x.dim(dim)?
                )));
            }
            let mut shape = vec![1; x.rank()];
            shape[dim] = n;
            Ok(t.reshape(shape)?)
        }
        dims => Err(ModelError::Evaluation(format!(
            "a quantization's scale and zero point are a scalar, or 1-D along its axis (or, with \
             block_size, of its input's rank), not of shape {dims:?}"
        ))),
    }
}

/// y = (x - zero_point) · scale
pub fn dequantize_linear(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let scale = per_axis(node, x, required(inputs, 1)?)?;
    let wide = x.to_dtype(DType::F32)?;
    let int32 = node.input_type(0) == Some(crate::proto::tensor_proto::DataType::Int32 as i32);
    let shifted = match optional(inputs, 2) {
        // An int32 less its zero point wraps, as ONNX Runtime subtracts them (-2147483647 - 3 is
        // 2147483646), before it is scaled.
        Some(zp) if int32 && x.dtype() == DType::I64 => {
            let difference = x.broadcast_sub(&per_axis(node, x, zp)?.to_dtype(DType::I64)?)?;
            super::elementwise::map_i64(&difference, |v| i64::from(v as i32))?
                .to_dtype(DType::F32)?
        }
        Some(zp) => wide.broadcast_sub(&per_axis(node, x, zp)?.to_dtype(DType::F32)?)?,
        None => wide,
    };
    Ok(vec![
        shifted
            .broadcast_mul(&scale.to_dtype(DType::F32)?)?
            .to_dtype(scale.dtype())?,
    ])
}

/// What QuantizeLinear produces: an integer range (and the dtype that holds it) or an 8-bit float grid.
enum Target {
    Integer(f64, f64, DType),
    Float8(Float8),
}

/// The quantized type: `output_dtype`, else the zero point's declared type, else (no declaration) int8
/// for a zero point held as i64 and uint8 otherwise.
fn target(node: &Node<'_>, zp: Option<&Tensor>) -> Result<Target, ModelError> {
    use crate::proto::tensor_proto::DataType as T;
    let declared = match node.int("output_dtype", 0) {
        0 => zp.and_then(|_| node.input_type(2)),
        t => Some(t as i32),
    };
    let element = declared.unwrap_or(match zp.map(Tensor::dtype) {
        Some(DType::I64) => T::Int8 as i32,
        _ => T::Uint8 as i32,
    });
    if let Some(format) = Float8::of(element) {
        return Ok(Target::Float8(format));
    }
    Ok(match T::try_from(element) {
        Ok(T::Uint8) => Target::Integer(0.0, 255.0, DType::U8),
        Ok(T::Int8) => Target::Integer(-128.0, 127.0, DType::I64),
        Ok(T::Uint16) => Target::Integer(0.0, 65535.0, DType::I64),
        Ok(T::Int16) => Target::Integer(-32768.0, 32767.0, DType::I64),
        Ok(T::Uint4) => Target::Integer(0.0, 15.0, DType::I64),
        Ok(T::Int4) => Target::Integer(-8.0, 7.0, DType::I64),
        _ => {
            return Err(ModelError::Evaluation(format!(
                "QuantizeLinear to element type {element}"
            )));
        }
    })
}

/// y = saturate(round_half_even(x / scale) + zero_point) for integer types; x / scale rounded onto the
/// grid for 8-bit floats (whose zero point is 0).
pub fn quantize_linear(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    let scale = per_axis(node, x, required(inputs, 1)?)?.to_dtype(DType::F64)?;
    let zp = optional(inputs, 2);
    let target = target(node, zp)?;
    // A float x is divided in its own precision, as ONNX's reference does, so halves round alike.
    let scaled = if x.dtype().is_float() {
        x.broadcast_div(&scale.to_dtype(x.dtype())?)?
            .to_dtype(DType::F64)?
    } else {
        x.to_dtype(DType::F64)?.broadcast_div(&scale)?
    };
    let shape = scaled.shape().clone();
    let scaled = scaled.flatten_all()?.to_vec1::<f64>()?;
    let (lo, hi, dtype) = match target {
        Target::Integer(lo, hi, dtype) => (lo, hi, dtype),
        Target::Float8(format) => {
            let saturate = node.int("saturate", 1) != 0;
            let values: Vec<f32> = scaled
                .into_iter()
                .map(|v| format.round(v as f32, saturate))
                .collect();
            return Ok(vec![Tensor::from_vec(values, shape, x.device())?]);
        }
    };
    let zp = match zp {
        Some(z) => per_axis(node, x, z)?
            .to_dtype(DType::F64)?
            .broadcast_as(&shape)?
            .flatten_all()?
            .to_vec1::<f64>()?,
        None => vec![0.0; shape.elem_count()],
    };
    let values: Vec<f64> = scaled
        .into_iter()
        .zip(zp)
        // NaN is the type's least value, as ONNX Runtime quantizes it.
        .map(|(v, z)| {
            if v.is_nan() {
                lo
            } else {
                (v.round_ties_even() + z).clamp(lo, hi)
            }
        })
        .collect();
    Ok(vec![
        Tensor::from_vec(values, shape, x.device())?.to_dtype(dtype)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, run};

    #[test]
    fn dequantize_per_channel_along_axis_0() {
        let x =
            Some(candle_core::Tensor::new(&[[2u8, 4], [6, 8]], &candle_core::Device::Cpu).unwrap());
        let scale = f32s(&[0.5, 2.0], &[2]);
        let out = run(
            "DequantizeLinear",
            13,
            vec![super::super::testing::int("axis", 0)],
            &[x, scale],
        );
        assert_eq!(
            out[0].to_vec2::<f32>().unwrap(),
            vec![vec![1., 2.], vec![12., 16.]]
        );
    }

    #[test]
    fn dequantize_expands_each_block_parameter_over_its_block() {
        let x = Some(candle_core::Tensor::new(&[[1u8, 1, 1]], &candle_core::Device::Cpu).unwrap());
        let scale = f32s(&[2.0, 3.0], &[1, 2]);
        let out = run(
            "DequantizeLinear",
            21,
            vec![
                super::super::testing::int("axis", 1),
                super::super::testing::int("block_size", 2),
            ],
            &[x, scale],
        );
        assert_eq!(out[0].to_vec2::<f32>().unwrap(), vec![vec![2., 2., 3.]]);
    }

    /// A scale of another shape than ONNX's is refused rather than broadcast: a `[1330, 1]` scale made a
    /// `[512]` input's result 1,330 times its size (the evaluator's fuzzer).
    #[test]
    fn a_scale_neither_scalar_nor_along_the_axis_is_refused() {
        use super::super::testing::error;
        let x = f32s(&[1.0; 4], &[4]);
        let e = error(
            "QuantizeLinear",
            11,
            vec![],
            &[x.clone(), f32s(&[1.0; 3], &[3, 1])],
        );
        assert!(e.contains("not of shape [3, 1]"), "{e}");
        let e = error(
            "QuantizeLinear",
            13,
            vec![super::super::testing::int("axis", 0)],
            &[x.clone(), f32s(&[1.0; 3], &[3])],
        );
        assert!(e.contains("needs 4 scales"), "{e}");
        let blocked = vec![
            super::super::testing::int("axis", 1),
            super::super::testing::int("block_size", 4),
        ];
        let wide = f32s(&[1.0; 4], &[1, 4]);
        let e = error(
            "QuantizeLinear",
            21,
            blocked,
            &[wide, f32s(&[1.0; 3], &[3, 1])],
        );
        assert!(e.contains("of shape [1, 1]"), "{e}");
        let one = run("QuantizeLinear", 13, vec![], &[x, f32s(&[2.0], &[1])]);
        assert_eq!(one[0].dims(), &[4]);
    }

    #[test]
    fn quantize_saturates_to_the_declared_output_dtype() {
        let out = run(
            "QuantizeLinear",
            21,
            vec![super::super::testing::int("output_dtype", 5)],
            &[f32s(&[40000.0, -300.0], &[2]), f32s(&[1.0], &[])],
        );
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), vec![32767, -300]);
    }

    #[test]
    fn quantize_rounds_half_to_even_and_saturates() {
        let out = run(
            "QuantizeLinear",
            13,
            vec![],
            &[f32s(&[0.5, 1.5, 300.0, -1.0], &[4]), f32s(&[1.0], &[])],
        );
        assert_eq!(out[0].to_vec1::<u8>().unwrap(), vec![0, 2, 255, 0]);
    }
}
