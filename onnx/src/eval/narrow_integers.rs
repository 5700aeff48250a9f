//! ONNX's integers narrower than 64 bits (int32, int16, int8, uint32, uint16) are held as i64: candle has
//! none of them. An operator's integer result outside its type's range is brought into it as ONNX
//! Runtime's C++ brings it: integer arithmetic wraps, two's complement (an int32 sum past 2^31 is negative
//! there, and a later Cast, comparison or division reads it so; the evaluator kept 2^31 and disagreed from
//! then on), and a double converted to int32 that does not fit is x86-64's "integer indefinite", i32::MIN
//! (Pow of int32 computes in double unless its exponent is a lone 2 or 3; Cast from a float, in
//! `ops::values`, through [`Narrow::from_float`]). ONNX leaves those conversions undefined, and ONNX
//! Runtime on ARM saturates them instead: kiln answers as x86-64 does. What each output's type is comes
//! from the graph ([`super::graph`]'s element types); an output of unknown type is left as computed.

use candle_core::{DType, Device, Tensor};

use super::node::{Node, optional};
use super::ops::host::host_slice;
use super::run_memory::{RunMemory, tensor_bytes};
use crate::ModelError;
use crate::proto::tensor_proto::DataType;

/// Operators whose integer result may leave the range its inputs' type holds: the arithmetic, and Cast
/// from a wider type. Any other operator moves or picks values already in range, but for the scatters
/// that add or multiply (see [`out_of_range`]).
const MAY_LEAVE_RANGE: &[&str] = &[
    "Abs",
    "Add",
    "BitShift",
    "Cast",
    "CastLike",
    "ConvInteger",
    "CumSum",
    "Div",
    "Einsum",
    "Gemm",
    "MatMul",
    "MatMulInteger",
    "Mul",
    "Neg",
    "Range",
    "ReduceL1",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Sub",
    "Sum",
];

/// What becomes of a result outside its type's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutOfRange {
    /// Its low bits are kept (integer arithmetic).
    Wraps,
    /// It was a double converted to int32: i32::MIN on x86-64.
    Indefinite,
}

/// A double converted to int64 as x86-64 converts it (`cvttsd2si`, what ONNX Runtime's compiled casts
/// do): truncated toward zero, and NaN or a value no i64 holds is the "integer indefinite", i64::MIN
/// (Rust's cast makes NaN 0 and saturates the rest).
pub fn int64_from_float(value: f64) -> i64 {
    let whole = value.trunc();
    // -2^63 ≤ whole < 2^63.
    if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&whole) {
        whole as i64
    } else {
        i64::MIN
    }
}

/// An integer type held as i64 that is narrower than it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Narrow {
    Int32,
    Int16,
    Int8,
    Uint32,
    Uint16,
}

impl Narrow {
    pub fn of(element_type: i32) -> Option<Self> {
        Some(match DataType::try_from(element_type).ok()? {
            DataType::Int32 => Self::Int32,
            DataType::Int16 => Self::Int16,
            DataType::Int8 => Self::Int8,
            DataType::Uint32 => Self::Uint32,
            DataType::Uint16 => Self::Uint16,
            _ => return None,
        })
    }

    /// `value` as this type holds it: its low bits, read signed or unsigned.
    pub fn wrap(self, value: i64) -> i64 {
        match self {
            Self::Int32 => i64::from(value as i32),
            Self::Int16 => i64::from(value as i16),
            Self::Int8 => i64::from(value as i8),
            Self::Uint32 => i64::from(value as u32),
            Self::Uint16 => i64::from(value as u16),
        }
    }

    /// A float cast to this type as ONNX Runtime 1.32.0 casts it on x86-64 (seen on this project's
    /// host): truncated toward zero; to the signed types and uint16 through int32, where one outside its
    /// range or NaN is i32::MIN, then its low bits (3e9 to int16 is 0, 70000.2 is 4464). To uint32 as
    /// ONNX Runtime's vectorized loop converts a float or double, four at a time: below 2^31 through
    /// int32 (NaN, -inf and -3e9 are 2^31), from 2^31 on as 2^31 more than the int32 of the value less
    /// 2^31 (3e9 is 3e9; 5e9 and +inf wrap to 0). Its loop converts the last len % 4 values one at a
    /// time, through int64 (NaN is 0 there): the same value comes out either way by its position, and
    /// ONNX leaves the conversion undefined. A float16 it converts one at a time: `uint32_from_half`.
    pub fn from_float(self, value: f64) -> i64 {
        let whole = value.trunc();
        let int32 = |v: f64| {
            if (-2_147_483_648.0..2_147_483_648.0).contains(&v) {
                v as i64
            } else {
                i64::from(i32::MIN)
            }
        };
        if self == Self::Uint32 {
            const HALF: f64 = 2_147_483_648.0;
            let bits = if whole >= HALF {
                int32(whole - HALF) + (1 << 31)
            } else {
                int32(whole)
            };
            return self.wrap(bits);
        }
        self.wrap(int32(whole))
    }

    /// A float16 or bfloat16 cast to uint32 as ONNX Runtime converts one, through int64: NaN and the
    /// infinities are 0, -5.5 is 2^32 - 5.
    pub fn uint32_from_half(value: f64) -> i64 {
        Self::Uint32.wrap(int64_from_float(value))
    }

    /// The least value of the type.
    pub fn min(self) -> i64 {
        match self {
            Self::Int32 => i64::from(i32::MIN),
            Self::Int16 => i64::from(i16::MIN),
            Self::Int8 => i64::from(i8::MIN),
            Self::Uint32 | Self::Uint16 => 0,
        }
    }

    /// The greatest value of the type.
    pub fn max(self) -> i64 {
        match self {
            Self::Int32 => i64::from(i32::MAX),
            Self::Int16 => i64::from(i16::MAX),
            Self::Int8 => i64::from(i8::MAX),
            Self::Uint32 => i64::from(u32::MAX),
            Self::Uint16 => i64::from(u16::MAX),
        }
    }

    fn holds(self, value: i64) -> bool {
        self.wrap(value) == value
    }

    fn bring_in(self, value: i64, out_of_range: OutOfRange) -> i64 {
        match out_of_range {
            OutOfRange::Wraps => self.wrap(value),
            OutOfRange::Indefinite if self.holds(value) => value,
            OutOfRange::Indefinite => i64::from(i32::MIN),
        }
    }
}

/// `outputs` of `node` (run on `inputs`), each of a narrow integer type brought into its range. Only a
/// result that left it is copied (`memory` is asked for the room first).
pub fn wrapped(
    node: &Node<'_>,
    inputs: &[Option<Tensor>],
    outputs: Vec<Tensor>,
    memory: &RunMemory,
) -> Result<Vec<Tensor>, ModelError> {
    // Most nodes make no narrow integer: found from the node's types before its inputs are looked at.
    let narrow = |index: usize, output: &Tensor| {
        node.output_type(index)
            .and_then(Narrow::of)
            .filter(|_| output.dtype() == DType::I64)
    };
    if !outputs
        .iter()
        .enumerate()
        .any(|(i, t)| narrow(i, t).is_some())
    {
        return Ok(outputs);
    }
    let Some(out_of_range) = out_of_range(node, inputs) else {
        return Ok(outputs);
    };
    outputs
        .into_iter()
        .enumerate()
        .map(|(index, output)| match narrow(index, &output) {
            Some(narrow) => bring_in(output, narrow, out_of_range, memory),
            None => Ok(output),
        })
        .collect()
}

/// How `node`'s result leaves its range, if it can.
fn out_of_range(node: &Node<'_>, inputs: &[Option<Tensor>]) -> Option<OutOfRange> {
    match node.op_type() {
        // ONNX Runtime multiplies for an exponent of a lone 2 or 3, else converts `pow`'s double.
        "Pow" => {
            let multiplied = optional(inputs, 1).and_then(super::ops::multiplied_power);
            Some(if multiplied.is_some() {
                OutOfRange::Wraps
            } else {
                OutOfRange::Indefinite
            })
        }
        "ScatterElements" | "ScatterND" => {
            let reduction = node.string("reduction");
            matches!(reduction.as_deref(), Some("add" | "mul")).then_some(OutOfRange::Wraps)
        }
        op if MAY_LEAVE_RANGE.contains(&op) && !integer_product_fits(node, inputs) => {
            Some(OutOfRange::Wraps)
        }
        _ => None,
    }
}

/// Whether `node` is a MatMulInteger or ConvInteger of 8-bit operands and zero points that sums too few
/// products to leave an int32's range: each product of two differences from a zero point is at most
/// 255 * 255, and fewer than 33,026 of them (an int8 BERT's widest sum is 3,072) never pass 2^31 - 1, so
/// its result, large in a quantized model, is not read again for the check. An operand is 8-bit when it
/// is held as u8 (uint8, whatever the graph says) or the graph says int8 or uint8.
fn integer_product_fits(node: &Node<'_>, inputs: &[Option<Tensor>]) -> bool {
    let eight_bit = |index: usize| {
        optional(inputs, index).is_some_and(|t| t.dtype() == DType::U8)
            || node
                .input_type(index)
                .is_some_and(|t| t == DataType::Uint8 as i32 || t == DataType::Int8 as i32)
    };
    let dims = |index: usize| optional(inputs, index).map(Tensor::dims);
    let terms = match node.op_type() {
        "MatMulInteger" => dims(0).and_then(|d| d.last().copied()),
        "ConvInteger" => dims(1).map(|d| d.iter().skip(1).product::<usize>()),
        _ => None,
    };
    let most = (i32::MAX as usize) / (255 * 255);
    let zero_points = (2..4).all(|index| optional(inputs, index).is_none() || eight_bit(index));
    eight_bit(0) && eight_bit(1) && zero_points && terms.is_some_and(|terms| terms <= most)
}

/// `t` with every value in `narrow`'s range. The check reads a contiguous CPU tensor in place; anything
/// else (a view, a GPU tensor) is reduced to its least and greatest value by candle. What is copied is
/// counted beside `t`, which the run does not hold yet.
fn bring_in(
    t: Tensor,
    narrow: Narrow,
    out_of_range: OutOfRange,
    memory: &RunMemory,
) -> Result<Tensor, ModelError> {
    let size = u128::from(tensor_bytes(&t));
    let (low, high) = if matches!(t.device(), Device::Cpu) && t.is_contiguous() {
        let (storage, layout) = t.storage_and_layout();
        host_slice::<i64>(&storage, layout, t.elem_count())?
            .iter()
            .fold((i64::MAX, i64::MIN), |(low, high), &v| {
                (low.min(v), high.max(v))
            })
    } else if t.elem_count() == 0 {
        (0, 0)
    } else {
        memory.has_room(size.saturating_mul(2))?;
        let flat = t.flatten_all()?;
        (
            flat.min(0)?.to_scalar::<i64>()?,
            flat.max(0)?.to_scalar::<i64>()?,
        )
    };
    if t.elem_count() == 0 || (narrow.holds(low) && narrow.holds(high)) {
        return Ok(t);
    }
    memory.has_room(size.saturating_mul(2))?;
    let values: Vec<i64> = t
        .flatten_all()?
        .to_vec1::<i64>()?
        .into_iter()
        .map(|v| narrow.bring_in(v, out_of_range))
        .collect();
    Ok(Tensor::from_vec(values, t.shape(), t.device())?)
}

#[cfg(test)]
mod tests;
