//! Files a registry must refuse (or flag), one test each, through the scan job's entry point
//! (`inspect_file`). Pickle, zip and safetensors attacks are in those scanners' own tests.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use kiln_onnx::ModelError;
use kiln_onnx::inspect::inspect_file;
use kiln_onnx::proto::{ModelProto, StringStringEntryProto, tensor_proto::DataLocation};
use kiln_onnx::sample_models;
use prost::Message;

fn tiny_onnx() -> ModelProto {
    let sample = sample_models::gpt2(20, 8, 1, 2).unwrap();
    let weights = kiln_onnx::checkpoint::Checkpoint::from_tensors(sample.tensors);
    kiln_onnx::convert::gpt2::build(&sample.config, &weights).unwrap()
}

fn inspect_model(model: &ModelProto) -> Result<kiln_onnx::inspect::FileReport, ModelError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    inspect_file(&path)
}

fn refused(model: &ModelProto) -> String {
    inspect_model(model).unwrap_err().to_string()
}

#[test]
fn a_valid_model_passes_and_reports_its_opset() {
    let report = inspect_model(&tiny_onnx()).unwrap();
    assert_eq!(report.format.as_str(), "onnx");
    assert!(
        report.notes[0].starts_with("opset 17"),
        "{:?}",
        report.notes
    );
}

/// A truncated `model.onnx` is refused by the scan saying what is wrong with it (not stored as an opaque
/// file that then has "nothing to convert").
#[test]
fn a_truncated_model_is_refused_as_not_valid_onnx() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = tiny_onnx().encode_to_vec();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = inspect_file(&path).unwrap_err().to_string();
    assert!(
        err.starts_with("the ONNX model is refused: not a valid ONNX model: "),
        "{err}"
    );
    assert!(
        !err.contains('\n') && err.len() < 200,
        "one short line: {err}"
    );
}

/// A `.safetensors` file whose header is garbage is refused as such, not taken for an opaque file.
#[test]
fn a_garbage_safetensors_header_is_refused_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!").unwrap();
    let err = inspect_file(&path).unwrap_err().to_string();
    assert!(err.contains("safetensors"), "{err}");
}

/// External data whose offset lies past the end of its file is refused by the scan.
#[test]
fn external_data_past_the_end_of_its_file_is_refused() {
    use kiln_onnx::proto::StringStringEntryProto;
    use kiln_onnx::proto::tensor_proto::DataLocation;
    let dir = tempfile::tempdir().unwrap();
    let mut model = tiny_onnx();
    let graph = model.graph.as_mut().unwrap();
    let tensor = graph
        .initializer
        .first_mut()
        .expect("the tiny model has a weight");
    tensor.raw_data = None;
    tensor.float_data.clear();
    tensor.data_location = Some(DataLocation::External as i32);
    let entry = |k: &str, v: &str| StringStringEntryProto {
        key: Some(k.to_owned()),
        value: Some(v.to_owned()),
    };
    tensor.external_data = vec![
        entry("location", "weights.bin"),
        entry("offset", "1000000000000000"),
    ];
    std::fs::write(dir.path().join("weights.bin"), [0u8; 16]).unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    let err = inspect_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("lies past the end of \"weights.bin\", which has 16 bytes"),
        "{err}"
    );

    // An offset plus a length past u64 is past any file, not a wrap back into it.
    let graph = model.graph.as_mut().unwrap();
    graph.initializer[0].external_data = vec![
        entry("location", "weights.bin"),
        entry("offset", "10"),
        entry("length", &(u64::MAX - 5).to_string()),
    ];
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    let err = inspect_file(&path).unwrap_err().to_string();
    assert!(err.contains("lies past the end"), "{err}");
}

/// Bytes that look like ONNX in their first fields but do not decode are refused by the check.
#[test]
fn a_model_that_does_not_decode_is_refused() {
    let err = kiln_onnx::model_check::check(bytes::Bytes::from_static(b"\x08\x09\x3a\x02\xff\xff"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a valid ONNX model"), "{err}");
}

#[test]
fn an_absolute_external_data_path_is_refused() {
    let mut model = tiny_onnx();
    let t = &mut model.graph.as_mut().unwrap().initializer[0];
    t.raw_data = None;
    t.data_location = Some(DataLocation::External as i32);
    t.external_data = vec![StringStringEntryProto {
        key: Some("location".into()),
        value: Some("/etc/shadow".into()),
    }];
    assert!(refused(&model).contains("\"/etc/shadow\" leaves the model's folder"));
}

#[test]
fn absurd_dimensions_are_refused() {
    let mut model = tiny_onnx();
    let t = &mut model.graph.as_mut().unwrap().initializer[0];
    t.dims = vec![1 << 30, 1 << 30];
    let err = refused(&model);
    assert!(err.contains("elements is absurd"), "{err}");
}

#[test]
fn raw_data_that_does_not_match_the_shape_is_refused() {
    let mut model = tiny_onnx();
    let t = &mut model.graph.as_mut().unwrap().initializer[0];
    t.dims[0] += 1;
    assert!(refused(&model).contains("its shape needs"));
}

/// What the evaluator says about a model the scan accepted.
fn cannot_validate(model: &ModelProto) -> String {
    match kiln_onnx::eval::Session::new(model, None, &Device::Cpu) {
        Err(ModelError::UnsupportedOp(ops)) => ops,
        Err(other) => panic!("expected UnsupportedOp, got {other}"),
        Ok(_) => panic!("expected UnsupportedOp, the session was built"),
    }
}

/// A newer opset than kiln knows is not malformed: the scan accepts the model and the evaluator names the
/// operators it cannot run at that version.
#[test]
fn an_unknown_opset_is_accepted_but_cannot_be_validated() {
    let mut model = tiny_onnx();
    model.opset_import[0].version = Some(99);
    let report = inspect_model(&model).unwrap();
    assert!(
        report.notes[0].starts_with("opset 99"),
        "{:?}",
        report.notes
    );
    let ops = cannot_validate(&model);
    assert!(ops.contains("MatMul (ai.onnx opset 99)"), "{ops}");
}

/// A domain kiln does not know (here ONNX Runtime's NHWC layout ops and an invented one) is accepted by
/// the scan; the evaluator names each of its operators with the domain.
#[test]
fn an_unknown_operator_domain_is_accepted_but_cannot_be_validated() {
    for domain in ["com.ms.internal.nhwc", "org.example.custom"] {
        let mut model = tiny_onnx();
        model
            .opset_import
            .push(kiln_onnx::proto::OperatorSetIdProto {
                domain: Some(domain.into()),
                version: Some(1),
            });
        let node = &mut model.graph.as_mut().unwrap().node[0];
        node.domain = Some(domain.into());
        let op = node.op_type.clone().unwrap();
        inspect_model(&model).unwrap();
        let ops = cannot_validate(&model);
        assert_eq!(ops, format!("{domain}::{op}"));
    }
}

/// What stays refused about domains is what is malformed: a domain used but not imported, one imported
/// twice, and a version below 1.
#[test]
fn malformed_opset_imports_are_still_refused() {
    let mut model = tiny_onnx();
    model.graph.as_mut().unwrap().node[0].domain = Some("com.microsoft".into());
    assert!(refused(&model).contains("which the model does not import"));

    // The same import twice (as onnx.compose writes it) is harmless; two versions contradict.
    let mut model = tiny_onnx();
    let first = model.opset_import[0].clone();
    model.opset_import.push(first.clone());
    assert!(inspect_model(&model).is_ok());
    model
        .opset_import
        .push(kiln_onnx::proto::OperatorSetIdProto {
            version: Some(first.version.unwrap() - 1),
            ..first
        });
    assert!(refused(&model).contains("imported twice, as versions"));

    let mut model = tiny_onnx();
    model.opset_import[0].version = Some(0);
    assert!(refused(&model).contains("is not a valid version"));
}

#[test]
fn a_graph_that_is_not_topologically_sorted_is_refused() {
    let mut model = tiny_onnx();
    model.graph.as_mut().unwrap().node.reverse();
    assert!(refused(&model).contains("must be topologically sorted"));
}

#[test]
fn an_output_nobody_computes_is_refused() {
    let mut model = tiny_onnx();
    model.graph.as_mut().unwrap().output[0].name = Some("nowhere".into());
    assert!(refused(&model).contains("output \"nowhere\" is never computed"));
}

#[test]
fn nan_weights_in_a_pytorch_checkpoint_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = HashMap::from([
        (
            "w".to_owned(),
            Tensor::new(&[1f32, f32::NAN, f32::INFINITY], &Device::Cpu).unwrap(),
        ),
        ("b".to_owned(), Tensor::new(&[0f32], &Device::Cpu).unwrap()),
    ]);
    let path = dir.path().join("pytorch_model.bin");
    sample_models::write_torch_zip(&path, &tensors).unwrap();
    let report = inspect_file(&path).unwrap();
    assert!(
        report
            .notes
            .iter()
            .any(|n| n == "tensor \"w\" holds 2 NaN or infinite values"),
        "{:?}",
        report.notes
    );
}

#[test]
fn nan_weights_in_safetensors_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let tensors = HashMap::from([(
        "w".to_owned(),
        Tensor::new(&[f32::NAN, 1.0], &Device::Cpu).unwrap(),
    )]);
    let path = dir.path().join("model.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let report = inspect_file(&path).unwrap();
    assert_eq!(
        report.notes,
        ["tensor \"w\" holds 1 NaN or infinite values"]
    );
}

/// A model whose `If` branches nest `depth` deep: each level's `then_branch` holds the next.
fn nested_ifs(depth: usize) -> ModelProto {
    use kiln_onnx::proto::{
        AttributeProto, GraphProto, NodeProto, OperatorSetIdProto, attribute_proto::AttributeType,
    };
    let mut inner = GraphProto {
        name: Some("leaf".to_owned()),
        ..Default::default()
    };
    for level in 0..depth {
        let node = NodeProto {
            op_type: Some("If".to_owned()),
            input: vec!["cond".to_owned()],
            attribute: vec![AttributeProto {
                name: Some("then_branch".to_owned()),
                r#type: Some(AttributeType::Graph as i32),
                g: Some(inner),
                ..Default::default()
            }],
            ..Default::default()
        };
        inner = GraphProto {
            name: Some(format!("level{level}")),
            node: vec![node],
            ..Default::default()
        };
    }
    inner.input.push(kiln_onnx::proto::ValueInfoProto {
        name: Some("cond".to_owned()),
        ..Default::default()
    });
    ModelProto {
        ir_version: Some(9),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
        graph: Some(inner),
        ..Default::default()
    }
}

/// Nesting past what protobuf decodes is one short line, not every enclosing field; nesting past kiln's
/// cap is refused by name.
#[test]
fn deeply_nested_subgraphs_are_refused_in_one_short_line() {
    let too_deep_to_decode = refused_bytes(&nested_if_bytes(1000));
    assert!(
        too_deep_to_decode.starts_with("the ONNX model is refused: not a valid ONNX model: "),
        "{too_deep_to_decode}"
    );
    assert!(
        too_deep_to_decode.len() < 200,
        "{} characters: {too_deep_to_decode}",
        too_deep_to_decode.len()
    );
    let deep = refused(&nested_ifs(kiln_onnx::model_check::MAX_SUBGRAPH_DEPTH + 2));
    assert!(deep.contains("subgraphs nest more than 16 deep"), "{deep}");
    assert!(deep.len() < 200, "{deep}");
}

/// The encoding of a model whose `If` branches nest `depth` deep, built from the inside out without
/// recursion (prost's own encoder would overflow the test's stack first).
fn nested_if_bytes(depth: usize) -> Vec<u8> {
    use prost::encoding::{WireType, encode_key, encode_varint};
    let field = |number: u32, inner: &[u8]| {
        let mut out = Vec::with_capacity(inner.len() + 8);
        encode_key(number, WireType::LengthDelimited, &mut out);
        encode_varint(inner.len() as u64, &mut out);
        out.extend_from_slice(inner);
        out
    };
    let mut graph = Vec::new();
    for _ in 0..depth {
        // AttributeProto.g = 6, NodeProto.attribute = 5, GraphProto.node = 1.
        graph = field(1, &field(5, &field(6, &graph)));
    }
    let mut model = nested_ifs(0).encode_to_vec();
    model.extend(field(7, &graph));
    model
}

fn refused_bytes(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.onnx");
    std::fs::write(&path, bytes).unwrap();
    inspect_file(&path).unwrap_err().to_string()
}
