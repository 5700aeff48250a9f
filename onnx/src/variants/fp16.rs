//! float16 variant: float weights and compute in fp16; graph inputs and outputs stay fp32 for the caller
//! (Casts at the edges), and the numerically sensitive operators run in fp32 between Casts. Weights are
//! clamped to fp16's range (±65504), so "minus infinity" mask constants stay finite.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use candle_core::{DType, Device};

mod sixteen_bit;
mod subgraphs;

pub use sixteen_bit::write_streamed;

use crate::ModelError;
use crate::eval::tensor_io;
use crate::graph_builder::attr_int;
use crate::proto::{
    AttributeProto, ModelProto, NodeProto, TensorProto, tensor_proto::DataType, type_proto,
};

/// Operators kept in fp32: reductions and normalizations that overflow or lose too much in fp16.
const KEEP_FP32: &[&str] = &[
    "LayerNormalization",
    "Softmax",
    "LogSoftmax",
    "ReduceMean",
    "ReduceSum",
    "Pow",
    "Exp",
    "Erf",
    "InstanceNormalization",
];

const FP16_MAX: f32 = 65504.0;

const ML_DOMAIN: &str = "ai.onnx.ml";

/// The outputs of an ONNX-ML operator that hold no floats: a classifier's labels, a LabelEncoder's
/// integer or string values, ZipMap's maps, CategoryMapper's.
fn ml_non_float_outputs(node: &NodeProto) -> &[String] {
    let op = node.op_type.as_deref().unwrap_or("");
    let float_types = [DataType::Float as i32, DataType::Double as i32];
    let label_encoder_to_numbers_or_strings = op == "LabelEncoder"
        && !node.attribute.iter().any(|a| match a.name.as_deref() {
            Some("values_floats") => !a.floats.is_empty(),
            Some("values_tensor") => {
                a.t.as_ref()
                    .is_some_and(|t| float_types.contains(&t.data_type.unwrap_or(0)))
            }
            _ => false,
        });
    let labels = matches!(
        op,
        "LinearClassifier" | "SVMClassifier" | "TreeEnsembleClassifier"
    );
    let all = matches!(op, "ZipMap" | "CategoryMapper") || label_encoder_to_numbers_or_strings;
    match (all, labels) {
        (true, _) => &node.output,
        (false, true) => &node.output[..node.output.len().min(1)],
        (false, false) => &[],
    }
}

/// An operator, the opsets from and until which its schema has these fp32-only input and output slots.
type Fp32Slots = (&'static str, i64, i64, &'static [usize], &'static [usize]);

/// Slots that ONNX's operator schemas type as float32 without float16 (input slots, output slots), and
/// the opsets where they do so, from and until: read off onnx's schemas for ai.onnx opsets 7-21. A value
/// in fp16 there makes a model ONNX Runtime refuses to load, however well kiln's evaluator runs it.
const FP32_ONLY: &[Fp32Slots] = &[
    ("Celu", 12, i64::MAX, &[0], &[0]),
    ("CumSum", 11, 13, &[0], &[0]),
    ("DequantizeLinear", 10, 18, &[1], &[0]),
    ("DynamicQuantizeLinear", 11, i64::MAX, &[0], &[1]),
    ("IsInf", 10, 19, &[0], &[]),
    ("NonMaxSuppression", 10, i64::MAX, &[0, 1, 3, 4], &[]),
    ("QLinearConv", 10, i64::MAX, &[1, 4, 6], &[]),
    ("QLinearMatMul", 10, 20, &[1, 4, 6], &[]),
    ("QuantizeLinear", 10, 18, &[0, 1], &[]),
    ("Range", 11, i64::MAX, &[0, 1, 2], &[0]),
    ("Resize", 10, 10, &[1], &[]),
    ("Resize", 11, i64::MAX, &[2], &[]),
    ("TfIdfVectorizer", 9, i64::MAX, &[], &[0]),
    ("Upsample", 9, i64::MAX, &[1], &[]),
];

/// The input and output slots of `node` that compute in fp32 in an fp16 graph: every slot of a kept
/// operator (unless it works on integers: ReduceSum over a mask), or what the schema demands.
pub(super) fn fp32_slots(
    node: &NodeProto,
    opset: i64,
    non_float: &HashSet<String>,
) -> (Vec<usize>, Vec<usize>) {
    let op = node.op_type.as_deref().unwrap_or("");
    // ONNX-ML's operators (scikit-learn's models) take float, double and integers, never float16.
    if node.domain.as_deref() == Some(ML_DOMAIN) {
        return (
            (0..node.input.len()).collect(),
            (0..node.output.len()).collect(),
        );
    }
    // x·x (RMSNorm's mean of squares) overflows fp16 once |x| passes 256, which a Llama's activations do.
    let squares = op == "Mul" && node.input.len() == 2 && node.input[0] == node.input[1];
    if (KEEP_FP32.contains(&op) || squares)
        && node.input.first().is_none_or(|i| !non_float.contains(i))
    {
        return (
            (0..node.input.len()).collect(),
            (0..node.output.len()).collect(),
        );
    }
    FP32_ONLY
        .iter()
        .find(|(o, from, until, _, _)| *o == op && (*from..=*until).contains(&opset))
        .map(|(_, _, _, inputs, outputs)| (inputs.to_vec(), outputs.to_vec()))
        .unwrap_or_default()
}

/// Pushes `node` onto `nodes` between Casts: the float values in its fp32 input slots widened (unless
/// `fp32` says they already are), its float outputs in fp32 slots narrowed back to fp16.
pub(super) fn push_between_casts(
    mut node: NodeProto,
    (inputs, outputs): (&[usize], &[usize]),
    non_float: &HashSet<String>,
    fp32: &HashSet<String>,
    nodes: &mut Vec<NodeProto>,
) {
    let tag = nodes.len();
    for &slot in inputs {
        if let Some(input) = node.input.get_mut(slot)
            && !input.is_empty()
            && !non_float.contains(input.as_str())
            && !fp32.contains(input.as_str())
        {
            let wide = format!("{input}.fp32.{tag}.{slot}");
            nodes.push(cast(input, &wide, DataType::Float));
            *input = wide;
        }
    }
    let mut after = Vec::new();
    for &slot in outputs {
        if let Some(output) = node.output.get_mut(slot)
            && !output.is_empty()
            && !non_float.contains(output.as_str())
        {
            let narrow = output.clone();
            *output = format!("{narrow}.fp32");
            after.push(cast(output, &narrow, DataType::Float16));
        }
    }
    nodes.push(node);
    nodes.extend(after);
}

/// Values known to be integers or booleans, so never cast to or from fp16: integer initializers and
/// inputs, the results of shape and comparison operators and of integer Casts, and what operators that
/// keep their input's type compute from them.
fn non_float_values(graph: &crate::proto::GraphProto) -> HashSet<String> {
    let float_types = [
        DataType::Float as i32,
        DataType::Float16 as i32,
        DataType::Double as i32,
        DataType::Bfloat16 as i32,
    ];
    let mut set: HashSet<String> = graph
        .initializer
        .iter()
        .filter(|t| !float_types.contains(&t.data_type.unwrap_or(0)))
        .filter_map(|t| t.name.clone())
        .collect();
    for v in &graph.input {
        if let Some(type_proto::Value::TensorType(t)) =
            v.r#type.as_ref().and_then(|t| t.value.as_ref())
            && !float_types.contains(&t.elem_type.unwrap_or(0))
        {
            set.extend(v.name.clone());
        }
    }
    for node in &graph.node {
        let op = node.op_type.as_deref().unwrap_or("");
        let first_is_int = node.input.first().is_some_and(|i| set.contains(i));
        let to_int = op == "Cast"
            && node.attribute.iter().any(|a| {
                a.name.as_deref() == Some("to") && !float_types.contains(&(a.i.unwrap_or(0) as i32))
            });
        let produces_int = matches!(
            op,
            "Shape"
                | "Size"
                | "ArgMax"
                | "ArgMin"
                | "NonZero"
                | "Equal"
                | "Greater"
                | "Less"
                | "GreaterOrEqual"
                | "LessOrEqual"
                | "Not"
                | "And"
                | "Or"
                | "Xor"
                | "IsNaN"
                | "IsInf"
        );
        // ONNX-ML operators say by their own rules what they output (a one-hot encoding of integers is
        // floats); only those that pass X's type through keep an integer input's type.
        let ml = node.domain.as_deref() == Some(ML_DOMAIN);
        let keeps_type = op != "Cast"
            && first_is_int
            && (!ml || matches!(op, "ArrayFeatureExtractor" | "Imputer" | "Binarizer"));
        if ml {
            set.extend(ml_non_float_outputs(node).iter().cloned());
        }
        if produces_int || to_int || keeps_type {
            set.extend(node.output.iter().filter(|o| !o.is_empty()).cloned());
        } else if op == "TopK" {
            set.extend(node.output.get(1).cloned());
        }
    }
    set
}

fn cast(input: &str, output: &str, to: DataType) -> NodeProto {
    NodeProto {
        name: Some(format!("{output}.cast")),
        op_type: Some("Cast".to_owned()),
        input: vec![input.to_owned()],
        output: vec![output.to_owned()],
        attribute: vec![attr_int("to", to as i64)],
        ..Default::default()
    }
}

fn to_half(t: &TensorProto) -> Result<TensorProto, ModelError> {
    let values = tensor_io::from_proto(t, None, &Device::Cpu)?.to_dtype(DType::F32)?;
    let clamped = values.clamp(-FP16_MAX, FP16_MAX)?.to_dtype(DType::F16)?;
    let bits: Vec<u8> = clamped
        .flatten_all()?
        .to_vec1::<half::f16>()?
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    Ok(TensorProto {
        name: t.name.clone(),
        dims: t.dims.clone(),
        data_type: Some(DataType::Float16 as i32),
        raw_data: Some(Bytes::from(bits)),
        ..Default::default()
    })
}

/// Narrows a Cast to float and float Constants to fp16; says whether a Constant was narrowed.
fn narrow_constants(node: &mut NodeProto) -> Result<bool, ModelError> {
    let mut narrowed = false;
    match node.op_type.as_deref() {
        Some("Cast") => {
            for a in &mut node.attribute {
                if a.name.as_deref() == Some("to") && a.i == Some(DataType::Float as i64) {
                    a.i = Some(DataType::Float16 as i64);
                }
            }
        }
        Some("Constant") | Some("ConstantOfShape") => {
            for a in &mut node.attribute {
                if let Some(t) =
                    a.t.as_mut()
                        .filter(|t| t.data_type == Some(DataType::Float as i32))
                {
                    *t = to_half(t)?;
                    narrowed = true;
                }
                if a.name.as_deref() == Some("value_float") {
                    let v = a.f.unwrap_or(0.0).clamp(-FP16_MAX, FP16_MAX);
                    *a = AttributeProto {
                        name: Some("value".to_owned()),
                        r#type: Some(4),
                        t: Some(to_half(&tensor_io::to_proto(
                            "value",
                            &candle_core::Tensor::new(v, &Device::Cpu)?,
                        )?)?),
                        ..Default::default()
                    };
                    narrowed = true;
                }
            }
        }
        _ => {}
    }
    Ok(narrowed)
}

fn is_float_value(v: &crate::proto::ValueInfoProto) -> bool {
    matches!(v.r#type.as_ref().and_then(|t| t.value.as_ref()), Some(type_proto::Value::TensorType(t)) if t.elem_type == Some(DataType::Float as i32))
}

pub fn convert(optimized: &ModelProto) -> Result<ModelProto, ModelError> {
    let mut model = optimized.clone();
    sixteen_bit::widen_cast_weights(&mut model)?;
    convert_with(&model, &to_half)
}

/// [`convert`] with `narrow` making each fp16 initializer from its fp32 one (the streamed variant
/// defers the data of external ones to its writer).
fn convert_with(
    model: &ModelProto,
    narrow: &dyn Fn(&TensorProto) -> Result<TensorProto, ModelError>,
) -> Result<ModelProto, ModelError> {
    let mut model = model.clone();
    let opset = crate::model_check::ai_onnx_opset(&model).unwrap_or(1);
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| ModelError::InvalidModel("no graph".to_owned()))?;
    let non_float = non_float_values(graph);
    graph.value_info.clear(); // their float types would be stale
    // Float initializers read in an fp32 slot (a kept operator's scale, Resize's scales) stay fp32; a
    // copy serves when fp16 readers share them.
    let slots: Vec<(Vec<usize>, Vec<usize>)> = graph
        .node
        .iter()
        .map(|n| fp32_slots(n, opset, &non_float))
        .collect();
    // Subgraphs compute in fp16 too: what they read needs an fp16 copy.
    let mut fp16_readers = crate::optimize::usage::read_in_subgraphs(graph);
    fp16_readers.extend(graph.node.iter().zip(&slots).flat_map(|(n, (s, _))| {
        n.input
            .iter()
            .enumerate()
            .filter(|(i, _)| !s.contains(i))
            .map(|(_, name)| name.clone())
    }));
    let mut fp32_params: HashSet<String> = HashSet::new();
    for (node, (slots, _)) in graph.node.iter_mut().zip(&slots) {
        for (_, input) in node
            .input
            .iter_mut()
            .enumerate()
            .filter(|(i, _)| slots.contains(i))
        {
            if graph.initializer.iter().any(|t| {
                t.name.as_ref() == Some(input) && t.data_type == Some(DataType::Float as i32)
            }) {
                if fp16_readers.contains(input.as_str()) {
                    *input = format!("{input}.fp32");
                }
                fp32_params.insert(input.clone());
            }
        }
    }
    let mut copies = Vec::new();
    // Values held in fp16 that subgraphs' fp32-only slots must widen again.
    let mut half: HashSet<String> = HashSet::new();
    for t in &mut graph.initializer {
        let name = t.name.clone().unwrap_or_default();
        if t.data_type != Some(DataType::Float as i32) {
            continue;
        }
        if fp32_params.contains(&format!("{name}.fp32")) {
            let mut copy = t.clone();
            copy.name = Some(format!("{name}.fp32"));
            copies.push(copy);
        }
        if !fp32_params.contains(&name) {
            *t = narrow(t)?;
            half.insert(name);
        }
    }
    graph.initializer.extend(copies);

    let mut nodes = Vec::new();
    // fp32 inputs become fp16 at once. Initializers listed as inputs too (IR 3 models) are weights,
    // already converted: their declared type follows them.
    let initializer_types: HashMap<String, i32> = graph
        .initializer
        .iter()
        .filter_map(|t| Some((t.name.clone()?, t.data_type?)))
        .collect();
    for input in &mut graph.input {
        if let Some(&data_type) = input.name.as_ref().and_then(|n| initializer_types.get(n))
            && let Some(type_proto::Value::TensorType(t)) =
                input.r#type.as_mut().and_then(|t| t.value.as_mut())
        {
            t.elem_type = Some(data_type);
        }
    }
    let float_inputs: Vec<String> = graph
        .input
        .iter()
        .filter(|v| is_float_value(v))
        .filter_map(|v| v.name.clone())
        .filter(|name| !initializer_types.contains_key(name))
        .collect();
    for name in &float_inputs {
        nodes.push(cast(name, &format!("{name}.fp16"), DataType::Float16));
    }
    let float_outputs: Vec<String> = graph
        .output
        .iter()
        .filter(|v| is_float_value(v))
        .filter_map(|v| v.name.clone())
        .collect();
    let rename = |name: &str| -> String {
        if float_inputs.iter().any(|n| n == name) || float_outputs.iter().any(|n| n == name) {
            format!("{name}.fp16")
        } else {
            name.to_owned()
        }
    };
    for (mut node, slots) in std::mem::take(&mut graph.node).into_iter().zip(slots) {
        for input in &mut node.input {
            if !input.is_empty() {
                *input = rename(input);
            }
        }
        for output in &mut node.output {
            if !output.is_empty() {
                *output = rename(output);
            }
        }
        if narrow_constants(&mut node)? {
            half.extend(node.output.iter().cloned());
        }
        subgraphs::convert_all(&mut node, opset, &rename, &non_float, &half)?;
        push_between_casts(
            node,
            (&slots.0, &slots.1),
            &non_float,
            &fp32_params,
            &mut nodes,
        );
    }
    for name in &float_outputs {
        nodes.push(cast(&format!("{name}.fp16"), name, DataType::Float));
    }
    graph.node = nodes;
    Ok(model)
}
