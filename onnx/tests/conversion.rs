//! Hugging Face checkpoints written the ways users push them, converted to ONNX and proven against the
//! reference forward pass; and the ways a conversion must refuse.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};
use kiln_onnx::ModelError;
use kiln_onnx::convert::{Family, Plan, SourceFile, convert_hf, plan};
use kiln_onnx::eval::Session;
use kiln_onnx::model_check::DimInfo;
use kiln_onnx::sample_models;
use kiln_onnx::validate::{FP32_REL_L2_TOLERANCE, compare};

fn sources(dir: &Path) -> Vec<SourceFile> {
    SourceFile::list(dir).unwrap()
}

fn convert_dir(dir: &Path, family: Family) -> kiln_onnx::convert::Converted {
    let Plan::HuggingFace(checkpoint) = plan(&sources(dir)).unwrap() else {
        panic!("expected a Hugging Face plan");
    };
    assert_eq!(checkpoint.family, family);
    let out = tempfile::tempdir().unwrap();
    let converted = convert_hf(&checkpoint, out.path()).unwrap();
    assert!(
        converted.validation.rel_l2_error <= FP32_REL_L2_TOLERANCE,
        "{:?}",
        converted.validation
    );
    let kept = dir.join("converted.onnx");
    std::fs::copy(&converted.files[0].1, &kept).unwrap();
    kiln_onnx::convert::Converted {
        files: vec![("converted.onnx".to_owned(), kept)],
        ..converted
    }
}

fn dims(names: &[&str]) -> Option<Vec<DimInfo>> {
    Some(
        names
            .iter()
            .map(|n| match n.parse() {
                Ok(v) => DimInfo::Fixed(v),
                Err(_) => DimInfo::Symbolic((*n).to_owned()),
            })
            .collect(),
    )
}

#[test]
fn bert_from_safetensors_is_proven_against_candle_transformers() {
    let dir = tempfile::tempdir().unwrap();
    sample_models::bert(60, 32, 2, 4)
        .unwrap()
        .write_safetensors(dir.path())
        .unwrap();
    let converted = convert_dir(dir.path(), Family::Bert);
    let names: Vec<&str> = converted
        .checked
        .inputs
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    assert_eq!(names, ["input_ids", "attention_mask", "token_type_ids"]);
    assert_eq!(
        converted.checked.inputs[0].shape,
        dims(&["batch", "sequence"])
    );
    assert_eq!(converted.checked.outputs[0].name, "last_hidden_state");
    assert_eq!(
        converted.checked.outputs[0].shape,
        dims(&["batch", "sequence", "32"])
    );
    assert_eq!(
        converted.validation.reference,
        "candle-transformers BertModel"
    );
}

#[test]
fn gpt2_from_sharded_safetensors_is_proven() {
    let dir = tempfile::tempdir().unwrap();
    sample_models::gpt2(70, 32, 2, 4)
        .unwrap()
        .write_sharded(dir.path(), 3)
        .unwrap();
    let converted = convert_dir(dir.path(), Family::Gpt2);
    assert_eq!(
        converted.checked.outputs[0].shape,
        dims(&["batch_size", "sequence_length", "70"])
    );
}

#[test]
fn llama_with_grouped_query_attention_from_a_pytorch_state_dict_is_proven() {
    let dir = tempfile::tempdir().unwrap();
    sample_models::llama(80, 32, 2, 4, 2)
        .unwrap()
        .write_pytorch(dir.path())
        .unwrap();
    let converted = convert_dir(dir.path(), Family::Llama);
    let compared: Vec<&str> = converted
        .validation
        .outputs
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    assert_eq!(
        compared,
        [
            "model.layers.0 hidden state",
            "model.layers.1 hidden state",
            "logits",
            "logits, next token from the cache",
            "logits[:, -1] (candle-transformers)",
            "next token's logits (candle-transformers, cached)"
        ]
    );
}

/// A checkpoint saved in bf16 (as most LLMs are) keeps its bytes: every weight is a BFLOAT16
/// initializer in the external-data file, which is no larger than the shards' tensors (plus alignment),
/// and the graph computes in fp32 behind a Cast, proven layer by layer.
#[test]
fn a_bf16_sharded_llama_keeps_its_precision_and_is_proven_layer_by_layer() {
    use kiln_onnx::proto::tensor_proto::DataType;
    let dir = tempfile::tempdir().unwrap();
    let sample = sample_models::llama(96, 64, 3, 4, 2)
        .unwrap()
        .to_dtype(candle_core::DType::BF16)
        .unwrap();
    sample.write_sharded(dir.path(), 2).unwrap();
    let Plan::HuggingFace(checkpoint) = plan(&sources(dir.path())).unwrap() else {
        panic!("expected a Hugging Face plan");
    };
    let out = tempfile::tempdir().unwrap();
    let converted = kiln_onnx::convert::convert_hf_with(&checkpoint, out.path(), 0).unwrap();
    assert!(converted.validation.rel_l2_error <= FP32_REL_L2_TOLERANCE);
    assert_eq!(converted.validation.outputs.len(), 3 + 4);
    let model =
        kiln_onnx::model_check::decode(std::fs::read(&converted.files[0].1).unwrap().into())
            .unwrap();
    let graph = model.graph.unwrap();
    for name in sample.tensors.keys() {
        let tensor = graph
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} is not an initializer"));
        assert_eq!(tensor.data_type, Some(DataType::Bfloat16 as i32), "{name}");
    }
    let stored: u64 = sample
        .tensors
        .values()
        .map(|t| 2 * t.elem_count() as u64)
        .sum();
    let data = std::fs::metadata(&converted.files[1].1).unwrap().len();
    let aligned = 4096 * sample.tensors.len() as u64;
    assert!(
        data <= stored + aligned,
        "{data} bytes of data for {stored} stored"
    );
}

/// The streamed run (weights read as needed, values dropped after their last use) computes what a
/// session holding every weight computes.
#[test]
fn a_streamed_run_computes_what_a_session_computes() {
    let sample = sample_models::gpt2(50, 16, 2, 2).unwrap();
    let checkpoint = kiln_onnx::checkpoint::Checkpoint::from_tensors(sample.tensors);
    let model = kiln_onnx::convert::gpt2::build(&sample.config, &checkpoint).unwrap();
    let inputs = kiln_onnx::convert::gpt2::sample_inputs(50).unwrap();
    let held = Session::new(&model, None, &Device::Cpu)
        .unwrap()
        .run(&inputs)
        .unwrap();
    let streamed = kiln_onnx::eval::streaming::run(&model, None, &inputs, &[]).unwrap();
    let (a, b) = (&held[0].1, &streamed["logits"]);
    assert_eq!(compare("logits", a, b).unwrap().max_abs_error, 0.0);
}

/// The graph has dynamic batch and sequence dims: other sizes than the validation's still match.
#[test]
fn a_converted_gpt2_runs_at_other_batch_and_sequence_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let sample = sample_models::gpt2(50, 16, 1, 2).unwrap();
    let checkpoint = kiln_onnx::checkpoint::Checkpoint::from_tensors(sample.tensors.clone());
    let model = kiln_onnx::convert::gpt2::build(&sample.config, &checkpoint).unwrap();
    let session = Session::new(&model, None, &Device::Cpu).unwrap();
    for (batch, seq) in [(1, 1), (3, 11)] {
        let ids: Vec<i64> = (0..batch * seq).map(|i| (i * 31 % 50) as i64).collect();
        let ids = Tensor::from_vec(ids, (batch, seq), &Device::Cpu).unwrap();
        let out = session
            .run(&HashMap::from([("input_ids".to_owned(), ids.clone())]))
            .unwrap();
        let expected =
            kiln_onnx::convert::gpt2::reference(&sample.config, &checkpoint, &ids).unwrap();
        let c = compare("logits", &out[0].1, &expected).unwrap();
        assert!(
            c.rel_l2_error < 1e-5,
            "{c:?} at batch {batch}, sequence {seq}"
        );
    }
    drop(dir);
}

/// A graph whose weights differ from the checkpoint's (here: one scaled) fails the proof.
#[test]
fn a_graph_with_a_wrong_weight_is_refused() {
    let sample = sample_models::bert(40, 16, 1, 2).unwrap();
    let checkpoint = kiln_onnx::checkpoint::Checkpoint::from_tensors(sample.tensors.clone());
    let mut model = kiln_onnx::convert::bert::build(&sample.config, &checkpoint).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let target = graph
        .initializer
        .iter_mut()
        .find(|t| t.name.as_deref() == Some("encoder.layer.0.intermediate.dense.bias"))
        .unwrap();
    let values = kiln_onnx::eval::tensor_io::from_proto(target, None, &Device::Cpu).unwrap();
    *target = kiln_onnx::eval::tensor_io::to_proto(
        "encoder.layer.0.intermediate.dense.bias",
        &(values + 0.5).unwrap(),
    )
    .unwrap();
    let inputs = kiln_onnx::convert::bert::sample_inputs(&sample.config).unwrap();
    let out = Session::new(&model, None, &Device::Cpu)
        .unwrap()
        .run(&inputs)
        .unwrap();
    let expected =
        kiln_onnx::convert::bert::reference(&sample.config, &checkpoint, &inputs).unwrap();
    let c = compare("last_hidden_state", &out[0].1, &expected).unwrap();
    let verdict = kiln_onnx::validate::judge("kiln", "candle", "x", vec![c], FP32_REL_L2_TOLERANCE);
    assert!(
        matches!(verdict, Err(ModelError::Validation(_))),
        "{verdict:?}"
    );
}

#[test]
fn an_unknown_model_type_is_unsupported_with_the_list_of_what_is() {
    let dir = tempfile::tempdir().unwrap();
    let mut sample = sample_models::bert(40, 16, 1, 2).unwrap();
    sample.config["model_type"] = "t5".into();
    sample.write_safetensors(dir.path()).unwrap();
    let err = plan(&sources(dir.path())).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("unsupported format: model_type \"t5\""),
        "{message}"
    );
    assert!(message.contains("BERT, GPT-2 or Llama"), "{message}");
}

#[test]
fn a_config_without_weights_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), br#"{"model_type": "bert"}"#).unwrap();
    let err = plan(&sources(dir.path())).unwrap_err().to_string();
    assert!(err.contains("has no weights beside it"), "{err}");
}

#[test]
fn files_that_are_no_model_are_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.md"), b"# hello").unwrap();
    let err = plan(&sources(dir.path())).unwrap_err().to_string();
    assert!(
        err.starts_with("unsupported format: nothing to convert"),
        "{err}"
    );
}

#[test]
fn a_shard_index_naming_a_missing_shard_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    sample_models::gpt2(30, 16, 1, 2)
        .unwrap()
        .write_sharded(dir.path(), 2)
        .unwrap();
    std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    let err = plan(&sources(dir.path())).unwrap_err().to_string();
    assert!(
        err.contains("names shard \"model-00002-of-00002.safetensors\""),
        "{err}"
    );
}

#[test]
fn a_shard_index_pointing_outside_the_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    sample_models::gpt2(30, 16, 1, 2)
        .unwrap()
        .write_sharded(dir.path(), 1)
        .unwrap();
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        br#"{"weight_map": {"transformer.wte.weight": "../../etc/passwd"}}"#,
    )
    .unwrap();
    let err = plan(&sources(dir.path())).unwrap_err().to_string();
    assert!(err.contains("leaves the model's folder"), "{err}");
}

/// Writes converted models for an outside check (`KILN_EXPORT_DIR=... cargo test export_for_outside_check`).
#[test]
#[ignore = "writes files for scripts/onnx-crosscheck.sh, which runs it with KILN_EXPORT_DIR"]
fn export_for_outside_check() {
    let out = std::env::var("KILN_EXPORT_DIR")
        .expect("KILN_EXPORT_DIR names the folder to write to: run scripts/onnx-crosscheck.sh");
    let out = Path::new(&out);
    for (name, sample) in [
        ("bert", sample_models::bert(60, 32, 2, 4).unwrap()),
        ("gpt2", sample_models::gpt2(70, 32, 2, 4).unwrap()),
        ("llama", sample_models::llama(80, 32, 2, 4, 2).unwrap()),
    ] {
        let dir = out.join(name);
        sample.write_safetensors(&dir).unwrap();
        let c = convert_dir(
            &dir,
            match name {
                "bert" => Family::Bert,
                "gpt2" => Family::Gpt2,
                _ => Family::Llama,
            },
        );
        std::fs::copy(&c.files[0].1, out.join(format!("{name}.onnx"))).unwrap();
        let checkpoint = kiln_onnx::checkpoint::Checkpoint::from_tensors(sample.tensors.clone());
        let model = kiln_onnx::model_check::decode(
            std::fs::read(out.join(format!("{name}.onnx")))
                .unwrap()
                .into(),
        )
        .unwrap();
        let inputs = if name == "bert" {
            kiln_onnx::convert::bert::sample_inputs(&sample.config).unwrap()
        } else {
            // The cached graph, on a past of 7 positions and 7 new tokens.
            kiln_onnx::variants::inputs::generate(&model).unwrap().0
        };
        let outs = Session::new(&model, None, &Device::Cpu)
            .unwrap()
            .run(&inputs)
            .unwrap();
        let mut all: HashMap<String, Tensor> = inputs.clone();
        all.insert("output".into(), outs[0].1.clone());
        candle_core::safetensors::save(&all, out.join(format!("{name}.io.safetensors"))).unwrap();
        if name != "llama" {
            // The fused variant, for ONNX Runtime to run on the same inputs (the BERT's padded; the
            // GPT-2's tanh GELU fused, its causal attention not).
            let mut optimized = model.clone();
            kiln_onnx::optimize::optimize(&mut optimized).unwrap();
            let fused = kiln_onnx::variants::VariantKind::Fused
                .make(&optimized)
                .unwrap();
            std::fs::write(
                out.join(format!("{name}-fused.onnx")),
                prost::Message::encode_to_vec(&fused),
            )
            .unwrap();
        }
        let _ = &checkpoint;
    }
}

/// Weights past the inline limit go to `model.onnx.data`; the model still checks, and evaluates the same
/// from its folder.
#[test]
fn large_weights_are_written_as_external_data() {
    let dir = tempfile::tempdir().unwrap();
    let sample = sample_models::gpt2(50, 16, 1, 2).unwrap();
    sample.write_safetensors(dir.path()).unwrap();
    let Plan::HuggingFace(checkpoint) = plan(&sources(dir.path())).unwrap() else {
        panic!()
    };
    let out = tempfile::tempdir().unwrap();
    let converted = kiln_onnx::convert::convert_hf_with(&checkpoint, out.path(), 0).unwrap();
    let names: Vec<&str> = converted.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["model.onnx", "model.onnx.data"]);
    assert_eq!(converted.checked.external_files, ["model.onnx.data"]);
    let model_bytes = std::fs::read(&converted.files[0].1).unwrap();
    let model = kiln_onnx::model_check::decode(model_bytes.into()).unwrap();
    // Only tensors under 1 KiB (shapes, scalars) stay inside the protobuf.
    for tensor in &model.graph.as_ref().unwrap().initializer {
        assert!(
            tensor.raw_data.as_ref().is_none_or(|r| r.len() < 1024),
            "{:?} stayed inline",
            tensor.name
        );
    }
    let layout = kiln_onnx::convert::decoder::CacheLayout {
        layers: 1,
        kv_heads: 2,
        head_dim: 8,
    };
    let prompt = kiln_onnx::convert::gpt2::sample_inputs(50).unwrap()["input_ids"].clone();
    let run = kiln_onnx::convert::decoder::prefill_and_step(
        &model,
        Some(out.path()),
        layout,
        &prompt,
        &[],
    )
    .unwrap();
    let checkpoint = kiln_onnx::checkpoint::Checkpoint::from_tensors(sample.tensors);
    let expected =
        kiln_onnx::convert::gpt2::reference(&sample.config, &checkpoint, &run.sequence).unwrap();
    let got = Tensor::cat(&[&run.prefill["logits"], &run.step_logits], 1).unwrap();
    assert!(compare("logits", &got, &expected).unwrap().rel_l2_error < 1e-5);
}
