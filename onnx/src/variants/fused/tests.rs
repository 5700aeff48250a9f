//! The fused variant on kiln's converted BERT, as converted and as PyTorch's exporter spells the same
//! blocks: what is fused, and that the model computes what it computed (padding included).

use std::collections::HashMap;

use candle_core::{Device, Tensor};

use super::*;
use crate::checkpoint::Checkpoint;
use crate::eval::Session;
use crate::proto::TensorProto;

fn converted_bert() -> (ModelProto, HashMap<String, Tensor>) {
    let sample = crate::sample_models::bert(48, 16, 2, 2).unwrap();
    let checkpoint = Checkpoint::from_tensors(sample.tensors.clone());
    let mut model = crate::convert::bert::build(&sample.config, &checkpoint).unwrap();
    crate::optimize::optimize(&mut model).unwrap();
    let inputs = crate::convert::bert::sample_inputs(&sample.config).unwrap();
    // The second row is padded: the mask is read.
    let mask = inputs["attention_mask"].to_vec2::<i64>().unwrap();
    assert!(mask[1].contains(&0) && mask[0].iter().all(|&m| m == 1));
    (model, inputs)
}

/// The model's first node of `op`.
fn first<'a>(model: &'a ModelProto, op: &str) -> &'a NodeProto {
    let graph = model.graph.as_ref().unwrap();
    graph
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some(op))
        .unwrap()
}

fn count(model: &ModelProto, op: &str) -> usize {
    let graph = model.graph.as_ref().unwrap();
    graph
        .node
        .iter()
        .filter(|n| n.op_type.as_deref() == Some(op))
        .count()
}

/// The first output of each model on the same inputs: relative L2 error of `b` against `a`.
fn difference(a: &ModelProto, b: &ModelProto, inputs: &HashMap<String, Tensor>) -> f64 {
    let run = |m: &ModelProto| {
        Session::new(m, None, &Device::Cpu)
            .unwrap()
            .run(inputs)
            .unwrap()
    };
    let (x, y) = (run(a), run(b));
    crate::validate::compare("out", &y[0].1, &x[0].1)
        .unwrap()
        .rel_l2_error
}

fn initializer<'a>(model: &'a mut ModelProto, name: &str) -> &'a mut TensorProto {
    let graph = model.graph.as_mut().unwrap();
    graph
        .initializer
        .iter_mut()
        .find(|t| t.name.as_deref() == Some(name))
        .unwrap()
}

fn set_scalar(model: &mut ModelProto, name: &str, value: f32) {
    let tensor = Tensor::new(value, &Device::Cpu).unwrap();
    *initializer(model, name) = tensor_io::to_proto(name, &tensor).unwrap();
}

/// The same model as PyTorch's exporter spells BERT: the scores divided by √d, Kᵀ by heads in one
/// Transpose<0,2,3,1>, GELU's argument divided by √2.
fn spelled_as_pytorch(model: &mut ModelProto) {
    let graph = model.graph.as_ref().unwrap();
    let mut divisors = Vec::new();
    for node in &graph.node {
        let scalar = node.input.get(1).cloned().unwrap_or_default();
        for (prefix, divisor) in [("attention_scale", 8f32.sqrt()), ("inv_sqrt2", 2f32.sqrt())] {
            if node.op_type.as_deref() == Some("Mul") && scalar.starts_with(prefix) {
                divisors.push((node.output[0].clone(), scalar.clone(), divisor));
            }
        }
    }
    assert_eq!(divisors.len(), 4, "two scales and two GELUs");
    for (output, scalar, divisor) in divisors {
        set_scalar(model, &scalar, divisor);
        let graph = model.graph.as_mut().unwrap();
        let node = graph
            .node
            .iter_mut()
            .find(|n| n.output[0] == output)
            .unwrap();
        node.op_type = Some("Div".into());
    }
    let graph = model.graph.as_mut().unwrap();
    let producer: HashMap<String, NodeProto> = graph
        .node
        .iter()
        .map(|n| (n.output[0].clone(), n.clone()))
        .collect();
    let mut merged = HashSet::new();
    for node in &mut graph.node {
        let perm = |n: &NodeProto| n.attribute.first().map(|a| a.ints.clone());
        if node.op_type.as_deref() == Some("Transpose") && perm(node) == Some(vec![0, 1, 3, 2]) {
            let inner = &producer[&node.input[0]];
            assert_eq!(perm(inner), Some(vec![0, 2, 1, 3]));
            node.input[0] = inner.input[0].clone();
            node.attribute[0].ints = vec![0, 2, 3, 1];
            merged.insert(inner.output[0].clone());
        }
    }
    assert_eq!(merged.len(), 2);
    graph.node.retain(|n| !merged.contains(&n.output[0]));
}

#[test]
fn every_attention_block_and_gelu_of_kilns_bert_is_fused_and_computes_the_same() {
    let (original, inputs) = converted_bert();
    let (fused, found) = fuse(&original).unwrap();
    assert_eq!(
        found,
        Fused {
            attention: 2,
            gelu: 2
        }
    );
    assert_eq!((count(&fused, "Attention"), count(&fused, "Gelu")), (2, 2));
    for gone in ["Softmax", "Erf", "Transpose", "Reshape"] {
        assert_eq!(count(&fused, gone), 0, "{gone}");
    }
    // One cast of the mask for both layers; the original's mask arithmetic is gone.
    assert_eq!((count(&fused, "Cast"), count(&fused, "Sub")), (1, 0));
    assert!(
        fused
            .opset_import
            .iter()
            .any(|o| o.domain.as_deref() == Some(CONTRIB))
    );
    let error = difference(&original, &fused, &inputs);
    assert!(error < 1e-6, "{error}");
}

#[test]
fn pytorchs_spelling_of_the_same_blocks_is_fused_too() {
    let (mut original, inputs) = converted_bert();
    spelled_as_pytorch(&mut original);
    let (fused, found) = fuse(&original).unwrap();
    assert_eq!(
        found,
        Fused {
            attention: 2,
            gelu: 2
        }
    );
    let error = difference(&original, &fused, &inputs);
    assert!(error < 1e-6, "{error}");
}

/// A value inside a block that something else reads (here the first layer's attention probabilities,
/// made a graph output) keeps that block as it is; the other is fused.
#[test]
fn a_block_whose_inner_value_is_read_elsewhere_is_left_alone() {
    let (mut original, inputs) = converted_bert();
    let graph = original.graph.as_mut().unwrap();
    let softmax = graph
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("Softmax"))
        .unwrap();
    let probs = crate::proto::ValueInfoProto {
        name: Some(softmax.output[0].clone()),
        ..Default::default()
    };
    graph.output.push(probs);
    let (fused, found) = fuse(&original).unwrap();
    assert_eq!(found.attention, 1);
    assert_eq!(count(&fused, "Softmax"), 1);
    let error = difference(&original, &fused, &inputs);
    assert!(error < 1e-6, "{error}");
}

/// GELU at opset 20 and later is ONNX's own operator.
#[test]
fn gelu_is_onnxs_own_from_opset_20() {
    let (mut original, inputs) = converted_bert();
    crate::variants::opset21::upgrade(&mut original).unwrap();
    let (fused, _) = fuse(&original).unwrap();
    let gelu = first(&fused, "Gelu");
    assert_eq!(gelu.domain.as_deref(), Some(""));
    let error = difference(&original, &fused, &inputs);
    assert!(error < 1e-6, "{error}");
}

#[test]
fn a_model_with_nothing_to_fuse_is_refused_saying_what_the_variant_fuses() {
    let error = fuse(&crate::sample_models::mlp_graph(false)).unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("self-attention") && message.contains("fp32"),
        "{message}"
    );
}

/// A weight that is also a graph input is a default a caller may replace: its block is left alone. A
/// hostile head shape whose H·D does not fit in i64 is no match, not a panic.
#[test]
fn replaceable_weights_and_impossible_head_shapes_are_not_fused() {
    let (mut original, _) = converted_bert();
    let graph = original.graph.as_mut().unwrap();
    let weight = "encoder.layer.0.attention.self.query.weight";
    graph.input.push(crate::proto::ValueInfoProto {
        name: Some(weight.to_owned()),
        ..Default::default()
    });
    let (_, found) = fuse(&original).unwrap();
    assert_eq!(found.attention, 1);

    let (mut original, _) = converted_bert();
    let graph = original.graph.as_ref().unwrap();
    let shapes: Vec<String> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.clone())
        .filter(|n| n.starts_with("heads_shape"))
        .collect();
    assert_eq!(shapes.len(), 6, "Q, K and V in two layers");
    for name in shapes {
        let huge = Tensor::new(&[0i64, 0, 1 << 40, 1 << 40], &Device::Cpu).unwrap();
        *initializer(&mut original, &name) = tensor_io::to_proto(&name, &huge).unwrap();
    }
    let (_, found) = fuse(&original).unwrap();
    assert_eq!(found.attention, 0);
}

fn converted_gpt2() -> (ModelProto, HashMap<String, Tensor>) {
    let sample = crate::sample_models::gpt2(48, 16, 2, 2).unwrap();
    let checkpoint = Checkpoint::from_tensors(sample.tensors.clone());
    let mut model = crate::convert::gpt2::build(&sample.config, &checkpoint).unwrap();
    crate::optimize::optimize(&mut model).unwrap();
    (model, crate::convert::gpt2::sample_inputs(48).unwrap())
}

/// `Pow(x, 3)` written as `x · (x · x)`, as some exporters spell the cube.
fn cube_as_products(model: &mut ModelProto) {
    let graph = model.graph.as_mut().unwrap();
    let mut rewritten = 0;
    let mut nodes = Vec::new();
    for node in std::mem::take(&mut graph.node) {
        if node.op_type.as_deref() != Some("Pow") {
            nodes.push(node);
            continue;
        }
        let (x, cube) = (node.input[0].clone(), node.output[0].clone());
        let square = format!("{cube}_square");
        let mul = |inputs: [&str; 2], output: &str| NodeProto {
            op_type: Some("Mul".into()),
            input: inputs.iter().map(|i| (*i).to_owned()).collect(),
            output: vec![output.to_owned()],
            ..Default::default()
        };
        nodes.push(mul([&x, &x], &square));
        nodes.push(mul([&square, &x], &cube));
        rewritten += 1;
    }
    graph.node = nodes;
    assert_eq!(rewritten, 2, "one cube a layer");
}

/// GPT-2's `gelu_new`, the tanh approximation, becomes ONNX Runtime's `FastGelu` before opset 20, its
/// cube written either way; its causal attention is not what the variant fuses.
#[test]
fn gpt2s_tanh_gelu_is_fused_and_computes_the_same() {
    let (original, inputs) = converted_gpt2();
    let mut by_products = original.clone();
    cube_as_products(&mut by_products);
    for model in [original, by_products] {
        let (fused, found) = fuse(&model).unwrap();
        assert_eq!(
            found,
            Fused {
                attention: 0,
                gelu: 2
            }
        );
        assert_eq!(count(&fused, "FastGelu"), 2);
        for gone in ["Tanh", "Pow"] {
            assert_eq!(count(&fused, gone), 0, "{gone}");
        }
        let error = difference(&model, &fused, &inputs);
        assert!(error < 1e-6, "{error}");
    }
}

/// From opset 20 the tanh approximation is ONNX's `Gelu` with `approximate="tanh"`.
#[test]
fn tanh_gelu_is_onnxs_own_from_opset_20() {
    let (mut original, inputs) = converted_gpt2();
    crate::variants::opset21::upgrade(&mut original).unwrap();
    let (fused, found) = fuse(&original).unwrap();
    assert_eq!(found.gelu, 2);
    let gelu = first(&fused, "Gelu");
    assert_eq!(gelu.domain.as_deref(), Some(""));
    assert_eq!(gelu.attribute[0].s.as_deref(), Some(&b"tanh"[..]));
    let error = difference(&original, &fused, &inputs);
    assert!(error < 1e-6, "{error}");
}
