//! The operators kiln's evaluator implements, by ONNX name. Adding one is a function in the module of its
//! kind, a line in [`lookup`], and its own test beside it.

mod elementwise;
mod layout;
mod matmul;
mod normalization;
mod shape;
mod values;

use candle_core::Tensor;

use super::node::Node;
use crate::ModelError;

pub type OpFn = fn(&Node<'_>, &[Option<Tensor>]) -> Result<Vec<Tensor>, ModelError>;

/// The operator for a node, when kiln implements it (default `ai.onnx` domain only).
pub fn lookup(domain: &str, op_type: &str) -> Option<OpFn> {
    if !(domain.is_empty() || domain == "ai.onnx") {
        return None;
    }
    Some(match op_type {
        "Add" => elementwise::add,
        "Sub" => elementwise::sub,
        "Mul" => elementwise::mul,
        "Div" => elementwise::div,
        "Pow" => elementwise::pow,
        "Equal" => elementwise::equal,
        "Greater" => elementwise::greater,
        "Less" => elementwise::less,
        "Cos" => elementwise::cos,
        "Sin" => elementwise::sin,
        "Where" => elementwise::where_,
        "Neg" => elementwise::neg,
        "Sqrt" => elementwise::sqrt,
        "Exp" => elementwise::exp,
        "Erf" => elementwise::erf,
        "Tanh" => elementwise::tanh,
        "Sigmoid" => elementwise::sigmoid,
        "Relu" => elementwise::relu,
        "MatMul" => matmul::matmul,
        "Gemm" => matmul::gemm,
        "Softmax" => normalization::softmax,
        "LayerNormalization" => normalization::layer_normalization,
        "ReduceMean" => normalization::reduce_mean,
        "Shape" => shape::shape,
        "Reshape" => shape::reshape,
        "Unsqueeze" => shape::unsqueeze,
        "Squeeze" => shape::squeeze,
        "Expand" => shape::expand,
        "Transpose" => layout::transpose,
        "Concat" => layout::concat,
        "Slice" => layout::slice,
        "Gather" => layout::gather,
        "Constant" => values::constant,
        "Cast" => values::cast,
        "Identity" | "Dropout" => values::identity,
        _ => return None,
    })
}

/// Every operator [`lookup`] knows (for docs and the node-test report).
pub const SUPPORTED_OPS: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Equal",
    "Greater",
    "Less",
    "Cos",
    "Sin",
    "Where",
    "Neg",
    "Sqrt",
    "Exp",
    "Erf",
    "Tanh",
    "Sigmoid",
    "Relu",
    "MatMul",
    "Gemm",
    "Softmax",
    "LayerNormalization",
    "ReduceMean",
    "Shape",
    "Reshape",
    "Unsqueeze",
    "Squeeze",
    "Expand",
    "Transpose",
    "Concat",
    "Slice",
    "Gather",
    "Constant",
    "Cast",
    "Identity",
    "Dropout",
];

#[cfg(test)]
pub(crate) mod testing {
    //! Runs one operator on literal tensors, as a one-node graph would.
    use candle_core::{Device, Tensor};

    use crate::eval::node::Node;
    use crate::proto::{AttributeProto, NodeProto};

    pub fn run(
        op: &str,
        opset: i64,
        attributes: Vec<AttributeProto>,
        inputs: &[Option<Tensor>],
    ) -> Vec<Tensor> {
        let proto = NodeProto {
            op_type: Some(op.to_owned()),
            attribute: attributes,
            ..Default::default()
        };
        let f = super::lookup("", op).expect("op is registered");
        f(&Node::new(&proto, opset), inputs).expect("op runs")
    }

    pub fn int(name: &str, value: i64) -> AttributeProto {
        AttributeProto {
            name: Some(name.to_owned()),
            i: Some(value),
            r#type: Some(2),
            ..Default::default()
        }
    }

    pub fn ints(name: &str, values: &[i64]) -> AttributeProto {
        AttributeProto {
            name: Some(name.to_owned()),
            ints: values.to_vec(),
            r#type: Some(7),
            ..Default::default()
        }
    }

    pub fn f32s(values: &[f32], shape: &[usize]) -> Option<Tensor> {
        Some(Tensor::from_vec(values.to_vec(), shape, &Device::Cpu).unwrap())
    }

    pub fn i64s(values: &[i64]) -> Option<Tensor> {
        Some(Tensor::from_vec(values.to_vec(), values.len(), &Device::Cpu).unwrap())
    }
}
