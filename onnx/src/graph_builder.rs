//! Writing ONNX graphs from Rust: named initializers, nodes with fresh output names, and the model
//! wrapper with its opset and metadata. Given an external-data file, large initializers go straight to
//! it as they are added, so building a graph holds one weight at a time.

use candle_core::Tensor;

use crate::ModelError;
use crate::eval::tensor_io;
use crate::external_data::{ExternalDataWriter, SMALL_TENSOR_BYTES};
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, attribute_proto::AttributeType,
    tensor_proto::DataType, tensor_shape_proto, type_proto,
};

/// The IR version kiln writes (ONNX 1.14+, which every current runtime reads).
pub const IR_VERSION: i64 = 9;

/// A dimension of a graph input or output.
pub enum DimSpec<'a> {
    Fixed(i64),
    Named(&'a str),
}

#[derive(Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    next: usize,
    external: Option<ExternalDataWriter>,
}

pub fn attr_int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

pub fn attr_ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.to_vec(),
        ..Default::default()
    }
}

pub fn attr_float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(value),
        ..Default::default()
    }
}

fn value_info(name: &str, elem: DataType, dims: &[DimSpec<'_>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                DimSpec::Fixed(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                DimSpec::Named(n) => {
                    tensor_shape_proto::dimension::Value::DimParam((*n).to_owned())
                }
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_owned()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl GraphBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.next += 1;
        format!("{hint}_{}", self.next)
    }

    /// A builder whose initializers of 1 KiB and more are written to `data` as they are added.
    pub fn with_external_data(data: ExternalDataWriter) -> Self {
        Self {
            external: Some(data),
            ..Self::default()
        }
    }

    /// An initializer holding `tensor` in its own element type, under `name` (weights keep their
    /// checkpoint names).
    pub fn weight(&mut self, name: &str, tensor: &Tensor) -> Result<String, ModelError> {
        let (data_type, raw) = tensor_io::to_raw(tensor)?;
        let mut proto = TensorProto {
            name: Some(name.to_owned()),
            dims: tensor.dims().iter().map(|&d| d as i64).collect(),
            data_type: Some(data_type as i32),
            ..Default::default()
        };
        match self.external.as_mut() {
            Some(data) if raw.len() >= SMALL_TENSOR_BYTES => data.append(&mut proto, &raw)?,
            _ => proto.raw_data = Some(raw.into()),
        }
        self.initializers.push(proto);
        Ok(name.to_owned())
    }

    /// A float weight stored in the checkpoint's own precision and read by the graph as fp32: a 16-bit
    /// weight is followed by a Cast, so the model keeps the checkpoint's bytes (no doubling on disk)
    /// while computing as the fp32 reference does.
    pub fn float_weight(&mut self, name: &str, tensor: &Tensor) -> Result<String, ModelError> {
        let stored = self.weight(name, tensor)?;
        Ok(match tensor.dtype() {
            candle_core::DType::F16 | candle_core::DType::BF16 => {
                let widened = format!("{name}.fp32");
                let to = attr_int("to", DataType::Float as i64);
                self.op_into("Cast", &[&stored], vec![to], &widened);
                widened
            }
            _ => stored,
        })
    }

    /// A 1-D int64 constant (shapes, axes, slice bounds).
    pub fn ints(&mut self, hint: &str, values: &[i64]) -> Result<String, ModelError> {
        let name = self.fresh(hint);
        let tensor = Tensor::from_vec(values.to_vec(), values.len(), &candle_core::Device::Cpu)?;
        self.weight(&name, &tensor)
    }

    /// An fp32 scalar constant.
    pub fn scalar(&mut self, hint: &str, value: f32) -> Result<String, ModelError> {
        let name = self.fresh(hint);
        self.weight(&name, &Tensor::new(value, &candle_core::Device::Cpu)?)
    }

    /// Adds a node with one output and returns the output's name.
    pub fn op(&mut self, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        let output = self.fresh(op);
        self.op_into(op, inputs, attributes, &output);
        output
    }

    /// Adds a node whose output has a given name (a graph output).
    pub fn op_into(
        &mut self,
        op: &str,
        inputs: &[&str],
        attributes: Vec<AttributeProto>,
        output: &str,
    ) {
        self.nodes.push(NodeProto {
            name: Some(format!("{op}_{}", self.nodes.len())),
            op_type: Some(op.to_owned()),
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: vec![output.to_owned()],
            attribute: attributes,
            ..Default::default()
        });
    }

    pub fn input(&mut self, name: &str, elem: DataType, dims: &[DimSpec<'_>]) -> String {
        self.inputs.push(value_info(name, elem, dims));
        name.to_owned()
    }

    pub fn output(&mut self, name: &str, elem: DataType, dims: &[DimSpec<'_>]) {
        self.outputs.push(value_info(name, elem, dims));
    }

    pub fn finish(
        self,
        graph_name: &str,
        opset: i64,
        metadata: Vec<StringStringEntryProto>,
    ) -> ModelProto {
        ModelProto {
            ir_version: Some(IR_VERSION),
            producer_name: Some("kiln".to_owned()),
            producer_version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(opset),
            }],
            graph: Some(GraphProto {
                name: Some(graph_name.to_owned()),
                node: self.nodes,
                initializer: self.initializers,
                input: self.inputs,
                output: self.outputs,
                ..Default::default()
            }),
            metadata_props: metadata,
            ..Default::default()
        }
    }
}
