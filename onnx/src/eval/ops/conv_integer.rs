//! ConvInteger: a convolution of 8-bit integers less their zero points, returned as int32 values (held
//! as i64), exact as ONNX Runtime's. Where the CPU has 8-bit products (AVX-512 VNNI) and the
//! convolution has one group and 32 filters or more, `conv_integer_packed` computes it in integers.
//! Otherwise by the float convolution (`conv_gemm`) in f32 wherever every sum it forms is an integer
//! below 2^24 ([`exact_depth`] of the operands' largest values): the whole window at once, or the
//! input channels in slices whose results are added in f64. The weight, packed or less its zero point,
//! is made once per session. Other cases (values past 2^15, a grouped convolution too deep for f32)
//! take f64 throughout.

use candle_core::{DType, Device, Tensor};

use super::super::node::{Node, optional, required};
use super::conv_gemm::Windows2d;
use super::conv_integer_packed;
use super::int8_gemm::PackedInt8;
use super::integer_product::exact_depth;
use super::spatial::{conv, conv_windows};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

/// Above this magnitude an operand is not read as f32: a product of two such values stays below 2^30,
/// and a window of one element is then still exact in f64 slices.
const F32_MAGNITUDE: f32 = 32768.0;

/// The weight as the CPU's 8-bit products read it where they can, else as f32 where that is exact.
struct Weight {
    packed: Option<PackedInt8>,
    float: Option<FloatWeight>,
}

/// The weight less its zero point, as f32 in its own shape, and its largest magnitude.
struct FloatWeight {
    values: Tensor,
    largest: f32,
}

pub fn conv_integer(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (x, w) = (required(inputs, 0)?, required(inputs, 1)?);
    let (x_zero, w_zero) = (optional(inputs, 2), optional(inputs, 3));
    let on_cpu = matches!(x.device(), Device::Cpu) && matches!(w.device(), Device::Cpu);
    if on_cpu && w.rank() >= 3 && x_zero.is_none_or(|z| z.elem_count() == 1) {
        let mut sources = vec![w];
        sources.extend(w_zero);
        let one_group = node.int("group", 1) == 1;
        let weight = node.derive(&sources, || {
            let packed = match one_group {
                true => conv_integer_packed::pack(w, w_zero)?,
                false => None,
            };
            let float = match packed {
                None => float_weight(w, w_zero)?,
                Some(_) => None,
            };
            Ok(Weight { packed, float })
        })?;
        if let Some(packed) = &weight.packed {
            if x.rank() == w.rank() && x.dim(1)? == w.dim(1)? {
                let (kernel, strides, dilations, pads) = conv_windows(node, x, w)?;
                let windows = Windows2d::new(&x.dims()[2..], &kernel, &strides, &dilations, &pads);
                let m = w.dim(0)?;
                if let Some(y) = conv_integer_packed::conv(x, x_zero, packed, m, &windows)? {
                    return Ok(vec![y]);
                }
            }
        } else if let Some(float) = weight.float.as_ref()
            && let Some(y) = in_f32(node, x, x_zero, float)?
        {
            return Ok(vec![y]);
        }
    }
    in_f64(node, (x, x_zero), (w, w_zero))
}

fn float_weight(w: &Tensor, zero: Option<&Tensor>) -> Result<Option<FloatWeight>, ModelError> {
    let values = less_zero(w, zero, DType::F32)?;
    let largest = values.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
    Ok((largest <= F32_MAGNITUDE).then_some(FloatWeight { values, largest }))
}

/// `t` less its zero point (one value, or one per output channel of a weight) in `dtype`.
fn less_zero(t: &Tensor, zero: Option<&Tensor>, dtype: DType) -> Result<Tensor, ModelError> {
    let t = t.to_dtype(dtype)?;
    let Some(zero) = zero else {
        return Ok(t);
    };
    let zero = zero.to_dtype(dtype)?;
    let zero = if zero.elem_count() > 1 && t.rank() > 1 {
        let mut shape = vec![1; t.rank()];
        shape[0] = zero.elem_count();
        zero.reshape(shape)?
    } else {
        zero.flatten_all()?.reshape(())?
    };
    Ok(t.broadcast_sub(&zero)?)
}

/// The input less its zero point as f32, and its largest magnitude, in one pass over its values.
fn input_less_zero(x: &Tensor, zero: Option<&Tensor>) -> Result<(Tensor, f32), ModelError> {
    let zero = match zero {
        Some(z) => z.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?[0],
        None => 0.0,
    };
    let flat = x.flatten_all()?;
    let values: Vec<f32> = match flat.dtype() {
        DType::U8 => flat.to_vec1::<u8>()?.into_iter().map(f32::from).collect(),
        DType::I64 => flat
            .to_vec1::<i64>()?
            .into_iter()
            .map(|v| v as f32)
            .collect(),
        _ => flat.to_dtype(DType::F32)?.to_vec1::<f32>()?,
    };
    let mut largest = 0f32;
    let values: Vec<f32> = values
        .into_iter()
        .map(|v| {
            let v = v - zero;
            largest = largest.max(v.abs());
            v
        })
        .collect();
    Ok((Tensor::from_vec(values, x.shape(), x.device())?, largest))
}

/// The convolution in f32 when its sums are exact there, else `None`.
fn in_f32(
    node: &Node<'_>,
    x: &Tensor,
    x_zero: Option<&Tensor>,
    weight: &FloatWeight,
) -> Result<Option<Tensor>, ModelError> {
    let (x, x_largest) = input_less_zero(x, x_zero)?;
    if x_largest > F32_MAGNITUDE {
        return Ok(None);
    }
    let w = &weight.values;
    let depth = exact_depth(x_largest, weight.largest);
    let window: usize = w.dims()[2..].iter().product();
    let per_group = w.dim(1)?;
    let as_integers = |y: Tensor| -> Result<Tensor, ModelError> { Ok(y.to_dtype(DType::I64)?) };
    if per_group * window <= depth {
        let y = conv(node, &[Some(x), Some(w.clone())])?;
        return y.into_iter().next().map(as_integers).transpose();
    }
    let groups = node.int("group", 1);
    if groups != 1 || window > depth || x.rank() != w.rank() || x.dim(1)? != per_group {
        return Ok(None);
    }
    // Input channels in slices of at most `depth` terms per sum, the slices' exact results added in f64.
    let channels = (depth / window).max(1);
    let mut total: Option<Tensor> = None;
    for start in (0..per_group).step_by(channels) {
        let len = channels.min(per_group - start);
        let part = conv(
            node,
            &[
                Some(x.narrow(1, start, len)?.contiguous()?),
                Some(w.narrow(1, start, len)?.contiguous()?),
            ],
        )?;
        let Some(part) = part.into_iter().next() else {
            return Ok(None);
        };
        let part = part.to_dtype(DType::F64)?;
        total = Some(match total {
            Some(t) => (t + part)?,
            None => part,
        });
    }
    total.map(as_integers).transpose()
}

/// Every case: f64 throughout (exact for any 8-bit operands and windows up to 2^37 terms).
fn in_f64(
    node: &Node<'_>,
    (x, x_zero): (&Tensor, Option<&Tensor>),
    (w, w_zero): (&Tensor, Option<&Tensor>),
) -> Out {
    let x = less_zero(x, x_zero, DType::F64)?;
    let w = less_zero(w, w_zero, DType::F64)?;
    let y = conv(node, &[Some(x), Some(w)])?;
    y.into_iter()
        .map(|t| Ok(t.round()?.to_dtype(DType::I64)?))
        .collect()
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};
    use proptest::prelude::*;

    use super::super::conv_integer_packed::tests::definition;
    use super::super::testing::{int, ints, run};

    #[test]
    fn conv_integer_subtracts_the_zero_point() {
        let x = Some(Tensor::new(&[[[[3u8, 5]]]], &Device::Cpu).unwrap());
        let w = Some(Tensor::new(&[[[[1u8, 2]]]], &Device::Cpu).unwrap());
        let zp = Some(Tensor::new(1u8, &Device::Cpu).unwrap());
        let out = run("ConvInteger", 10, vec![], &[x, w, zp]);
        // (3-1)·1 + (5-1)·2
        assert_eq!(
            out[0].flatten_all().unwrap().to_vec1::<i64>().unwrap(),
            vec![10]
        );
    }

    proptest! {
        /// Against the definition in integers, with windows deep enough that one f32 sum would round
        /// (so the channel slices are used), per-channel weight zero points, padding and strides.
        #[test]
        fn equals_the_integer_definition(
            (c, m, size) in (1usize..90, 1usize..4, 2usize..5),
            seed in any::<u64>(),
            stride in 1usize..3,
            per_channel in any::<bool>(),
        ) {
            let value = |i: usize| (((i as u64).wrapping_mul(seed | 1) >> 17) % 256) as i64;
            let (k, pad) = (3usize, 1usize);
            let x: Vec<i64> = (0..c * size * size).map(value).collect();
            let w: Vec<i64> = (0..m * c * k * k).map(|i| value(i + 333) - 128).collect();
            let x_zero = value(7);
            let w_zero: Vec<i64> = (0..if per_channel { m } else { 1 }).map(|j| value(j + 9) % 5 - 2).collect();
            let tensor = |v: &[i64], shape: &[usize]| Some(Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap());
            let w_zero_shape: &[usize] = if per_channel { &[m] } else { &[] };
            let out = run(
                "ConvInteger",
                10,
                vec![ints("pads", &[1, 1, 1, 1]), ints("strides", &[stride as i64, stride as i64]), int("group", 1)],
                &[
                    tensor(&x, &[1, c, size, size]),
                    tensor(&w, &[m, c, k, k]),
                    tensor(&[x_zero], &[]),
                    tensor(&w_zero, w_zero_shape),
                ],
            );
            let out_size = (size + 2 * pad - k) / stride + 1;
            let got = out[0].flatten_all().unwrap().to_vec1::<i64>().unwrap();
            prop_assert_eq!(got.len(), m * out_size * out_size);
            let expected = definition(
                (&x, (c, size, size)),
                (&w, (m, k, k)),
                (x_zero, &w_zero),
                (stride, 1, pad),
            );
            prop_assert_eq!(got, expected);
        }
    }
}
