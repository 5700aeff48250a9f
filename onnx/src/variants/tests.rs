//! The variants' own tests: control flow through every variant, fp16 inside branches, default variants.

use candle_core::{Device, Tensor};

use super::*;
use crate::eval::control_flow::tests::{body, graph_attr, if_inputs, if_model, model, node, value};
use crate::proto::{GraphProto, tensor_proto::DataType};

/// h = x·W; y = If(cond, then: h·W, else: h): the weight is read by the outer graph and a branch.
fn shared_weight_model() -> ModelProto {
    let w = Tensor::new(&[[1f32, 0.5], [-0.5, 2.0]], &Device::Cpu).unwrap();
    let then_branch = body(
        vec![node("MatMul", &["h", "w"], &["then_out"], vec![])],
        vec![],
        vec![],
        vec![value("then_out", DataType::Float)],
    );
    let else_branch = body(
        vec![node("Identity", &["h"], &["else_out"], vec![])],
        vec![],
        vec![],
        vec![value("else_out", DataType::Float)],
    );
    let graph = GraphProto {
        node: vec![
            node("MatMul", &["x", "w"], &["h"], vec![]),
            node(
                "If",
                &["cond"],
                &["y"],
                vec![
                    graph_attr("then_branch", then_branch),
                    graph_attr("else_branch", else_branch),
                ],
            ),
        ],
        initializer: vec![crate::eval::tensor_io::to_proto("w", &w).unwrap()],
        input: vec![value("x", DataType::Float), value("cond", DataType::Bool)],
        output: vec![value("y", DataType::Float)],
        ..Default::default()
    };
    model(graph, 17)
}

fn inputs_for(cond: bool, x: &Tensor) -> HashMap<String, Tensor> {
    HashMap::from([
        ("x".to_owned(), x.clone()),
        (
            "cond".to_owned(),
            Tensor::new(u8::from(cond), &Device::Cpu).unwrap(),
        ),
    ])
}

#[test]
fn every_variant_of_a_control_flow_model_still_evaluates() {
    let original = shared_weight_model();
    let session = Session::new(&original, None, &Device::Cpu).unwrap();
    let x = Tensor::new(&[[0.3f32, -1.2], [2.0, 0.7]], &Device::Cpu).unwrap();
    for kind in ["fp16", "int8", "int8-dynamic", "pruned-50"] {
        let kind = VariantKind::parse(kind).unwrap();
        let variant = kind.make(&original).unwrap();
        for cond in [true, false] {
            let v = validate(&session, &variant, &inputs_for(cond, &x), "", 0.1).unwrap();
            assert!(
                v.passed || kind.name().starts_with("pruned"),
                "{kind:?}: {v:?}"
            );
        }
    }
}

#[test]
fn fp16_narrows_branch_initializers_constants_and_outer_reads() {
    let original = if_model();
    let variant = VariantKind::Fp16.make(&original).unwrap();
    let graph = variant.graph.as_ref().unwrap();
    let if_node = graph
        .node
        .iter()
        .find(|n| n.op_type.as_deref() == Some("If"))
        .unwrap();
    let then_branch = if_node.attribute[0].g.as_ref().unwrap();
    assert_eq!(
        then_branch.initializer[0].data_type,
        Some(DataType::Float16 as i32)
    );
    let else_branch = if_node.attribute[1].g.as_ref().unwrap();
    // The branch reads the outer input x, which now arrives in fp16 under another name.
    assert!(else_branch.node[1].input.contains(&"x.fp16".to_owned()));
    let session = Session::new(&original, None, &Device::Cpu).unwrap();
    for cond in [true, false] {
        let inputs: HashMap<String, Tensor> = if_inputs(cond)
            .into_iter()
            .map(|(n, t)| (n.to_owned(), t))
            .collect();
        let v = validate(&session, &variant, &inputs, "", 1e-2).unwrap();
        assert!(v.passed, "cond {cond}: {v:?}");
    }
}

/// Operators fp16 keeps in fp32 still do so inside a branch, with parameters of the outer graph.
#[test]
fn fp16_keeps_sensitive_operators_fp32_inside_branches() {
    let gamma = Tensor::new(&[1f32, 2.0, 0.5], &Device::Cpu).unwrap();
    let beta = Tensor::new(&[0f32, 0.1, -0.1], &Device::Cpu).unwrap();
    let branch = |op: &str, inputs: &[&str], out: &str| {
        body(
            vec![node(op, inputs, &[out], vec![])],
            vec![],
            vec![],
            vec![value(out, DataType::Float)],
        )
    };
    let graph = GraphProto {
        node: vec![node(
            "If",
            &["cond"],
            &["y"],
            vec![
                graph_attr(
                    "then_branch",
                    branch("LayerNormalization", &["x", "gamma", "beta"], "normed"),
                ),
                graph_attr("else_branch", branch("Softmax", &["x"], "soft")),
            ],
        )],
        initializer: vec![
            crate::eval::tensor_io::to_proto("gamma", &gamma).unwrap(),
            crate::eval::tensor_io::to_proto("beta", &beta).unwrap(),
        ],
        input: vec![value("x", DataType::Float), value("cond", DataType::Bool)],
        output: vec![value("y", DataType::Float)],
        ..Default::default()
    };
    let original = model(graph, 17);
    let session = Session::new(&original, None, &Device::Cpu).unwrap();
    let variant = VariantKind::Fp16.make(&original).unwrap();
    let x = Tensor::new(&[[0.3f32, -1.2, 4.0], [2.0, 0.7, -3.0]], &Device::Cpu).unwrap();
    for cond in [true, false] {
        let v = validate(&session, &variant, &inputs_for(cond, &x), "", 1e-2).unwrap();
        assert!(v.passed, "cond {cond}: {v:?}");
    }
}

/// A scikit-learn model (its weights in ONNX-ML attributes, no float initializer) gets fp32 alone
/// by default; a network, however small, keeps fp16 and int8.
#[test]
fn a_classical_model_gets_fp32_alone_by_default() {
    let classical = ModelProto {
        graph: Some(GraphProto {
            node: vec![crate::proto::NodeProto {
                op_type: Some("TreeEnsembleRegressor".to_owned()),
                domain: Some("ai.onnx.ml".to_owned()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(default_variants(&classical), ["fp32"]);
    let network = crate::sample_models::mlp_graph(false);
    assert_eq!(default_variants(&network), ["fp32", "fp16", "int8"]);
}
