//! The pipeline on push: what a user sees in `GET .../versions/{version}` while kiln scans and converts a
//! version, on both backends; and the job queue's guarantees (restart, lease expiry, bounded retries).

use kiln_core::api::{JobState, VariantStatus, VersionDetail, VersionStatus};
use kiln_onnx::sample_models;
use kiln_server::db::repos::pipeline_jobs::{self, Claim, Queue};
use kiln_server::db::repos::versions;
use kiln_server::db::{DbConnection, now};
use prost::Message;
use reqwest::StatusCode;

use crate::harness::{TestApp, expect_json, job, variant};

/// The files a sample checkpoint writes, as (path, bytes).
fn checkpoint_files(write: impl FnOnce(&std::path::Path)) -> Vec<(String, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path());
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            (
                path.file_name().unwrap().to_str().unwrap().to_owned(),
                std::fs::read(&path).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

async fn push_files(app: &TestApp, reference: &str, files: &[(String, Vec<u8>)]) -> VersionDetail {
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    expect_json(app.push(reference, &borrowed).await, StatusCode::CREATED).await
}

async fn a_bert_checkpoint_becomes_a_proven_onnx_variant(app: TestApp) {
    let files = checkpoint_files(|dir| {
        sample_models::bert(50, 32, 2, 4)
            .unwrap()
            .write_safetensors(dir)
            .unwrap()
    });
    let committed = push_files(&app, "acme/encoder:1.0.0", &files).await;
    assert_eq!(committed.status, VersionStatus::Pending);
    assert_eq!(committed.pipeline[0].state, JobState::Queued);

    let detail = app.settled_version("acme/encoder:1.0.0").await;
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    let kinds: Vec<(&str, JobState)> = detail
        .pipeline
        .iter()
        .map(|j| (j.kind.as_str(), j.state))
        .collect();
    assert_eq!(
        kinds,
        [
            ("scan", JobState::Succeeded),
            ("convert", JobState::Succeeded),
            ("optimize", JobState::Succeeded)
        ]
    );
    let scan = job(&detail, "scan").report.as_ref().unwrap();
    assert!(
        scan["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["format"] == "safetensors"),
        "{scan}"
    );

    let names: Vec<&str> = detail.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["fp16", "fp32", "int8", "onnx"]);
    for optimized in detail.variants.iter().filter(|v| v.name != "onnx") {
        assert_eq!(
            optimized.status,
            VariantStatus::Deployable,
            "{optimized:#?}"
        );
        assert!(optimized.passes.is_some());
    }
    let variant = variant(&detail, "onnx");
    assert_eq!(
        (variant.name.as_str(), variant.status),
        ("onnx", VariantStatus::Deployable)
    );
    assert_eq!(variant.opset, 17);
    let inputs: Vec<&str> = variant.inputs.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(inputs, ["input_ids", "attention_mask", "token_type_ids"]);
    assert_eq!(
        serde_json::to_value(&variant.inputs[0].shape).unwrap(),
        serde_json::json!(["batch", "sequence"])
    );
    let validation = variant.validation.as_ref().unwrap();
    assert_eq!(validation["reference"], "candle-transformers BertModel");
    assert!(
        validation["rel_l2_error"].as_f64().unwrap() <= 1e-4,
        "{validation}"
    );

    let response = app
        .get("/api/v1/models/acme/encoder/versions/1.0.0/variants/onnx/files/model.onnx")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.bytes().await.unwrap();
    assert_eq!(kiln_core::Sha256Digest::of(&bytes), variant.digest);
    let (_, checked) = kiln_onnx::model_check::check(bytes).unwrap();
    assert_eq!(checked.outputs[0].name, "last_hidden_state");
}

async fn an_onnx_upload_is_its_own_variant(app: TestApp) {
    let sample = sample_models::gpt2(40, 16, 1, 2).unwrap();
    let weights = kiln_onnx::checkpoint::Checkpoint::from_tensors(sample.tensors);
    let model = kiln_onnx::convert::gpt2::build(&sample.config, &weights)
        .unwrap()
        .encode_to_vec();
    let files = vec![
        ("model.onnx".to_owned(), model.clone()),
        ("README.md".to_owned(), b"# tiny".to_vec()),
    ];
    push_files(&app, "acme/lm:1", &files).await;
    let detail = app.settled_version("acme/lm:1").await;
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    let variant = variant(&detail, "onnx");
    // Stored as pushed: the variant is the very blob the user uploaded.
    assert_eq!(variant.digest, kiln_core::Sha256Digest::of(&model));
    assert_eq!(variant.files.len(), 1);
    assert!(variant.validation.is_none());
    assert_eq!(variant.outputs[0].name, "logits");
    assert_eq!(
        job(&detail, "convert").report.as_ref().unwrap()["source"],
        "onnx"
    );
}

/// An ONNX model with its weights in an external-data file (in a subfolder): both files make the variant.
async fn an_onnx_upload_with_external_data_keeps_both_files(app: TestApp) {
    let sample = sample_models::gpt2(40, 16, 1, 2).unwrap();
    let weights = kiln_onnx::checkpoint::Checkpoint::from_tensors(sample.tensors);
    let mut model = kiln_onnx::convert::gpt2::build(&sample.config, &weights).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let written = kiln_onnx::model_writer::write(&mut model, dir.path(), "model.onnx", 0).unwrap();
    let files: Vec<(String, Vec<u8>)> = written
        .iter()
        .map(|(name, path)| (format!("onnx/{name}"), std::fs::read(path).unwrap()))
        .collect();
    push_files(&app, "acme/external:1", &files).await;
    let detail = app.settled_version("acme/external:1").await;
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    let paths: Vec<&str> = variant(&detail, "onnx")
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(paths, ["onnx/model.onnx", "onnx/model.onnx.data"]);
    for (path, bytes) in &files {
        let got = app
            .get(&format!(
                "/api/v1/models/acme/external/versions/1/variants/onnx/files/{path}"
            ))
            .await
            .bytes()
            .await
            .unwrap();
        assert_eq!(got.as_ref(), bytes.as_slice(), "{path}");
    }
}

/// The same model without its external-data file is refused by the scan, naming the missing file.
async fn an_onnx_upload_missing_its_external_data_fails(app: TestApp) {
    let sample = sample_models::gpt2(40, 16, 1, 2).unwrap();
    let weights = kiln_onnx::checkpoint::Checkpoint::from_tensors(sample.tensors);
    let mut model = kiln_onnx::convert::gpt2::build(&sample.config, &weights).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let written = kiln_onnx::model_writer::write(&mut model, dir.path(), "model.onnx", 0).unwrap();
    let only_model = vec![(
        "model.onnx".to_owned(),
        std::fs::read(&written[0].1).unwrap(),
    )];
    push_files(&app, "acme/external:2", &only_model).await;
    let detail = app.settled_version("acme/external:2").await;
    assert_eq!(detail.status, VersionStatus::Failed);
    let message = job(&detail, "scan").message.as_deref().unwrap();
    assert_eq!(
        message,
        "model.onnx: the ONNX model is refused: it keeps weights in \"model.onnx.data\", but the \
         version has no such file beside it; push the external-data file beside the model"
    );
}

/// An ONNX model with an operator kiln's evaluator lacks is ready and served as pushed (its `onnx`
/// variant), but gets no variant offered as proven: the optimize step is skipped, naming the operator.
async fn a_model_kiln_cannot_evaluate_is_ready_as_pushed(app: TestApp) {
    use kiln_onnx::graph_builder::{DimSpec, GraphBuilder};
    use kiln_onnx::proto::tensor_proto::DataType;
    let mut g = GraphBuilder::new();
    let x = g.input(
        "x",
        DataType::Float,
        &[
            DimSpec::Named("batch"),
            DimSpec::Fixed(3),
            DimSpec::Fixed(3),
        ],
    );
    // Bernoulli draws random numbers: kiln has no evaluator for it (a variant could not be compared).
    g.op_into("Bernoulli", &[&x], vec![], "draws");
    g.output(
        "draws",
        DataType::Float,
        &[
            DimSpec::Named("batch"),
            DimSpec::Fixed(3),
            DimSpec::Fixed(3),
        ],
    );
    let model = g.finish("coin", 17, vec![]).encode_to_vec();
    push_files(&app, "acme/coin:1", &[("model.onnx".to_owned(), model)]).await;
    let detail = app.settled_version("acme/coin:1").await;
    assert_eq!(detail.status, VersionStatus::Ready);
    let optimize = job(&detail, "optimize");
    assert_eq!(optimize.state, JobState::Skipped);
    assert_eq!(
        optimize.message.as_deref(),
        Some(
            "cannot validate: op Bernoulli is not implemented by kiln's evaluator; no optimized variants \
             were made, and the onnx variant is served as pushed"
        )
    );
    let names: Vec<&str> = detail.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["onnx"]);
    let onnx = variant(&detail, "onnx");
    assert_eq!(onnx.origin, kiln_core::api::VariantOrigin::Pushed);
    assert_eq!(onnx.status, kiln_core::api::VariantStatus::Deployable);
    let manifest: kiln_core::api::ManifestResponse = crate::harness::expect_json(
        app.get("/api/v1/models/acme/coin/versions/1/manifest")
            .await,
        reqwest::StatusCode::OK,
    )
    .await;
    let listed: Vec<(&str, kiln_core::api::VariantOrigin)> = manifest
        .payload
        .variants
        .iter()
        .map(|v| (v.name.as_str(), v.origin))
        .collect();
    assert_eq!(listed, [("onnx", kiln_core::api::VariantOrigin::Pushed)]);
}

/// Inputs pushed as sample_inputs.safetensors are what the variants are validated on.
async fn pushed_sample_inputs_drive_the_validation(app: TestApp) {
    use candle_core::{Device, Tensor};
    let mut files = checkpoint_files(|dir| {
        sample_models::gpt2(50, 16, 1, 2)
            .unwrap()
            .write_safetensors(dir)
            .unwrap()
    });
    let ids = Tensor::new(&[[3i64, 1, 4, 1, 5]], &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.safetensors");
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("input_ids".to_owned(), ids)]),
        &path,
    )
    .unwrap();
    files.push((
        "sample_inputs.safetensors".to_owned(),
        std::fs::read(&path).unwrap(),
    ));
    push_files(&app, "acme/sampled:1", &files).await;
    let detail = app.settled_version("acme/sampled:1").await;
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    let validation = variant(&detail, "int4").validation.as_ref().unwrap();
    assert_eq!(
        validation["inputs"],
        "pushed in sample_inputs.safetensors: input_ids [1, 5]; derived for a prompt with an \
         empty cache: attention_mask, position_ids and 2 past keys and values of length 0"
    );
}

/// Files kiln has no converter for are stored, versioned and served: conversion is skipped, saying what kiln
/// converts, and the version is ready.
async fn a_version_that_is_no_model_is_ready_saying_what_is_supported(app: TestApp) {
    push_files(
        &app,
        "acme/notes:1",
        &[("notes.txt".to_owned(), b"just text".to_vec())],
    )
    .await;
    let detail = app.settled_version("acme/notes:1").await;
    assert_eq!(detail.status, VersionStatus::Ready);
    let convert = job(&detail, "convert");
    assert_eq!(convert.state, JobState::Skipped);
    let message = convert.message.as_deref().unwrap();
    assert!(
        message.starts_with("not converted: unsupported format: nothing to convert"),
        "{message}"
    );
    assert_eq!(job(&detail, "optimize").state, JobState::Skipped);
    assert!(message.contains("BERT, GPT-2 or Llama"), "{message}");
    assert!(detail.variants.is_empty());
    // The files pushed stay downloadable.
    let file = app
        .get("/api/v1/models/acme/notes/versions/1/files/notes.txt")
        .await;
    assert_eq!(file.bytes().await.unwrap().as_ref(), b"just text");
}

/// `cos\nsystem\n` is `os.system`: the scan must refuse the file without running it.
async fn a_pickle_that_would_run_code_is_refused(app: TestApp) {
    let hostile = b"\x80\x02cos\nsystem\nX\x05\x00\x00\x00touch\x85R.".to_vec();
    push_files(
        &app,
        "acme/evil:1",
        &[("pytorch_model.pkl".to_owned(), hostile)],
    )
    .await;
    let detail = app.settled_version("acme/evil:1").await;
    assert_eq!(detail.status, VersionStatus::Failed);
    let scan = job(&detail, "scan");
    assert_eq!(scan.state, JobState::Failed);
    let message = scan.message.as_deref().unwrap();
    assert!(
        message.starts_with("pytorch_model.pkl: the pickle is refused"),
        "{message}"
    );
    assert!(
        message.contains("os") && message.contains("system"),
        "{message}"
    );
    assert_eq!(
        detail.pipeline.len(),
        1,
        "nothing is converted after a refused scan"
    );
}

async fn onnx_external_data_outside_the_version_is_refused(app: TestApp) {
    let sample = sample_models::gpt2(40, 16, 1, 2).unwrap();
    let weights = kiln_onnx::checkpoint::Checkpoint::from_tensors(sample.tensors);
    let mut model = kiln_onnx::convert::gpt2::build(&sample.config, &weights).unwrap();
    let tensor = &mut model.graph.as_mut().unwrap().initializer[0];
    tensor.raw_data = None;
    tensor.data_location = Some(kiln_onnx::proto::tensor_proto::DataLocation::External as i32);
    tensor.external_data = vec![kiln_onnx::proto::StringStringEntryProto {
        key: Some("location".to_owned()),
        value: Some("../../etc/passwd".to_owned()),
    }];
    push_files(
        &app,
        "acme/escape:1",
        &[("model.onnx".to_owned(), model.encode_to_vec())],
    )
    .await;
    let detail = app.settled_version("acme/escape:1").await;
    assert_eq!(detail.status, VersionStatus::Failed);
    let message = job(&detail, "scan").message.as_deref().unwrap();
    assert!(
        message.contains("\"../../etc/passwd\" leaves the model's folder"),
        "{message}"
    );
}

/// `--variants fused` on a BERT checkpoint: a deployable variant proven within fp32's tolerance whose
/// file runs one `Attention` a layer; on a model with no attention, reported as not made, saying why.
async fn a_fused_variant_is_made_where_there_is_attention_to_fuse(app: TestApp) {
    let files = checkpoint_files(|dir| {
        sample_models::bert(50, 32, 2, 4)
            .unwrap()
            .write_safetensors(dir)
            .unwrap()
    });
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    let pipeline = serde_json::json!({ "variants": ["fused"] });
    let response = app
        .push_with_pipeline("acme/encoder:1", &borrowed, Some(pipeline))
        .await;
    expect_json::<serde_json::Value>(response, StatusCode::CREATED).await;
    let detail = app.settled_version("acme/encoder:1").await;
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    let fused = variant(&detail, "fused");
    assert_eq!(fused.status, VariantStatus::Deployable, "{fused:#?}");
    let validation = fused.validation.as_ref().unwrap();
    assert!(
        validation["rel_l2_error"].as_f64().unwrap() <= 1e-5,
        "{validation}"
    );
    // Proven on a padded row too: the same variant without its mask was deployable on masks of ones.
    let inputs = validation["inputs"].as_str().unwrap();
    assert!(
        inputs.contains("attention_mask [2, 7] (the last row padded"),
        "{inputs}"
    );
    let response = app
        .get("/api/v1/models/acme/encoder/versions/1/variants/fused/files/model.onnx")
        .await;
    let bytes = response.bytes().await.unwrap();
    let model = kiln_onnx::proto::ModelProto::decode(bytes).unwrap();
    let attention = model.graph.unwrap().node.into_iter();
    let attention = attention.filter(|n| n.op_type.as_deref() == Some("Attention"));
    assert_eq!(attention.count(), 2, "one a layer");

    let detail = crate::runners::push_mlp(&app, "acme/mlp:1", &["fp32", "fused"]).await;
    let names: Vec<&str> = detail.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["fp32", "onnx"]);
    let report = job(&detail, "optimize").report.as_ref().unwrap();
    assert_eq!(report["not_made"][0]["variant"], "fused", "{report}");
    let reason = report["not_made"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("nothing to fuse"), "{reason}");
}

crate::on_every_backend!(
    a_fused_variant_is_made_where_there_is_attention_to_fuse,
    a_bert_checkpoint_becomes_a_proven_onnx_variant,
    an_onnx_upload_is_its_own_variant,
    an_onnx_upload_with_external_data_keeps_both_files,
    an_onnx_upload_missing_its_external_data_fails,
    a_model_kiln_cannot_evaluate_is_ready_as_pushed,
    pushed_sample_inputs_drive_the_validation,
    a_version_that_is_no_model_is_ready_saying_what_is_supported,
    a_pickle_that_would_run_code_is_refused,
    onnx_external_data_outside_the_version_is_refused,
);

/// Jobs live in the database: a version pushed while no worker runs is converted after a restart.
#[actix_web::test]
async fn jobs_wait_for_a_worker_and_survive_a_restart() {
    let app = TestApp::spawn_with(crate::harness::Backend::Embedded, |s| {
        s.pipeline_workers = 0
    })
    .await;
    let files = checkpoint_files(|dir| {
        sample_models::llama(40, 16, 1, 2, 1)
            .unwrap()
            .write_pytorch(dir)
            .unwrap()
    });
    push_files(&app, "acme/llama:1", &files).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let waiting: VersionDetail = expect_json(
        app.get("/api/v1/models/acme/llama/versions/1").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(waiting.status, VersionStatus::Pending);
    assert_eq!(waiting.pipeline[0].state, JobState::Queued);

    let app = app.restart_with(|s| s.pipeline_workers = 1).await;
    let detail = app.settled_version("acme/llama:1").await;
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    assert_eq!(
        job(&detail, "convert").report.as_ref().unwrap()["family"],
        "llama"
    );
}

fn version_id(conn: &mut DbConnection, model: &str, version: &str) -> String {
    let (_, model_row) = kiln_server::db::repos::models::find(conn, "acme", model)
        .unwrap()
        .unwrap();
    versions::find(conn, &model_row.id, version)
        .unwrap()
        .unwrap()
        .id
}

/// A worker that stops heartbeating loses its job to another; its late report changes nothing; a job
/// whose workers keep dying is given up once its tries are spent.
#[actix_web::test]
async fn an_expired_lease_moves_the_job_and_refuses_the_late_report() {
    let app = TestApp::spawn_with(crate::harness::Backend::Embedded, |s| {
        s.pipeline_workers = 0
    })
    .await;
    push_files(
        &app,
        "acme/leases:1",
        &[("a.txt".to_owned(), b"a".to_vec())],
    )
    .await;
    app.db
        .run(|conn| {
            let id = version_id(conn, "leases", "1");
            let past = now() - chrono::Duration::seconds(1);
            let future = now() + chrono::Duration::seconds(600);
            let Claim::Claimed(first) =
                pipeline_jobs::claim_next(conn, "dead-worker", past, Queue::Pipeline)?
            else {
                panic!("the queued scan job is claimable");
            };
            // A heartbeat that extends the lease in time keeps the job: nobody else can claim it.
            assert!(pipeline_jobs::heartbeat(
                conn,
                &first.id,
                "dead-worker",
                future
            )?);
            assert!(matches!(
                pipeline_jobs::claim_next(conn, "live-worker", future, Queue::Pipeline)?,
                Claim::Nothing
            ));
            assert!(pipeline_jobs::heartbeat(
                conn,
                &first.id,
                "dead-worker",
                past
            )?);
            assert_eq!(
                (first.version_id.as_str(), first.attempts),
                (id.as_str(), 1)
            );
            let Claim::Claimed(second) =
                pipeline_jobs::claim_next(conn, "live-worker", future, Queue::Pipeline)?
            else {
                panic!("an expired lease makes the job claimable again");
            };
            assert_eq!(
                (second.id.as_str(), second.attempts),
                (first.id.as_str(), 2)
            );
            assert!(matches!(
                pipeline_jobs::claim_next(conn, "third", future, Queue::Pipeline)?,
                Claim::Nothing
            ));
            assert!(!pipeline_jobs::heartbeat(
                conn,
                &first.id,
                "dead-worker",
                future
            )?);
            assert!(!pipeline_jobs::finish(
                conn,
                &first.id,
                "dead-worker",
                JobState::Failed,
                Some("late"),
                None
            )?);
            assert!(pipeline_jobs::finish(
                conn,
                &first.id,
                "live-worker",
                JobState::Succeeded,
                None,
                Some("{}")
            )?);

            pipeline_jobs::enqueue(conn, &id, "convert", 1, None)?;
            let Claim::Claimed(once) =
                pipeline_jobs::claim_next(conn, "dies-again", past, Queue::Pipeline)?
            else {
                panic!()
            };
            let Claim::GaveUp(gone) =
                pipeline_jobs::claim_next(conn, "live-worker", future, Queue::Pipeline)?
            else {
                panic!("a job out of tries is given up, not claimed");
            };
            assert_eq!(gone.id, once.id);
            assert!(gone.message.unwrap().contains("giving up"));
            Ok(())
        })
        .await
        .unwrap();
}
