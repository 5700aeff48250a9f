//! The graph as the fusions read it: who produces and who reads each value, and the constants.

use std::collections::HashMap;

use candle_core::{DType, Device};

use crate::eval::tensor_io;
use crate::optimize::usage::Usage;
use crate::proto::{GraphProto, NodeProto, TensorProto, attribute_proto::AttributeType};

pub struct View<'a> {
    pub graph: &'a GraphProto,
    pub usage: Usage,
    /// The model's default-domain opset.
    pub opset: i64,
    constants: HashMap<&'a str, &'a TensorProto>,
}

impl<'a> View<'a> {
    pub fn of(graph: &'a GraphProto, opset: i64) -> Self {
        Self {
            graph,
            usage: Usage::of(graph),
            opset,
            // An initializer that is also a graph input is a default a caller may replace: not a constant.
            constants: graph
                .initializer
                .iter()
                .filter_map(|t| Some((t.name.as_deref()?, t)))
                .filter(|(name, _)| !graph.input.iter().any(|i| i.name.as_deref() == Some(*name)))
                .collect(),
        }
    }

    pub fn node(&self, index: usize) -> &'a NodeProto {
        &self.graph.node[index]
    }

    /// The node of the default domain with this operator that produces `value`.
    pub fn producer(&self, value: &str, op: &str) -> Option<usize> {
        let index = *self.usage.producer.get(value)?;
        is_op(self.node(index), op).then_some(index)
    }

    /// The one node that reads `value` (not a graph output), when it is of the default domain with
    /// this operator.
    pub fn sole_reader(&self, value: &str, op: &str) -> Option<usize> {
        if !self.usage.only_read_by_one(value) {
            return None;
        }
        let index = self.usage.readers[value][0];
        is_op(self.node(index), op).then_some(index)
    }

    /// `node`'s first output, when it is read by no one but the one node of operator `op`.
    pub fn sole_reader_of(&self, node: usize, op: &str) -> Option<usize> {
        self.sole_reader(self.node(node).output.first()?, op)
    }

    /// An f32 initializer's values (the fused operators take the graph's float type, and ONNX Runtime
    /// runs `Attention` on the CPU in f32 alone), when they are in this graph's file.
    pub fn floats(&self, name: &str) -> Option<(Vec<usize>, Vec<f32>)> {
        let proto = self.constants.get(name)?;
        let tensor = tensor_io::from_proto(proto, None, &Device::Cpu).ok()?;
        if tensor.dtype() != DType::F32 {
            return None;
        }
        let values = tensor.flatten_all().ok()?.to_vec1().ok()?;
        Some((tensor.dims().to_vec(), values))
    }

    /// An initializer holding one float (of any rank), as f32.
    pub fn scalar(&self, name: &str) -> Option<f32> {
        // A weight is not decoded only to learn it holds more than one value.
        if self.constants.get(name)?.dims.iter().product::<i64>() != 1 {
            return None;
        }
        match self.floats(name)?.1.as_slice() {
            [value] => Some(*value),
            _ => None,
        }
    }

    /// An integer initializer's values.
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        let proto = self.constants.get(name)?;
        let tensor = tensor_io::from_proto(proto, None, &Device::Cpu).ok()?;
        if !matches!(tensor.dtype(), DType::I64 | DType::U32 | DType::U8) {
            return None;
        }
        tensor
            .to_dtype(DType::I64)
            .ok()?
            .flatten_all()
            .ok()?
            .to_vec1()
            .ok()
    }

    /// The input of a two-input node that is not `one` (None when neither or both are).
    pub fn other_input(&self, node: usize, one: &str) -> Option<&'a str> {
        match self.node(node).input.as_slice() {
            [a, b] if a == one && b != one => Some(b),
            [a, b] if b == one && a != one => Some(a),
            _ => None,
        }
    }
}

pub fn is_op(node: &NodeProto, op: &str) -> bool {
    node.op_type.as_deref() == Some(op) && crate::optimize::in_default_domain(node)
}

pub fn ints_attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a [i64]> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name) && a.r#type == Some(AttributeType::Ints as i32))
        .map(|a| a.ints.as_slice())
}

pub fn int_attribute(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name) && a.r#type == Some(AttributeType::Int as i32))
        .and_then(|a| a.i)
}

/// Whether a constant is `expected` as f32 rounds it (a converter may have written either rounding).
pub fn close_to(value: f32, expected: f64) -> bool {
    (f64::from(value) - expected).abs() <= 1e-6 * expected.abs().max(1.0)
}
