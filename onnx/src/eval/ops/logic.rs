//! Comparisons, boolean logic, and the variadic Max/Min/Sum/Mean; booleans are u8 (0 or 1).

use candle_core::{DType, Tensor};

use super::super::node::{Node, required};
use crate::ModelError;

type Out = Result<Vec<Tensor>, ModelError>;

pub fn greater_or_equal(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![
        required(inputs, 0)?.broadcast_ge(required(inputs, 1)?)?,
    ])
}

pub fn less_or_equal(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![
        required(inputs, 0)?.broadcast_le(required(inputs, 1)?)?,
    ])
}

fn as_bool(t: &Tensor) -> Result<Tensor, ModelError> {
    Ok(t.ne(&t.zeros_like()?)?.to_dtype(DType::U8)?)
}

pub fn and(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (a, b) = (
        as_bool(required(inputs, 0)?)?,
        as_bool(required(inputs, 1)?)?,
    );
    Ok(vec![a.broadcast_mul(&b)?])
}

pub fn or(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (a, b) = (
        as_bool(required(inputs, 0)?)?,
        as_bool(required(inputs, 1)?)?,
    );
    Ok(vec![a.broadcast_maximum(&b)?])
}

pub fn xor(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (a, b) = (
        as_bool(required(inputs, 0)?)?,
        as_bool(required(inputs, 1)?)?,
    );
    Ok(vec![a.broadcast_ne(&b)?])
}

pub fn not(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    Ok(vec![x.eq(&x.zeros_like()?)?])
}

pub fn is_nan(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?;
    Ok(vec![x.ne(x)?])
}

pub fn is_inf(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let x = required(inputs, 0)?.to_dtype(DType::F64)?;
    let (pos, neg) = (
        node.int("detect_positive", 1) != 0,
        node.int("detect_negative", 1) != 0,
    );
    let values: Vec<u8> = x
        .flatten_all()?
        .to_vec1::<f64>()?
        .into_iter()
        .map(|v| u8::from((pos && v == f64::INFINITY) || (neg && v == f64::NEG_INFINITY)))
        .collect();
    Ok(vec![Tensor::from_vec(values, x.shape(), x.device())?])
}

fn fold(
    inputs: &[Option<Tensor>],
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor, ModelError>,
) -> Result<Tensor, ModelError> {
    let mut parts = inputs.iter().flatten();
    let first = parts
        .next()
        .ok_or_else(|| ModelError::Evaluation("no inputs".to_owned()))?;
    // Every shape checked against the others before anything is computed: the sum of the first few
    // was made, then found not to broadcast with the next (`[257] + [1086, 1] + [483]`: 13.6 MB under
    // a 2 MB run limit, found by fuzzing, before the error), and the memory bound skips such a node.
    inputs
        .iter()
        .flatten()
        .try_fold(first.shape().clone(), |shape, t| {
            shape.broadcast_shape_binary_op(t.shape(), "a variadic operator")
        })?;
    let mut acc = first.clone();
    for t in parts {
        acc = f(&acc, t)?;
    }
    Ok(acc)
}

pub fn max(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![fold(inputs, |a, b| {
        extreme(a, b, f32::max, Tensor::broadcast_maximum)
    })?])
}

pub fn min(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![fold(inputs, |a, b| {
        extreme(a, b, f32::min, Tensor::broadcast_minimum)
    })?])
}

/// The larger (or smaller) of each pair, a NaN on either side giving NaN as in ONNX Runtime (Rust's and
/// candle's max take the number).
fn extreme(
    a: &Tensor,
    b: &Tensor,
    of_f32: fn(f32, f32) -> f32,
    of_tensors: fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
) -> Result<Tensor, ModelError> {
    let f = move |x: f32, y: f32| {
        if x.is_nan() || y.is_nan() {
            f32::NAN
        } else {
            of_f32(x, y)
        }
    };
    if let Some(y) = super::cpu_f32::binary(a, b, f) {
        return y;
    }
    let mut out = of_tensors(a, b)?;
    if out.dtype().is_float() {
        for t in [a, b] {
            let spread = t.broadcast_as(out.shape())?;
            out = spread.ne(&spread)?.where_cond(&spread, &out)?;
        }
    }
    Ok(out)
}

/// `f` of the inputs, half-precision ones widened to f32 and the result rounded once, as ONNX Runtime sums
/// them (rounded at each addition, three f16 values summed to 0.3027 where ONNX Runtime's is 0.3022).
fn in_f32_when_half(
    inputs: &[Option<Tensor>],
    f: fn(&[Option<Tensor>]) -> Result<Tensor, ModelError>,
) -> Out {
    let parts: Vec<&Tensor> = inputs.iter().flatten().collect();
    let half = parts.first().map(|t| t.dtype()).filter(|&dtype| {
        parts
            .iter()
            .all(|t| super::cpu_f32::is_half_on_cpu(t) && t.dtype() == dtype)
    });
    let Some(dtype) = half else {
        return Ok(vec![f(inputs)?]);
    };
    let wide = parts
        .iter()
        .map(|t| Ok(Some(super::cpu_f32::widen(t)?)))
        .collect::<Result<Vec<_>, ModelError>>()?;
    Ok(vec![super::cpu_f32::narrow_to(&f(&wide)?, dtype)?])
}

pub fn sum(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    in_f32_when_half(inputs, |inputs| {
        // Integers wrap on overflow, as Add's do.
        let integers = inputs.iter().flatten().any(|t| !t.dtype().is_float());
        fold(inputs, |a, b| {
            if integers {
                super::elementwise::wrapping(a, b, "Sum", i64::wrapping_add)
            } else {
                Ok(a.broadcast_add(b)?)
            }
        })
    })
}

pub fn mean(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    in_f32_when_half(inputs, |inputs| {
        // ONNX defines Mean for floating-point types only (an integer sum also overflowed here, and
        // candle panicked on it in a debug build: found by the evaluator fuzzer).
        if let Some(t) = inputs.iter().flatten().find(|t| !t.dtype().is_float()) {
            return Err(ModelError::Evaluation(format!(
                "Mean takes floating-point inputs, not {:?}",
                t.dtype()
            )));
        }
        let n = inputs.iter().flatten().count() as f64;
        Ok((fold(inputs, |a, b| Ok(a.broadcast_add(b)?))? / n)?)
    })
}

/// Mod: integer remainder takes the divisor's sign unless `fmod=1` (then the dividend's, like C).
pub fn modulo(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let (a, b) = (required(inputs, 0)?, required(inputs, 1)?);
    let shape = a.shape().broadcast_shape_binary_op(b.shape(), "Mod")?;
    let fmod = node.int("fmod", 0) != 0;
    let x = a
        .broadcast_as(&shape)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    let y = b
        .broadcast_as(&shape)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    let r: Vec<f64> = x
        .iter()
        .zip(&y)
        .map(|(x, y)| {
            let r = x % y;
            if !fmod && r != 0.0 && (r < 0.0) != (*y < 0.0) {
                r + y
            } else {
                r
            }
        })
        .collect();
    Ok(vec![
        Tensor::from_vec(r, shape, a.device())?.to_dtype(a.dtype())?,
    ])
}

fn bitwise(inputs: &[Option<Tensor>], f: impl Fn(u64, u64) -> u64) -> Result<Tensor, ModelError> {
    let (a, b) = (required(inputs, 0)?, required(inputs, 1)?);
    let shape = a.shape().broadcast_shape_binary_op(b.shape(), "Bitwise")?;
    let x = a
        .broadcast_as(&shape)?
        .to_dtype(DType::I64)?
        .flatten_all()?
        .to_vec1::<i64>()?;
    let y = b
        .broadcast_as(&shape)?
        .to_dtype(DType::I64)?
        .flatten_all()?
        .to_vec1::<i64>()?;
    let r: Vec<i64> = x
        .iter()
        .zip(&y)
        .map(|(&x, &y)| f(x as u64, y as u64) as i64)
        .collect();
    Ok(Tensor::from_vec(r, shape, a.device())?.to_dtype(a.dtype())?)
}

pub fn bitwise_and(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![bitwise(inputs, |a, b| a & b)?])
}

pub fn bitwise_or(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![bitwise(inputs, |a, b| a | b)?])
}

pub fn bitwise_xor(_: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    Ok(vec![bitwise(inputs, |a, b| a ^ b)?])
}

/// Integers are held as i64 (u8 for uint8): NOT flips the bits of the declared width, so an unsigned
/// uint16 or uint32 stays within its range.
pub fn bitwise_not(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    use crate::proto::tensor_proto::DataType as T;
    let x = required(inputs, 0)?;
    if x.dtype() == DType::U8 {
        let v: Vec<u8> = x
            .flatten_all()?
            .to_vec1::<u8>()?
            .into_iter()
            .map(|b| !b)
            .collect();
        return Ok(vec![Tensor::from_vec(v, x.shape(), x.device())?]);
    }
    let mask: i64 = match node.input_type(0).and_then(|t| T::try_from(t).ok()) {
        Some(T::Uint16) => 0xffff,
        Some(T::Uint32) => 0xffff_ffff,
        _ => -1,
    };
    let v: Vec<i64> = x
        .flatten_all()?
        .to_vec1::<i64>()?
        .into_iter()
        .map(|b| !b & mask)
        .collect();
    Ok(vec![Tensor::from_vec(v, x.shape(), x.device())?])
}

/// BitShift on unsigned integers: LEFT or RIGHT.
pub fn bit_shift(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Out {
    let left = node.string("direction").as_deref() == Some("LEFT");
    let width = if required(inputs, 0)?.dtype() == DType::U8 {
        8
    } else {
        64
    };
    Ok(vec![bitwise(inputs, move |a, b| {
        let shifted = if b >= 64 {
            0
        } else if left {
            a << b
        } else {
            a >> b
        };
        if width == 8 { shifted & 0xff } else { shifted }
    })?])
}

#[cfg(test)]
mod tests {
    use super::super::testing::{f32s, i64s, int, run};

    /// The shapes that do not broadcast together are named before any sum is made (the fuzzer's
    /// `[257] + [1086, 1] + [483]` made the first two's 1086 × 257 sum, then failed on the third).
    #[test]
    fn a_variadic_operator_checks_every_shape_before_computing() {
        let inputs = [
            f32s(&[0.; 257], &[257]),
            f32s(&[0.; 1086], &[1086, 1]),
            f32s(&[0.; 483], &[483]),
        ];
        for op in ["Sum", "Max", "Min", "Mean"] {
            let error = super::super::testing::error(op, 13, vec![], &inputs);
            assert!(
                error.contains("variadic operator, lhs: [1086, 257], rhs: [483]"),
                "{op}: {error}"
            );
        }
    }

    #[test]
    fn max_of_several_inputs_broadcasts() {
        let out = run(
            "Max",
            13,
            vec![],
            &[
                f32s(&[1., 5.], &[2]),
                f32s(&[3.], &[1]),
                f32s(&[0., 9.], &[2]),
            ],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![3., 9.]);
    }

    #[test]
    fn mod_follows_the_divisor_sign_unless_fmod() {
        let out = run("Mod", 13, vec![], &[i64s(&[-7, 7]), i64s(&[3, -3])]);
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), vec![2, -2]);
        let out = run(
            "Mod",
            13,
            vec![int("fmod", 1)],
            &[f32s(&[-7., 7.], &[2]), f32s(&[3., -3.], &[2])],
        );
        assert_eq!(out[0].to_vec1::<f32>().unwrap(), vec![-1., 1.]);
    }

    #[test]
    fn bitwise_not_keeps_a_declared_uint16_in_range() {
        use crate::proto::tensor_proto::DataType;
        let proto = crate::proto::NodeProto::default();
        let node = crate::eval::node::Node::new(&proto, 18)
            .with_input_types(&[Some(DataType::Uint16 as i32)]);
        let x = candle_core::Tensor::new(&[0i64, 65535], &candle_core::Device::Cpu).unwrap();
        let out = super::bitwise_not(&node, &[Some(x)]).unwrap();
        assert_eq!(out[0].to_vec1::<i64>().unwrap(), vec![65535, 0]);
    }
}
