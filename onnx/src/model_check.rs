//! The check an ONNX model passes before kiln stores it as a variant: it decodes within bounds, declares a
//! known IR version and opsets, its graphs are topologically sorted with every input defined, its
//! initializers are consistent, and external data stays beside the model. It also reads the model's
//! signature (inputs and outputs with symbolic dims) for the registry.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use prost::Message;

use crate::ModelError;
use crate::proto::{
    GraphProto, ModelProto, TensorProto, attribute_proto, tensor_proto, tensor_shape_proto,
    type_proto,
};

/// Protobuf itself caps a message at 2 GiB; larger weights must be external data.
pub const MAX_MODEL_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// The newest IR version and `ai.onnx` opset this build knows (ONNX 1.23).
pub const MAX_IR_VERSION: i64 = 14;
pub const MAX_OPSET: i64 = 28;
const MAX_NODES: usize = 10_000_000;
/// No tensor, stored or declared as a graph input or output, may hold more elements: every later step
/// (generated inputs, folding, evaluation) relies on it.
pub const MAX_ELEMENTS: u64 = 1 << 40;
/// Subgraphs (If branches, Loop and Scan bodies) nest at most this deep; real exports use a few levels.
pub const MAX_SUBGRAPH_DEPTH: usize = 16;

/// Operator-set domains kiln recognises, with the newest version of each. A model may import others (or
/// newer versions): the check accepts it, and the evaluator reports those operators as ones it cannot run.
const KNOWN_DOMAINS: &[(&str, i64)] = &[
    ("", MAX_OPSET),
    ("ai.onnx", MAX_OPSET),
    ("ai.onnx.ml", 5),
    ("ai.onnx.training", 1),
    ("ai.onnx.preview.training", 1),
    // ONNX Runtime's contrib ops, which its own exporters and optimizers write.
    ("com.microsoft", 1),
    ("com.microsoft.nchwc", 1),
    // ONNX Runtime's layout-optimized (NHWC) copies of standard ops, versioned like ai.onnx.
    ("com.ms.internal.nhwc", MAX_OPSET),
];

/// The newest version of an operator domain kiln knows, if it knows the domain.
pub fn newest_opset(domain: &str) -> Option<i64> {
    KNOWN_DOMAINS
        .iter()
        .find(|(known, _)| *known == domain)
        .map(|(_, newest)| *newest)
}

/// The `ai.onnx` opset a model imports (the default domain), if it imports one.
pub fn ai_onnx_opset(model: &ModelProto) -> Option<i64> {
    model
        .opset_import
        .iter()
        .find(|o| matches!(o.domain.as_deref(), None | Some("") | Some("ai.onnx")))
        .and_then(|o| o.version)
}

/// One dimension of a graph input or output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DimInfo {
    Fixed(i64),
    Symbolic(String),
    Unknown,
}

/// A graph input or output.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ValueSignature {
    pub name: String,
    /// ONNX's name for the element type, lower case: `float32`, `int64`, `float16`, ...
    pub dtype: String,
    pub shape: Option<Vec<DimInfo>>,
}

/// What the check learned about a model that passed it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckedModel {
    pub ir_version: i64,
    /// The `ai.onnx` opset the model declares; 0 when it imports none (it uses other domains only).
    pub opset: i64,
    pub producer: String,
    pub inputs: Vec<ValueSignature>,
    pub outputs: Vec<ValueSignature>,
    pub nodes: usize,
    /// Files holding external data, relative to the model's folder, each once.
    pub external_files: Vec<String>,
    /// Where each externally stored tensor's bytes are, for checking them against the files.
    pub external_extents: Vec<ExternalExtent>,
}

/// The bytes of one externally stored tensor: `length` bytes at `offset` of `location` (relative to the
/// model's folder). `length` is the declared one, or what the tensor's shape and type need.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExternalExtent {
    pub tensor: String,
    pub location: String,
    pub offset: u64,
    pub length: Option<u64>,
}

impl ExternalExtent {
    /// Whether the extent lies inside a file of `file_len` bytes; the error says where it does not.
    pub fn check_within(&self, file_len: u64) -> Result<(), ModelError> {
        // An end past u64 is past any file.
        let end = match self.length {
            Some(length) => self.offset.saturating_add(length),
            None => self.offset,
        };
        if self.offset > file_len || end > file_len {
            return Err(ModelError::InvalidTensor {
                tensor: self.tensor.clone(),
                reason: format!(
                    "its external data ({} bytes at offset {}) lies past the end of {:?}, which has {file_len} bytes",
                    self.length.map_or("?".to_owned(), |l| l.to_string()),
                    self.offset,
                    self.location
                ),
            });
        }
        Ok(())
    }
}

fn refused(reason: impl Into<String>) -> ModelError {
    ModelError::InvalidModel(reason.into())
}

/// Decodes a model, bounded by [`MAX_MODEL_BYTES`]. Fields kiln does not know are kept by nothing here:
/// decode for reading only, and store the bytes the user pushed.
pub fn decode(bytes: Bytes) -> Result<ModelProto, ModelError> {
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(ModelError::TooLarge {
            what: "the ONNX model",
            actual: bytes.len() as u64,
            limit: MAX_MODEL_BYTES,
        });
    }
    ModelProto::decode(bytes).map_err(decode_failure)
}

/// prost names every enclosing field of a decode error; for a deeply nested model that is a 2,000-character
/// line. Keep the reason and say how deep it was.
fn decode_failure(e: prost::DecodeError) -> ModelError {
    let text = e.to_string();
    let reason = text.rsplit(": ").next().unwrap_or(&text).trim();
    let depth = text.matches(": ").count().saturating_sub(1);
    let at = match depth {
        0 => String::new(),
        n => format!(" ({n} fields deep)"),
    };
    refused(format!("not a valid ONNX model: {reason}{at}"))
}

/// Decodes and checks a model.
pub fn check(bytes: Bytes) -> Result<(ModelProto, CheckedModel), ModelError> {
    let model = decode(bytes)?;
    let checked = check_model(&model)?;
    Ok((model, checked))
}

/// Checks a decoded model.
pub fn check_model(model: &ModelProto) -> Result<CheckedModel, ModelError> {
    let ir_version = model
        .ir_version
        .ok_or_else(|| refused("the model has no ir_version"))?;
    if !(3..=MAX_IR_VERSION).contains(&ir_version) {
        return Err(refused(format!(
            "IR version {ir_version} is not one kiln knows (3 to {MAX_IR_VERSION})"
        )));
    }
    let local_functions: HashSet<&str> = model
        .functions
        .iter()
        .filter_map(|f| f.domain.as_deref())
        .collect();
    let mut opset = None;
    let mut domains = HashSet::new();
    let mut versions: HashMap<&str, i64> = HashMap::new();
    for import in &model.opset_import {
        let domain = import.domain.as_deref().unwrap_or("");
        let version = import.version.unwrap_or(0);
        // The same import twice (onnx.compose writes that when it merges models) is harmless; two versions
        // of one domain are a contradiction.
        match versions.insert(domain, version) {
            Some(earlier) if earlier != version => {
                return Err(refused(format!(
                    "opset domain {domain:?} is imported twice, as versions {earlier} and {version}"
                )));
            }
            _ => {}
        }
        domains.insert(domain);
        // A version kiln does not know, or a domain it does not know, is not malformed: the model is
        // accepted and the evaluator names the operators it cannot run. A version below 1 is malformed.
        if version < 1 && !local_functions.contains(domain) {
            return Err(refused(format!(
                "opset {version} of domain {:?} is not a valid version",
                if domain.is_empty() { "ai.onnx" } else { domain }
            )));
        }
        if domain.is_empty() || domain == "ai.onnx" {
            opset = Some(version);
        }
    }
    // A model of other domains only (an ai.onnx.ml classifier) is valid; it has no default-domain opset.
    let opset = opset.unwrap_or(0);
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| refused("the model has no graph"))?;
    let mut walk = GraphWalk {
        domains: &domains,
        nodes: 0,
        external_files: Vec::new(),
        external_extents: Vec::new(),
    };
    walk.graph(graph, &HashSet::new(), "the graph", 0)?;
    for value in graph.input.iter().chain(&graph.output) {
        check_declared_size(value)?;
    }
    let initializers: HashSet<&str> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    let inputs = graph
        .input
        .iter()
        .filter(|v| !initializers.contains(v.name.as_deref().unwrap_or("")))
        .map(signature)
        .collect();
    let outputs = graph.output.iter().map(signature).collect();
    Ok(CheckedModel {
        ir_version,
        opset,
        producer: model.producer_name.clone().unwrap_or_default(),
        inputs,
        outputs,
        nodes: walk.nodes,
        external_files: walk.external_files,
        external_extents: walk.external_extents,
    })
}

/// A graph input or output whose fixed dims multiply past [`MAX_ELEMENTS`] is refused: inputs generated
/// for it could not be allocated.
fn check_declared_size(value: &crate::proto::ValueInfoProto) -> Result<(), ModelError> {
    let Some(type_proto::Value::TensorType(tensor)) =
        value.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return Ok(());
    };
    let Some(shape) = &tensor.shape else {
        return Ok(());
    };
    let mut elements: u64 = 1;
    for dim in &shape.dim {
        // PaddlePaddle's exporter writes -1 for a dynamic dim, and ONNX Runtime takes it so: only the
        // positive ones count.
        if let Some(tensor_shape_proto::dimension::Value::DimValue(v)) = dim.value
            && v > 0
        {
            elements = elements.saturating_mul(v as u64);
        }
    }
    if elements > MAX_ELEMENTS {
        return Err(refused(format!(
            "{:?} declares a shape of more than 2^40 elements ({elements}); no tensor can be that large",
            value.name.as_deref().unwrap_or("")
        )));
    }
    Ok(())
}

struct GraphWalk<'a> {
    domains: &'a HashSet<&'a str>,
    nodes: usize,
    external_files: Vec<String>,
    external_extents: Vec<ExternalExtent>,
}

impl GraphWalk<'_> {
    /// Walks a graph in node order: each node may use only names defined before it (graph inputs,
    /// initializers, earlier outputs, or the enclosing graphs' names for a subgraph).
    fn graph(
        &mut self,
        graph: &GraphProto,
        outer: &HashSet<String>,
        what: &str,
        depth: usize,
    ) -> Result<(), ModelError> {
        if depth > MAX_SUBGRAPH_DEPTH {
            return Err(refused(format!(
                "subgraphs nest more than {MAX_SUBGRAPH_DEPTH} deep"
            )));
        }
        let mut defined: HashSet<String> = outer.clone();
        for input in &graph.input {
            defined.insert(input.name.clone().unwrap_or_default());
        }
        for tensor in &graph.initializer {
            self.tensor(tensor)?;
            defined.insert(tensor.name.clone().unwrap_or_default());
        }
        for sparse in &graph.sparse_initializer {
            if let Some(values) = &sparse.values {
                defined.insert(values.name.clone().unwrap_or_default());
            }
        }
        let mut produced = HashSet::new();
        for (index, node) in graph.node.iter().enumerate() {
            self.nodes += 1;
            if self.nodes > MAX_NODES {
                return Err(refused(format!(
                    "the model has more than {MAX_NODES} nodes"
                )));
            }
            let op = node.op_type.as_deref().unwrap_or("");
            let label = match node.name.as_deref() {
                Some(name) if !name.is_empty() => format!("node {name:?} ({op})"),
                _ => format!("node {index} ({op})"),
            };
            if op.is_empty() {
                return Err(refused(format!("{what}: {label} has no op_type")));
            }
            let domain = node.domain.as_deref().unwrap_or("");
            if !self.domains.contains(domain) {
                return Err(refused(format!(
                    "{what}: {label} uses domain {domain:?}, which the model does not import"
                )));
            }
            for input in node.input.iter().filter(|i| !i.is_empty()) {
                if !defined.contains(input) {
                    return Err(refused(format!(
                        "{what}: {label} reads {input:?}, which is not defined before it \
                         (the graph must be topologically sorted)"
                    )));
                }
            }
            for attribute in &node.attribute {
                for sub in attribute.g.iter().chain(attribute.graphs.iter()) {
                    // Only the innermost node is named: a path through every level is unreadable.
                    let inner = format!("a subgraph of {label} (depth {})", depth + 1);
                    self.graph(sub, &defined, &inner, depth + 1)?;
                }
                if attribute.r#type == Some(attribute_proto::AttributeType::Tensor as i32)
                    && let Some(t) = &attribute.t
                {
                    self.tensor(t)?;
                }
            }
            for output in node.output.iter().filter(|o| !o.is_empty()) {
                if !produced.insert(output.clone()) {
                    return Err(refused(format!(
                        "{what}: {output:?} is produced by more than one node"
                    )));
                }
                defined.insert(output.clone());
            }
        }
        for output in &graph.output {
            let name = output.name.as_deref().unwrap_or("");
            if !defined.contains(name) {
                return Err(refused(format!(
                    "{what}: output {name:?} is never computed"
                )));
            }
        }
        Ok(())
    }

    fn tensor(&mut self, tensor: &TensorProto) -> Result<(), ModelError> {
        let name = tensor.name.as_deref().unwrap_or("");
        let bad = |reason: String| ModelError::InvalidTensor {
            tensor: name.to_owned(),
            reason,
        };
        let mut elements: u64 = 1;
        for &dim in &tensor.dims {
            if dim < 0 {
                return Err(bad(format!("negative dimension {dim}")));
            }
            elements = elements.saturating_mul(dim as u64);
        }
        if elements > MAX_ELEMENTS {
            return Err(bad(format!("{elements} elements is absurd")));
        }
        let data_type = tensor.data_type.unwrap_or(0);
        if tensor_proto::DataType::try_from(data_type).is_err() || data_type == 0 {
            return Err(bad(format!("unknown element type {data_type}")));
        }
        if tensor.data_location == Some(tensor_proto::DataLocation::External as i32) {
            let (mut location, mut offset, mut length) = (None, 0, None);
            for entry in &tensor.external_data {
                let value = entry.value.as_deref().unwrap_or("");
                let count = || {
                    value
                        .parse::<u64>()
                        .map_err(|_| bad(format!("external data {value:?} is not a byte count")))
                };
                match entry.key.as_deref() {
                    Some("location") => location = Some(value),
                    Some("offset") => offset = count()?,
                    Some("length") => length = Some(count()?),
                    _ => {}
                }
            }
            let location =
                location.ok_or_else(|| bad("external data without a location".to_owned()))?;
            check_location(location).map_err(bad)?;
            if !self.external_files.iter().any(|f| f == location) {
                self.external_files.push(location.to_owned());
            }
            let needed = element_bytes(data_type).map(|width| elements.saturating_mul(width));
            self.external_extents.push(ExternalExtent {
                tensor: name.to_owned(),
                location: location.to_owned(),
                offset,
                length: length.or(needed),
            });
        } else if let Some(raw) = &tensor.raw_data
            && let Some(width) = element_bytes(data_type)
            && raw.len() as u64 != elements * width
        {
            return Err(bad(format!(
                "raw data holds {} bytes, its shape needs {}",
                raw.len(),
                elements * width
            )));
        }
        Ok(())
    }
}

/// External data must name a file in the model's own folder tree: no absolute paths, no `..`.
fn check_location(location: &str) -> Result<(), String> {
    let escapes = location.is_empty()
        || location.starts_with('/')
        || location.starts_with('\\')
        || location.contains('\0')
        || location.as_bytes().get(1) == Some(&b':')
        || location
            .split(['/', '\\'])
            .any(|part| part == ".." || part == ".");
    if escapes {
        return Err(format!(
            "external data location {location:?} leaves the model's folder"
        ));
    }
    Ok(())
}

/// Bytes per element of a fixed-width element type.
pub fn element_bytes(data_type: i32) -> Option<u64> {
    use tensor_proto::DataType as T;
    Some(match T::try_from(data_type).ok()? {
        T::Bool | T::Uint8 | T::Int8 => 1,
        T::Float16 | T::Bfloat16 | T::Uint16 | T::Int16 => 2,
        T::Float | T::Int32 | T::Uint32 => 4,
        T::Double | T::Int64 | T::Uint64 | T::Complex64 => 8,
        T::Complex128 => 16,
        T::Float8e4m3fn | T::Float8e4m3fnuz | T::Float8e5m2 | T::Float8e5m2fnuz | T::Float8e8m0 => {
            1
        }
        _ => return None,
    })
}

/// The `dtype` of a value that is not a tensor: a sequence, a map or an optional (skl2onnx's ZipMap
/// writes a sequence of maps, one per row).
pub const NON_TENSOR: &str = "non-tensor";

/// ONNX's lower-case name of an element type.
pub fn dtype_name(data_type: i32) -> String {
    use tensor_proto::DataType as T;
    match T::try_from(data_type) {
        Ok(T::Float) => "float32".to_owned(),
        Ok(T::Double) => "float64".to_owned(),
        Ok(T::Float16) => "float16".to_owned(),
        Ok(T::Bfloat16) => "bfloat16".to_owned(),
        Ok(other) => other.as_str_name().to_ascii_lowercase(),
        Err(_) => format!("unknown({data_type})"),
    }
}

fn signature(value: &crate::proto::ValueInfoProto) -> ValueSignature {
    let name = value.name.clone().unwrap_or_default();
    match value.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(tensor)) => ValueSignature {
            name,
            dtype: dtype_name(tensor.elem_type.unwrap_or(0)),
            shape: tensor.shape.as_ref().map(|shape| {
                shape
                    .dim
                    .iter()
                    .map(|d| match &d.value {
                        Some(tensor_shape_proto::dimension::Value::DimValue(v)) if *v >= 0 => {
                            DimInfo::Fixed(*v)
                        }
                        Some(tensor_shape_proto::dimension::Value::DimParam(p))
                            if !p.is_empty() =>
                        {
                            DimInfo::Symbolic(p.clone())
                        }
                        _ => DimInfo::Unknown,
                    })
                    .collect()
            }),
        },
        Some(_) => ValueSignature {
            name,
            dtype: NON_TENSOR.to_owned(),
            shape: None,
        },
        None => ValueSignature {
            name,
            dtype: "unknown".to_owned(),
            shape: None,
        },
    }
}

/// The bytes a model's initializers hold (inline or external), from their dims and element types; a
/// string or unknown type counts 8 bytes an element.
pub fn initializer_bytes(model: &ModelProto) -> u64 {
    use crate::proto::tensor_proto::DataType;
    let Some(graph) = model.graph.as_ref() else {
        return 0;
    };
    graph
        .initializer
        .iter()
        .map(|t| {
            let count = t
                .dims
                .iter()
                .try_fold(1u64, |n, &d| n.checked_mul(u64::try_from(d).ok()?))
                .unwrap_or(u64::MAX);
            let bits: u64 = match DataType::try_from(t.data_type.unwrap_or(0)) {
                Ok(DataType::Int4 | DataType::Uint4) => 4,
                Ok(
                    DataType::Int8
                    | DataType::Uint8
                    | DataType::Bool
                    | DataType::Float8e4m3fn
                    | DataType::Float8e4m3fnuz
                    | DataType::Float8e5m2
                    | DataType::Float8e5m2fnuz,
                ) => 8,
                Ok(DataType::Float16 | DataType::Bfloat16 | DataType::Int16 | DataType::Uint16) => {
                    16
                }
                Ok(DataType::Float | DataType::Int32 | DataType::Uint32) => 32,
                _ => 64,
            };
            count.saturating_mul(bits).div_ceil(8)
        })
        .fold(0u64, u64::saturating_add)
}
