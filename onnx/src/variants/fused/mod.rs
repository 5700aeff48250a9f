//! The `fused` variant: the optimized fp32 model with BERT-style multi-head attention and GELU (erf or
//! its tanh approximation), spelled out in primitive operators, each fused into one operator: ONNX
//! Runtime's `Attention` (com.microsoft), and `Gelu` (ONNX's own from opset 20, `approximate="tanh"` for
//! the approximation; before it ONNX Runtime's `Gelu` and `FastGelu`). ONNX Runtime's own graph
//! optimizations do not recognize these blocks as kiln's converter writes them; fused, a small BERT runs
//! about a quarter faster in ONNX Runtime on the CPU (docs/benchmarks.md). The price is portability: the
//! variant runs on ONNX Runtime and kiln's evaluator, not on engines without ONNX Runtime's contrib
//! operators, which is why it is made on request and not by default.

mod attention;
mod gelu;
mod view;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use candle_core::{Device, Tensor};

use self::view::{View, is_op};
use crate::ModelError;
use crate::eval::tensor_io;
use crate::graph_builder::{attr_float, attr_int};
use crate::proto::attribute_proto::AttributeType;
use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, tensor_proto::DataType,
};

const CONTRIB: &str = "com.microsoft";

/// What [`fuse`] found and fused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fused {
    pub attention: usize,
    pub gelu: usize,
}

/// `optimized` with its attention blocks and GELUs fused; an error naming what the variant looks for when
/// there is neither.
pub fn fuse(optimized: &ModelProto) -> Result<(ModelProto, Fused), ModelError> {
    let mut model = optimized.clone();
    let opset = crate::model_check::ai_onnx_opset(&model).unwrap_or(1);
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| ModelError::InvalidModel("the model has no graph".into()))?;
    let (attention, gelu) = {
        let view = View::of(graph, opset);
        let found = |op: &'static str| {
            graph
                .node
                .iter()
                .enumerate()
                .filter(move |(_, n)| is_op(n, op))
                .map(|(i, _)| i)
        };
        let attention: Vec<_> = found("Softmax")
            .filter_map(|i| attention::find(&view, i))
            .collect();
        let erf = found("Erf").filter_map(|i| gelu::find(&view, i));
        let tanh = found("Tanh").filter_map(|i| gelu::find_tanh(&view, i));
        let gelu: Vec<_> = erf.chain(tanh).collect();
        (attention, gelu)
    };
    let fused = Fused {
        attention: attention.len(),
        gelu: gelu.len(),
    };
    if fused.attention == 0 && fused.gelu == 0 {
        return Err(ModelError::Unsupported(
            "the fused variant found nothing to fuse: it fuses BERT-style self-attention (Q, K and V \
             projections of one f32 input, a padding mask from an integer input or none) and GELU \
             (erf or tanh); ask for fp32 instead"
                .into(),
        ));
    }
    rewrite(graph, attention, gelu, opset)?;
    if fused.attention > 0 || opset < 20 {
        import_contrib(&mut model);
    }
    crate::optimize::remove_dead_code(&mut model)?;
    Ok((model, fused))
}

fn import_contrib(model: &mut ModelProto) {
    if !model
        .opset_import
        .iter()
        .any(|o| o.domain.as_deref() == Some(CONTRIB))
    {
        model.opset_import.push(OperatorSetIdProto {
            domain: Some(CONTRIB.to_owned()),
            version: Some(1),
        });
    }
}

/// Value names not yet taken in a graph.
struct Names(HashSet<String>);

impl Names {
    fn of(graph: &GraphProto) -> Self {
        let inputs = graph.input.iter().filter_map(|i| i.name.clone());
        let initializers = graph.initializer.iter().filter_map(|t| t.name.clone());
        let outputs = graph.node.iter().flat_map(|n| n.output.iter().cloned());
        Self(inputs.chain(initializers).chain(outputs).collect())
    }

    fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_owned();
        while self.0.contains(&name) {
            name.push('_');
        }
        self.0.insert(name.clone());
        name
    }
}

/// Replaces each block found by its fused node, placed where the block's last node was.
fn rewrite(
    graph: &mut GraphProto,
    attention: Vec<attention::Found>,
    gelu: Vec<gelu::Found>,
    opset: i64,
) -> Result<(), ModelError> {
    let mut names = Names::of(graph);
    let mut claimed = BTreeSet::new();
    let mut replacement: HashMap<usize, NodeProto> = HashMap::new();
    let mut masks: BTreeMap<String, String> = BTreeMap::new();
    let mut front = Vec::new();
    for found in attention {
        if !found.nodes.is_disjoint(&claimed) {
            continue;
        }
        claimed.extend(found.nodes.iter().copied());
        let mask = found
            .mask
            .as_ref()
            .map(|mask| mask_index(&mut names, &mut masks, &mut front, mask));
        let (weight, bias) = packed(graph, &mut names, &found)?;
        let mut input = vec![found.input.clone(), weight, bias];
        let mut attribute = vec![
            attr_int("num_heads", found.heads),
            attr_float("scale", found.scale),
        ];
        if let (Some(index), Some(mask)) = (mask, &found.mask) {
            input.push(index);
            attribute.push(attr_float("mask_filter_value", mask.filter));
        }
        let node = NodeProto {
            name: Some(format!("{}_attention", found.output)),
            op_type: Some("Attention".into()),
            domain: Some(CONTRIB.into()),
            input,
            output: vec![found.output.clone()],
            attribute,
            ..Default::default()
        };
        replacement.insert(found.at, node);
    }
    for found in gelu {
        if !found.nodes.is_disjoint(&claimed) {
            continue;
        }
        claimed.extend(found.nodes.iter().copied());
        let (domain, op, attribute) = match (found.form, opset >= 20) {
            (gelu::Form::Erf, true) => ("", "Gelu", vec![]),
            (gelu::Form::Erf, false) => (CONTRIB, "Gelu", vec![]),
            (gelu::Form::Tanh, true) => ("", "Gelu", vec![approximate_tanh()]),
            (gelu::Form::Tanh, false) => (CONTRIB, "FastGelu", vec![]),
        };
        let node = NodeProto {
            name: Some(format!("{}_gelu", found.output)),
            op_type: Some(op.into()),
            domain: Some(domain.into()),
            input: vec![found.input],
            output: vec![found.output],
            attribute,
            ..Default::default()
        };
        replacement.insert(found.at, node);
    }
    let old = std::mem::take(&mut graph.node);
    graph.node = front;
    for (index, node) in old.into_iter().enumerate() {
        if let Some(fused) = replacement.remove(&index) {
            graph.node.push(fused);
        } else if !claimed.contains(&index) {
            graph.node.push(node);
        }
    }
    Ok(())
}

fn approximate_tanh() -> AttributeProto {
    AttributeProto {
        name: Some("approximate".into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(b"tanh".to_vec().into()),
        ..Default::default()
    }
}

/// The int32 mask `Attention` reads, cast once from the graph input (itself where it is int32).
fn mask_index(
    names: &mut Names,
    masks: &mut BTreeMap<String, String>,
    front: &mut Vec<NodeProto>,
    mask: &attention::PaddingMask,
) -> String {
    let input = mask.input.as_str();
    if let Some(name) = masks.get(input) {
        return name.clone();
    }
    let name = if mask.int32 {
        input.to_owned()
    } else {
        let name = names.fresh(&format!("{input}_int32"));
        front.push(NodeProto {
            name: Some(name.clone()),
            op_type: Some("Cast".into()),
            input: vec![input.to_owned()],
            output: vec![name.clone()],
            attribute: vec![attr_int("to", DataType::Int32 as i64)],
            ..Default::default()
        });
        name
    };
    masks.insert(input.to_owned(), name.clone());
    name
}

/// Q, K and V's weights side by side, [hidden, 3·H·D], and their biases, [3·H·D], as new initializers.
fn packed(
    graph: &mut GraphProto,
    names: &mut Names,
    found: &attention::Found,
) -> Result<(String, String), ModelError> {
    let width = found.biases[0].len();
    let mut weight = Vec::with_capacity(found.hidden * 3 * width);
    for row in 0..found.hidden {
        for w in &found.weights {
            weight.extend_from_slice(&w[row * width..(row + 1) * width]);
        }
    }
    let bias = found.biases.concat();
    let weight = Tensor::from_vec(weight, (found.hidden, 3 * width), &Device::Cpu)?;
    let bias = Tensor::from_vec(bias, 3 * width, &Device::Cpu)?;
    let weight_name = names.fresh(&format!("{}_qkv_weight", found.output));
    let bias_name = names.fresh(&format!("{}_qkv_bias", found.output));
    graph
        .initializer
        .push(tensor_io::to_proto(&weight_name, &weight)?);
    graph
        .initializer
        .push(tensor_io::to_proto(&bias_name, &bias)?);
    Ok((weight_name, bias_name))
}

#[cfg(test)]
mod tests;
