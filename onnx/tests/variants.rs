//! Optimization and compressed variants on several architectures: each variant within its tolerance of
//! the original, a deliberately broken one rejected, and optimization deterministic.

use candle_core::Device;
use kiln_onnx::checkpoint::Checkpoint;
use kiln_onnx::eval::Session;
use kiln_onnx::optimize::optimize;
use kiln_onnx::proto::ModelProto;
use kiln_onnx::sample_models;
use kiln_onnx::variants::{VariantKind, inputs, validate};
use prost::Message;

fn transformers() -> Vec<(&'static str, ModelProto)> {
    let bert = sample_models::bert(60, 32, 2, 4).unwrap();
    let gpt2 = sample_models::gpt2(60, 32, 2, 4).unwrap();
    let llama = sample_models::llama(60, 32, 2, 4, 2).unwrap();
    vec![
        (
            "bert",
            kiln_onnx::convert::bert::build(&bert.config, &Checkpoint::from_tensors(bert.tensors))
                .unwrap(),
        ),
        (
            "gpt2",
            kiln_onnx::convert::gpt2::build(&gpt2.config, &Checkpoint::from_tensors(gpt2.tensors))
                .unwrap(),
        ),
        (
            "llama",
            kiln_onnx::convert::llama::build(
                &llama.config,
                &Checkpoint::from_tensors(llama.tensors),
            )
            .unwrap(),
        ),
    ]
}

fn check(name: &str, original: &ModelProto, kinds: &[VariantKind]) -> Vec<(String, f64, bool)> {
    let session = Session::new(original, None, &Device::Cpu).unwrap();
    let (sample, described) = inputs::generate(original).unwrap();
    let mut optimized = original.clone();
    let reports = optimize(&mut optimized).unwrap();
    assert!(!reports.is_empty());
    kinds
        .iter()
        .map(|kind| {
            let variant = kind.make(&optimized).unwrap();
            let v = validate(
                &session,
                &variant,
                &sample,
                &described,
                kind.default_tolerance(),
            )
            .unwrap();
            eprintln!(
                "{name} {}: rel L2 {:.2e}, top-1 {:?}, passed {}",
                kind.name(),
                v.rel_l2_error,
                v.top1_agreement,
                v.passed
            );
            (kind.name(), v.rel_l2_error, v.passed)
        })
        .collect()
}

#[test]
fn fp32_fp16_and_int8_stay_within_tolerance_on_transformers() {
    for (name, model) in transformers() {
        for (kind, error, passed) in check(
            name,
            &model,
            &[
                VariantKind::Fp32,
                VariantKind::Fp16,
                VariantKind::Int8,
                VariantKind::Int8Dynamic,
            ],
        ) {
            assert!(passed, "{name} {kind}: relative L2 {error:e}");
        }
    }
}

#[test]
fn int8_weights_take_about_a_quarter_of_the_bytes() {
    let (_, model) = transformers().remove(1);
    let mut optimized = model.clone();
    optimize(&mut optimized).unwrap();
    let fp32 = optimized.encoded_len();
    let int8 = VariantKind::Int8.make(&optimized).unwrap().encoded_len();
    // Embeddings (Gather tables) stay fp32; the MatMul weights shrink 4×.
    assert!(int8 < fp32 * 3 / 4, "fp32 {fp32} bytes, int8 {int8}");
}

#[test]
fn pruning_zeroes_the_requested_share_of_weights() {
    let (_, model) = transformers().remove(0);
    let pruned = VariantKind::Pruned(0.5).make(&model).unwrap();
    let graph = pruned.graph.unwrap();
    let w = graph
        .initializer
        .iter()
        .find(|t| t.name.as_deref() == Some("encoder.layer.0.attention.self.query.weight"))
        .unwrap();
    let values = kiln_onnx::eval::tensor_io::from_proto(w, None, &Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let zeros = values.iter().filter(|v| **v == 0.0).count();
    assert_eq!(zeros, values.len() / 2);
}

/// A variant whose weights were scaled is outside every tolerance: rejected, with its numbers.
#[test]
fn a_broken_variant_is_rejected() {
    let (_, model) = transformers().remove(1);
    let session = Session::new(&model, None, &Device::Cpu).unwrap();
    let (sample, described) = inputs::generate(&model).unwrap();
    let mut broken = model.clone();
    let graph = broken.graph.as_mut().unwrap();
    let t = graph
        .initializer
        .iter_mut()
        .find(|t| t.name.as_deref() == Some("transformer.h.0.mlp.c_fc.weight"))
        .unwrap();
    let w = kiln_onnx::eval::tensor_io::from_proto(t, None, &Device::Cpu).unwrap();
    *t = kiln_onnx::eval::tensor_io::to_proto(
        "transformer.h.0.mlp.c_fc.weight",
        &(w * 1.5).unwrap(),
    )
    .unwrap();
    let v = validate(
        &session,
        &broken,
        &sample,
        &described,
        VariantKind::Int8.default_tolerance(),
    )
    .unwrap();
    assert!(!v.passed && v.rel_l2_error > 0.05, "{v:?}");
}

#[test]
fn optimizing_twice_gives_the_same_bytes() {
    for (name, model) in transformers() {
        let mut once = model.clone();
        optimize(&mut once).unwrap();
        let mut twice = once.clone();
        optimize(&mut twice).unwrap();
        assert_eq!(once.encode_to_vec(), twice.encode_to_vec(), "{name}");
    }
}

#[test]
fn the_cnn_keeps_its_outputs_through_every_pass_and_variant() {
    let model = kiln_onnx::sample_models::cnn_graph();
    let results = check(
        "cnn",
        &model,
        &[
            VariantKind::Fp32,
            VariantKind::Fp16,
            VariantKind::Int8,
            VariantKind::Int8Dynamic,
        ],
    );
    for (kind, error, passed) in results {
        assert!(passed, "cnn {kind}: relative L2 {error:e}");
    }
}

/// ONNX Runtime refuses a graph with two nodes of one name: no variant may have them.
#[test]
fn every_variant_names_each_node_once() {
    for (name, model) in transformers() {
        let mut optimized = model.clone();
        optimize(&mut optimized).unwrap();
        for kind in [
            VariantKind::Fp32,
            VariantKind::Fp16,
            VariantKind::Int8,
            VariantKind::Int8Dynamic,
            VariantKind::Pruned(0.5),
        ] {
            let variant = kind.make(&optimized).unwrap();
            let mut names = std::collections::HashSet::new();
            for node in &variant.graph.as_ref().unwrap().node {
                assert!(
                    names.insert(node.name.clone().unwrap_or_default()),
                    "{name} {}: {:?} twice",
                    kind.name(),
                    node.name
                );
            }
        }
    }
}

/// fp16 leaves integer data alone: a ReduceSum over an int64 mask stays int64, and the variant runs.
#[test]
fn fp16_keeps_integer_reductions_integer() {
    use kiln_onnx::graph_builder::{DimSpec, GraphBuilder, attr_int};
    use kiln_onnx::proto::tensor_proto::DataType;
    let mut g = GraphBuilder::new();
    let x = g.input(
        "x",
        DataType::Float,
        &[DimSpec::Named("batch"), DimSpec::Fixed(4)],
    );
    let mask = g.input(
        "mask",
        DataType::Int64,
        &[DimSpec::Named("batch"), DimSpec::Fixed(4)],
    );
    let axes = g.ints("axes", &[1]).unwrap();
    let count = g.op("ReduceSum", &[&mask, &axes], vec![attr_int("keepdims", 1)]);
    let count = g.op(
        "Cast",
        &[&count],
        vec![attr_int("to", DataType::Float as i64)],
    );
    let w = g
        .weight(
            "w",
            &candle_core::Tensor::randn(0f32, 1.0, (4, 4), &Device::Cpu).unwrap(),
        )
        .unwrap();
    let y = g.op("MatMul", &[&x, &w], vec![]);
    g.op_into("Div", &[&y, &count], vec![], "y");
    g.output(
        "y",
        DataType::Float,
        &[DimSpec::Named("batch"), DimSpec::Fixed(4)],
    );
    let model = g.finish("masked", 17, vec![]);
    let results = check("masked", &model, &[VariantKind::Fp16]);
    assert!(results[0].2, "{results:?}");
}

/// fp16 writes what ONNX's schemas allow, not only what kiln's evaluator runs (found by running the
/// corpus's fp16 variants in ONNX Runtime): Range has no float16 form, so its float operands are widened
/// and its result narrowed back; a weight an IR 3 model also lists as a graph input is declared with the
/// type it is stored in.
#[test]
fn fp16_keeps_range_in_fp32_and_declares_weights_listed_as_inputs_in_their_new_type() {
    use kiln_onnx::graph_builder::{DimSpec, GraphBuilder};
    use kiln_onnx::proto::{tensor_proto::DataType, type_proto};
    let mut g = GraphBuilder::new();
    let x = g.input("x", DataType::Float, &[DimSpec::Fixed(4)]);
    let w = g
        .weight(
            "w",
            &candle_core::Tensor::new(&[1f32, 2., 3., 4.], &Device::Cpu).unwrap(),
        )
        .unwrap();
    g.input("w", DataType::Float, &[DimSpec::Fixed(4)]);
    let start = g.scalar("start", 0.0).unwrap();
    // A limit the graph computes, so that folding cannot take the Range away.
    let limit = g.op("ReduceMax", &[&x], vec![]);
    let delta = g.scalar("delta", 0.5).unwrap();
    g.op_into("Range", &[&start, &limit, &delta], vec![], "r");
    g.op_into("Mul", &[&x, &w], vec![], "y");
    g.output("y", DataType::Float, &[DimSpec::Fixed(4)]);
    g.output("r", DataType::Float, &[DimSpec::Named("steps")]);
    let model = g.finish("range", 17, vec![]);
    let results = check("range", &model, &[VariantKind::Fp16]);
    assert!(results[0].2, "{results:?}");

    let fp16 = VariantKind::Fp16.make(&optimize_copy(&model)).unwrap();
    let graph = fp16.graph.as_ref().unwrap();
    let stored = |name: &str| {
        graph
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some(name))
            .and_then(|t| t.data_type)
    };
    let range_node = graph
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("Range"))
        .unwrap();
    for operand in &range_node.input {
        let cast_to_float = graph.node.iter().any(|n| {
            n.op_type.as_deref() == Some("Cast")
                && n.output.first() == Some(operand)
                && n.attribute
                    .iter()
                    .any(|a| a.i == Some(DataType::Float as i64))
        });
        assert!(
            stored(operand) == Some(DataType::Float as i32) || cast_to_float,
            "Range reads {operand} in fp16"
        );
    }
    let declared_w = graph
        .input
        .iter()
        .find(|v| v.name.as_deref() == Some("w"))
        .and_then(|v| match v.r#type.as_ref()?.value.as_ref()? {
            type_proto::Value::TensorType(t) => t.elem_type,
            _ => None,
        });
    assert_eq!(declared_w, stored("w"), "w is declared as it is stored");
}

fn optimize_copy(model: &ModelProto) -> ModelProto {
    let mut copy = model.clone();
    optimize(&mut copy).unwrap();
    copy
}

/// fp16 leaves ONNX-ML's operators (scikit-learn's models) in fp32, the only float their schemas take
/// beside double (found by running the corpus's scikit-learn variants in ONNX Runtime, which refused
/// every fp16 one): a LinearClassifier reads its X widened back, and its int64 labels are no float to
/// narrow.
#[test]
fn fp16_keeps_onnx_ml_operators_in_fp32_and_their_labels_integer() {
    use kiln_onnx::graph_builder::{DimSpec, GraphBuilder};
    use kiln_onnx::proto::{AttributeProto, NodeProto, OperatorSetIdProto, tensor_proto::DataType};
    let mut g = GraphBuilder::new();
    let x = g.input(
        "x",
        DataType::Float,
        &[DimSpec::Named("batch"), DimSpec::Fixed(4)],
    );
    let w = g
        .weight(
            "w",
            &candle_core::Tensor::randn(0f32, 1.0, (4, 4), &Device::Cpu).unwrap(),
        )
        .unwrap();
    g.op_into("MatMul", &[&x, &w], vec![], "h");
    g.output("label", DataType::Int64, &[DimSpec::Named("batch")]);
    g.output(
        "scores",
        DataType::Float,
        &[DimSpec::Named("batch"), DimSpec::Fixed(2)],
    );
    let mut model = g.finish("ml", 17, vec![]);
    let floats = |name: &str, values: &[f32]| AttributeProto {
        name: Some(name.to_owned()),
        floats: values.to_vec(),
        r#type: Some(6),
        ..Default::default()
    };
    model.opset_import.push(OperatorSetIdProto {
        domain: Some("ai.onnx.ml".to_owned()),
        version: Some(1),
    });
    model.graph.as_mut().unwrap().node.push(NodeProto {
        op_type: Some("LinearClassifier".to_owned()),
        domain: Some("ai.onnx.ml".to_owned()),
        input: vec!["h".to_owned()],
        output: vec!["label".to_owned(), "scores".to_owned()],
        attribute: vec![
            floats("coefficients", &[1.0, -1.0, 0.5, 0.0, -1.0, 1.0, 0.0, 0.5]),
            floats("intercepts", &[0.1, -0.1]),
            AttributeProto {
                name: Some("classlabels_ints".to_owned()),
                ints: vec![3, 7],
                r#type: Some(7),
                ..Default::default()
            },
        ],
        ..Default::default()
    });
    let results = check("ml", &model, &[VariantKind::Fp16]);
    assert!(results[0].2, "{results:?}");

    let fp16 = VariantKind::Fp16.make(&optimize_copy(&model)).unwrap();
    let graph = fp16.graph.as_ref().unwrap();
    let classifier = graph
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("LinearClassifier"))
        .unwrap();
    let widened = graph.node.iter().any(|n| {
        n.op_type.as_deref() == Some("Cast")
            && n.output.first() == classifier.input.first()
            && n.attribute
                .iter()
                .any(|a| a.i == Some(DataType::Float as i64))
    });
    assert!(
        widened,
        "LinearClassifier reads {:?} in fp16",
        classifier.input
    );
    let label = classifier.output.first().unwrap();
    assert!(
        !graph
            .node
            .iter()
            .any(|n| n.op_type.as_deref() == Some("Cast") && n.input.first() == Some(label)),
        "the labels were cast"
    );
}
