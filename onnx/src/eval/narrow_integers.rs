//! ONNX's integers narrower than 64 bits (int32, int16, int8, uint32, uint16) are held as i64: candle has
//! none of them. An operator's result outside its type's range then wraps to it, two's complement, as the
//! same arithmetic does in ONNX Runtime's C++ (an int32 sum past 2^31 is negative there, and a later
//! Cast, comparison or division reads it so); without it the evaluator kept 2^31 and disagreed from then
//! on. What each output's type is comes from the graph ([`super::graph`]'s element types); an output of
//! unknown type is left as it was computed.

use candle_core::{DType, Device, Tensor};

use super::node::Node;
use super::ops::host::host_slice;
use super::run_memory::{RunMemory, tensor_bytes};
use crate::ModelError;
use crate::proto::tensor_proto::DataType;

/// Operators whose integer result may leave the range its inputs' type holds: the arithmetic, and
/// Cast from a wider type. Any other operator moves or picks values already in range.
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
    "Pow",
    "Range",
    "ReduceL1",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
    "Sub",
    "Sum",
];

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

    fn holds(self, value: i64) -> bool {
        self.wrap(value) == value
    }
}

/// `outputs` of `node` (run on `inputs`), each of a narrow integer type wrapped into its range. Only a
/// result that left it is copied (`memory` is asked for the room first).
pub fn wrapped(
    node: &Node<'_>,
    inputs: &[Option<Tensor>],
    outputs: Vec<Tensor>,
    memory: &RunMemory,
) -> Result<Vec<Tensor>, ModelError> {
    if !MAY_LEAVE_RANGE.contains(&node.op_type()) || integer_product_fits(node, inputs) {
        return Ok(outputs);
    }
    outputs
        .into_iter()
        .enumerate()
        .map(
            |(index, output)| match node.output_type(index).and_then(Narrow::of) {
                Some(narrow) if output.dtype() == DType::I64 => wrap(output, narrow, memory),
                _ => Ok(output),
            },
        )
        .collect()
}

/// Whether `node` is a MatMulInteger or ConvInteger of 8-bit operands that sums too few products to leave
/// an int32's range: each product of two differences from a zero point is at most 255 * 255, and fewer
/// than 33,026 of them (an int8 BERT's widest sum is 3,072) never pass 2^31 - 1, so its result, large in
/// a quantized model, is not read again for the check.
fn integer_product_fits(node: &Node<'_>, inputs: &[Option<Tensor>]) -> bool {
    let eight_bit = |index: usize| {
        node.input_type(index)
            .is_some_and(|t| t == DataType::Uint8 as i32 || t == DataType::Int8 as i32)
    };
    let dims = |index: usize| inputs.get(index).and_then(Option::as_ref).map(Tensor::dims);
    let terms = match node.op_type() {
        "MatMulInteger" => dims(0).and_then(|d| d.last().copied()),
        "ConvInteger" => dims(1).map(|d| d.iter().skip(1).product::<usize>()),
        _ => None,
    };
    let most = (i32::MAX as usize) / (255 * 255);
    eight_bit(0) && eight_bit(1) && terms.is_some_and(|terms| terms <= most)
}

fn wrap(t: Tensor, narrow: Narrow, memory: &RunMemory) -> Result<Tensor, ModelError> {
    let in_range = if matches!(t.device(), Device::Cpu) && t.is_contiguous() {
        let (storage, layout) = t.storage_and_layout();
        let (low, high) = host_slice::<i64>(&storage, layout, t.elem_count())?
            .iter()
            .fold((i64::MAX, i64::MIN), |(low, high), &v| {
                (low.min(v), high.max(v))
            });
        t.elem_count() == 0 || (narrow.holds(low) && narrow.holds(high))
    } else {
        memory.has_room(u128::from(tensor_bytes(&t)))?;
        t.flatten_all()?
            .to_vec1::<i64>()?
            .into_iter()
            .all(|v| narrow.holds(v))
    };
    if in_range {
        return Ok(t);
    }
    memory.has_room(u128::from(tensor_bytes(&t)))?;
    let values: Vec<i64> = t
        .flatten_all()?
        .to_vec1::<i64>()?
        .into_iter()
        .map(|v| narrow.wrap(v))
        .collect();
    Ok(Tensor::from_vec(values, t.shape(), t.device())?)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::eval::Session;
    use crate::graph_builder::{DimSpec, GraphBuilder, attr_int};

    /// What ONNX Runtime 1.32.0 answers for the same graph: int32 and uint32 arithmetic wrap, and so does
    /// a Cast from int64 to int32.
    #[test]
    fn int32_and_uint32_results_wrap_as_onnx_runtime_computes_them() {
        let mut g = GraphBuilder::new();
        let two = [DimSpec::Fixed(2)];
        let x = g.input("x", DataType::Int32, &two);
        let w = g.input("w", DataType::Int64, &[DimSpec::Fixed(1)]);
        let cast = |to: DataType| vec![attr_int("to", to as i64)];
        let one = g.ints("one", &[1]).unwrap();
        let one = g.op("Cast", &[&one], cast(DataType::Int32));
        let sum = g.op("Add", &[&x, &one], vec![]);
        g.op_into("Cast", &[&sum], cast(DataType::Float), "sum_as_float");
        g.op_into("Cast", &[&w], cast(DataType::Int32), "narrowed");
        let unsigned = g.op("Cast", &[&x], cast(DataType::Uint32));
        let zero = g.ints("zero", &[0]).unwrap();
        let zero = g.op("Cast", &[&zero], cast(DataType::Uint32));
        g.op_into("Sub", &[&zero, &unsigned], vec![], "negated");
        g.output("sum_as_float", DataType::Float, &two);
        g.output("narrowed", DataType::Int32, &[DimSpec::Fixed(1)]);
        g.output("negated", DataType::Uint32, &two);
        let model = g.finish("wraps", 17, Vec::new());
        let session = Session::new(&model, None, &Device::Cpu).unwrap();
        let inputs = HashMap::from([
            (
                "x".to_owned(),
                Tensor::new(&[i64::from(i32::MAX), -5], &Device::Cpu).unwrap(),
            ),
            (
                "w".to_owned(),
                Tensor::new(&[(1i64 << 32) + 1], &Device::Cpu).unwrap(),
            ),
        ]);
        let out = session.run(&inputs).unwrap();
        assert_eq!(out[0].1.to_vec1::<f32>().unwrap(), [-2_147_483_648., -4.]);
        assert_eq!(out[1].1.to_vec1::<i64>().unwrap(), [1]);
        assert_eq!(out[2].1.to_vec1::<i64>().unwrap(), [2_147_483_649, 5]);
    }

    /// 33,100 products of 255 by 255 pass 2^31: ONNX Runtime 1.32.0 answers -2,142,639,796.
    #[test]
    fn a_matmul_integer_summing_past_an_int32_wraps() {
        const K: usize = 33_100;
        let mut g = GraphBuilder::new();
        let a = g.input(
            "a",
            DataType::Uint8,
            &[DimSpec::Fixed(1), DimSpec::Fixed(K as i64)],
        );
        let b = g.input(
            "b",
            DataType::Uint8,
            &[DimSpec::Fixed(K as i64), DimSpec::Fixed(1)],
        );
        g.op_into("MatMulInteger", &[&a, &b], vec![], "y");
        g.output(
            "y",
            DataType::Int32,
            &[DimSpec::Fixed(1), DimSpec::Fixed(1)],
        );
        let model = g.finish("wraps", 17, Vec::new());
        let session = Session::new(&model, None, &Device::Cpu).unwrap();
        let full = |dims: (usize, usize)| Tensor::full(255u8, dims, &Device::Cpu).unwrap();
        let inputs = HashMap::from([
            ("a".to_owned(), full((1, K))),
            ("b".to_owned(), full((K, 1))),
        ]);
        let out = session.run(&inputs).unwrap();
        assert_eq!(out[0].1.to_vec2::<i64>().unwrap(), [[-2_142_639_796]]);
    }

    #[test]
    fn each_type_keeps_its_low_bits_signed_or_not() {
        assert_eq!(
            Narrow::Int32.wrap(i64::from(i32::MAX) + 1),
            i64::from(i32::MIN)
        );
        assert_eq!(Narrow::Int32.wrap(-1), -1);
        assert_eq!(Narrow::Uint32.wrap(-1), i64::from(u32::MAX));
        assert_eq!(Narrow::Uint32.wrap(1 << 32), 0);
        assert_eq!(Narrow::Int16.wrap(40_000), 40_000 - 65_536);
        assert_eq!(Narrow::Int8.wrap(128), -128);
        assert_eq!(Narrow::Uint16.wrap(65_536 + 7), 7);
        assert_eq!(Narrow::of(DataType::Int64 as i32), None);
        assert_eq!(Narrow::of(DataType::Uint8 as i32), None);
    }
}
