//! Real exports use recurrent layers and control flow (voice-activity and wake-word models): such a model
//! is ready, evaluated, optimized, and its variants validated like any other.

use candle_core::{Device, Tensor};
use kiln_core::api::{JobState, VariantOrigin, VariantStatus, VersionStatus};
use kiln_onnx::graph_builder::{DimSpec, GraphBuilder, attr_int};
use kiln_onnx::proto::tensor_proto::DataType;
use kiln_onnx::proto::{AttributeProto, GraphProto, NodeProto, ValueInfoProto, attribute_proto};
use prost::Message;
use reqwest::StatusCode;

use crate::harness::{TestApp, expect_json, job, variant};

/// Deterministic small weights.
fn weights(shape: &[usize], seed: f32) -> Tensor {
    let count: usize = shape.iter().product();
    let values: Vec<f32> = (0..count)
        .map(|i| ((i as f32 + seed) * 0.37).sin() * 0.5)
        .collect();
    Tensor::from_vec(values, shape, &Device::Cpu).unwrap()
}

/// A branch that applies `op` to the enclosing graph's `h` (an outer-scope read).
fn branch(name: &str, op: &str) -> AttributeProto {
    let output = format!("{name}_out");
    AttributeProto {
        name: Some(name.to_owned()),
        r#type: Some(attribute_proto::AttributeType::Graph as i32),
        g: Some(GraphProto {
            name: Some(name.to_owned()),
            node: vec![NodeProto {
                op_type: Some(op.to_owned()),
                input: vec!["h".to_owned()],
                output: vec![output.clone()],
                ..Default::default()
            }],
            output: vec![ValueInfoProto {
                name: Some(output),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// x [3, 1, 4] → LSTM (hidden 3) → its last state h → If (sum of h > 0) then h else −h.
fn lstm_with_a_branch() -> Vec<u8> {
    let hidden = 3;
    let mut g = GraphBuilder::new();
    let x = g.input(
        "x",
        DataType::Float,
        &[DimSpec::Fixed(3), DimSpec::Fixed(1), DimSpec::Fixed(4)],
    );
    let w = g.weight("W", &weights(&[1, 4 * hidden, 4], 1.0)).unwrap();
    let r = g
        .weight("R", &weights(&[1, 4 * hidden, hidden], 2.0))
        .unwrap();
    let b = g.weight("B", &weights(&[1, 8 * hidden], 3.0)).unwrap();
    let zero = g.scalar("zero", 0.0).unwrap();
    let sum = g.op("ReduceSum", &["h"], vec![attr_int("keepdims", 0)]);
    let cond = g.op("Greater", &[&sum, &zero], vec![]);
    g.op_into(
        "If",
        &[&cond],
        vec![
            branch("then_branch", "Identity"),
            branch("else_branch", "Neg"),
        ],
        "out",
    );
    g.output(
        "out",
        DataType::Float,
        &[DimSpec::Fixed(1), DimSpec::Fixed(1), DimSpec::Fixed(3)],
    );
    let mut model = g.finish("lstm_if", 17, vec![]);
    // The LSTM has two outputs (Y, Y_h), which the builder's one-output nodes do not express.
    model.graph.as_mut().unwrap().node.insert(
        0,
        NodeProto {
            op_type: Some("LSTM".to_owned()),
            input: vec![x, w, r, b],
            output: vec!["y".to_owned(), "h".to_owned()],
            attribute: vec![attr_int("hidden_size", hidden as i64)],
            ..Default::default()
        },
    );
    model.encode_to_vec()
}

async fn a_model_with_lstm_and_if_is_ready_with_validated_variants(app: TestApp) {
    let model = lstm_with_a_branch();
    let pushed = app
        .push("acme/vad:1", &[("model.onnx", model.as_slice())])
        .await;
    assert_eq!(pushed.status(), StatusCode::CREATED);
    let detail = app.settled_version("acme/vad:1").await;
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    let optimize = job(&detail, "optimize");
    assert_eq!(optimize.state, JobState::Succeeded, "{optimize:#?}");
    let onnx = variant(&detail, "onnx");
    assert_eq!(onnx.origin, VariantOrigin::Pushed);
    let fp32 = variant(&detail, "fp32");
    assert_eq!(fp32.status, VariantStatus::Deployable, "{fp32:#?}");
    let validation = fp32.validation.as_ref().unwrap();
    assert_eq!(validation["passed"], true, "{validation:#}");
    // The deployable variants are in the signed manifest.
    let manifest: kiln_core::api::ManifestResponse = expect_json(
        app.get("/api/v1/models/acme/vad/versions/1/manifest").await,
        StatusCode::OK,
    )
    .await;
    assert!(
        manifest.payload.variants.iter().any(|v| v.name == "fp32"),
        "{:#?}",
        manifest.payload.variants
    );
}

crate::on_every_backend!(a_model_with_lstm_and_if_is_ready_with_validated_variants);
