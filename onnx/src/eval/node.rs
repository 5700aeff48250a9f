//! A node as an operator sees it: attributes by name with ONNX defaults, and the model's opset.

use std::any::Any;
use std::sync::Arc;

use candle_core::Tensor;

use super::derived::{DerivedCache, derive};
use crate::ModelError;
use crate::proto::{AttributeProto, NodeProto};

pub struct Node<'a> {
    proto: &'a NodeProto,
    /// The `ai.onnx` opset the model declares.
    pub opset: i64,
    /// The ONNX element type of each input and output, where the graph tells it
    /// (`graph::element_types`).
    input_types: &'a [Option<i32>],
    output_types: &'a [Option<i32>],
    /// Where values derived from constant operands are kept between runs, when the node runs in a
    /// prepared graph.
    derived: Option<DerivedCache<'a>>,
}

impl<'a> Node<'a> {
    pub fn new(proto: &'a NodeProto, opset: i64) -> Self {
        Self {
            proto,
            opset,
            input_types: &[],
            output_types: &[],
            derived: None,
        }
    }

    /// The node keeping what it derives from constant operands in `cache`.
    pub fn with_derived(mut self, cache: DerivedCache<'a>) -> Self {
        self.derived = Some(cache);
        self
    }

    /// What `make` derives from `sources` (a weight prepared for a kernel): made once per session when
    /// the sources are the graph's constants, else each time.
    pub fn derive<T: Any + Send + Sync>(
        &self,
        sources: &[&Tensor],
        make: impl FnOnce() -> Result<T, ModelError>,
    ) -> Result<Arc<T>, ModelError> {
        derive(self.derived, sources, make)
    }

    /// The node with the element types the graph tells for its inputs.
    pub fn with_input_types(mut self, types: &'a [Option<i32>]) -> Self {
        self.input_types = types;
        self
    }

    /// The node with the element types the graph tells for its outputs.
    pub fn with_output_types(mut self, types: &'a [Option<i32>]) -> Self {
        self.output_types = types;
        self
    }

    /// The ONNX element type of input `index`, where the graph tells it. The evaluator holds several
    /// types in one candle dtype (the integers as i64, the 8-bit floats as f32); an operator whose
    /// result depends on the exact type (saturation, bit width) reads it here.
    pub fn input_type(&self, index: usize) -> Option<i32> {
        self.input_types.get(index).copied().flatten()
    }

    /// The ONNX element type of output `index`, where the graph tells it.
    pub fn output_type(&self, index: usize) -> Option<i32> {
        self.output_types.get(index).copied().flatten()
    }

    pub fn op_type(&self) -> &str {
        self.proto.op_type.as_deref().unwrap_or("")
    }

    /// The name of output `index` as the node declares it ("" for an optional output left out).
    pub fn output_name(&self, index: usize) -> Option<&str> {
        self.proto.output.get(index).map(String::as_str)
    }

    /// How many outputs the node declares (some operators' results depend on it).
    pub fn output_count(&self) -> usize {
        self.proto.output.len()
    }

    pub fn domain(&self) -> &str {
        self.proto.domain.as_deref().unwrap_or("")
    }

    fn attribute(&self, name: &str) -> Option<&AttributeProto> {
        self.proto
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
    }

    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attribute(name).and_then(|a| a.i).unwrap_or(default)
    }

    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.attribute(name).and_then(|a| a.f).unwrap_or(default)
    }

    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attribute(name).map(|a| a.ints.clone())
    }

    /// The largest kernel size, stride, dilation or pad window operators take: it keeps every window and
    /// padded size far from overflowing, and no real model comes near it.
    pub const MAX_WINDOW_ATTRIBUTE: i64 = 1 << 24;

    /// A per-axis attribute (strides, dilations, pads): `len` values, each in `range` (`default` on every
    /// axis when absent). The values come from the model: out of range is an error naming the attribute
    /// here, so no window or padded size computed from them can overflow later.
    pub fn per_axis(
        &self,
        name: &str,
        len: usize,
        default: usize,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Vec<usize>, crate::ModelError> {
        let Some(values) = self.ints(name) else {
            return Ok(vec![default; len]);
        };
        let refuse = |what: String| {
            crate::ModelError::Evaluation(format!("{}: {name} {what}", self.op_type()))
        };
        if values.len() != len {
            return Err(refuse(format!("has {} values, not {len}", values.len())));
        }
        values
            .iter()
            .map(|&v| {
                usize::try_from(v)
                    .ok()
                    .filter(|_| range.contains(&v))
                    .ok_or_else(|| {
                        refuse(format!(
                            "value {v} is outside {}..={}",
                            range.start(),
                            range.end()
                        ))
                    })
            })
            .collect()
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.attribute(name)
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }

    pub fn floats(&self, name: &str) -> Option<Vec<f32>> {
        self.attribute(name).map(|a| a.floats.clone())
    }

    /// A list of strings (RNN `activations`), each decoded as UTF-8.
    pub fn strings(&self, name: &str) -> Option<Vec<String>> {
        self.attribute(name).map(|a| {
            a.strings
                .iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
    }

    pub fn tensor(&self, name: &str) -> Option<&crate::proto::TensorProto> {
        self.attribute(name).and_then(|a| a.t.as_ref())
    }

    /// A GRAPH attribute (If's branches, Loop's and Scan's body).
    pub fn graph(&self, name: &str) -> Option<&'a crate::proto::GraphProto> {
        self.proto
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
            .and_then(|a| a.g.as_ref())
    }

    pub fn has(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }
}

/// The input at `index`, which the operator requires.
pub fn required(inputs: &[Option<Tensor>], index: usize) -> Result<&Tensor, ModelError> {
    inputs
        .get(index)
        .and_then(Option::as_ref)
        .ok_or_else(|| ModelError::Evaluation(format!("input {index} is required")))
}

/// The input at `index`, which the operator requires in floating point: candle's float functions
/// (exp, sqrt, tanh, ...) panic on integer tensors rather than fail, and a model may hand an operator
/// any type.
pub fn float_input<'t>(
    node: &Node<'_>,
    inputs: &'t [Option<Tensor>],
    index: usize,
) -> Result<&'t Tensor, ModelError> {
    let t = required(inputs, index)?;
    if !t.dtype().is_float() {
        return Err(ModelError::Evaluation(format!(
            "{}: input {index} must be floating point, not {:?}",
            node.op_type(),
            t.dtype()
        )));
    }
    Ok(t)
}

/// An optional input at `index`.
pub fn optional(inputs: &[Option<Tensor>], index: usize) -> Option<&Tensor> {
    inputs.get(index).and_then(Option::as_ref)
}

/// A 1-D integer tensor as values (shapes, axes, slice bounds).
pub fn int_values(tensor: &Tensor) -> Result<Vec<i64>, ModelError> {
    Ok(tensor
        .to_dtype(candle_core::DType::I64)?
        .flatten_all()?
        .to_vec1::<i64>()?)
}

/// The one value of an input the operator reads as a scalar (TopK's k, CumSum's axis, OneHot's depth),
/// which ONNX allows as a scalar or a one-element 1-D tensor.
pub fn one_value(t: &Tensor, what: &str) -> Result<f64, ModelError> {
    match t
        .to_dtype(candle_core::DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?[..]
    {
        [value] => Ok(value),
        _ => Err(ModelError::Evaluation(format!(
            "{what} must hold one value, not a tensor of shape {:?}",
            t.dims()
        ))),
    }
}

/// Resolves a possibly negative axis against `rank`.
pub fn axis(axis: i64, rank: usize) -> Result<usize, ModelError> {
    let resolved = if axis < 0 { axis + rank as i64 } else { axis };
    if resolved < 0 || resolved >= rank as i64 {
        return Err(ModelError::Evaluation(format!(
            "axis {axis} is out of range for rank {rank}"
        )));
    }
    Ok(resolved as usize)
}
