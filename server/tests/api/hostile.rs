//! A model must never take the registry down: pipeline steps open pushed files in a child process with
//! memory and time limits, so a hostile model fails its own step while the API keeps answering.

use std::time::Duration;

use kiln_core::api::{JobState, VersionStatus};
use kiln_onnx::graph_builder::{DimSpec, GraphBuilder};
use kiln_onnx::proto::tensor_proto::DataType;
use prost::Message;
use reqwest::StatusCode;

use crate::harness::{Backend, TestApp, expect_json, job};

/// A graph whose every tensor is within the evaluator's element budget (2^28) but which together need
/// more than the step's 1 GiB: `ConstantOfShape([8192, 16384])` (512 MiB of floats) and a sum of the
/// same size, so that the address-space limit, not a budget, is what stops it.
fn memory_bomb() -> Vec<u8> {
    let mut g = GraphBuilder::new();
    let x = g.input("x", DataType::Float, &[DimSpec::Fixed(1)]);
    let shape = g.ints("shape", &[8192, 16_384]).unwrap();
    let big = g.op("ConstantOfShape", &[&shape], vec![]);
    g.op_into("Add", &[&big, &x], vec![], "y");
    g.output(
        "y",
        DataType::Float,
        &[DimSpec::Named("a"), DimSpec::Named("b")],
    );
    g.finish("bomb", 17, vec![]).encode_to_vec()
}

async fn limited(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| s.step_memory_bytes = 1024 * 1024 * 1024).await
}

async fn a_model_that_exhausts_memory_fails_its_step_not_the_server(app: TestApp) {
    let model = memory_bomb();
    let created = app
        .push("acme/bomb:1", &[("model.onnx", model.as_slice())])
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    // While the hostile step runs, the API answers and serves other versions' files.
    let mut answered = 0;
    let detail = loop {
        let health = app.anonymous(reqwest::Method::GET, "/healthz").send().await;
        assert_eq!(health.unwrap().status(), StatusCode::OK);
        let file = app
            .get("/api/v1/models/acme/bomb/versions/1/files/model.onnx")
            .await;
        assert_eq!(file.status(), StatusCode::OK);
        answered += 1;
        let detail: kiln_core::api::VersionDetail = expect_json(
            app.get("/api/v1/models/acme/bomb/versions/1").await,
            StatusCode::OK,
        )
        .await;
        let optimize_done = detail.pipeline.iter().any(|j| {
            j.kind == "optimize"
                && matches!(
                    j.state,
                    JobState::Failed | JobState::Succeeded | JobState::Skipped
                )
        });
        if optimize_done {
            break detail;
        }
        assert!(answered < 600, "the pipeline did not settle: {detail:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    let optimize = job(&detail, "optimize");
    assert_eq!(optimize.state, JobState::Failed, "{optimize:#?}");
    let message = optimize.message.as_deref().unwrap();
    assert!(message.contains("memory limit of 1024 MiB"), "{message}");
    assert_eq!(
        optimize.attempts, 1,
        "a crash is one failed attempt, not a retry loop"
    );
    // The model as pushed is still served, signed.
    let manifest = app
        .get("/api/v1/models/acme/bomb/versions/1/manifest")
        .await;
    assert_eq!(manifest.status(), StatusCode::OK);
}

crate::on_every_backend!(
    spawn = super::limited;
    a_model_that_exhausts_memory_fails_its_step_not_the_server,
);
