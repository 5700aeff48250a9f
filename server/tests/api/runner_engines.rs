//! Engines: runners register the engines they measure with, benchmarks are queued per deployable variant ×
//! device class × engine, a runner claims only its engines' jobs, and results carry the engine, its
//! version, the execution provider and the settings into the version and its signed manifest. A push
//! chooses the batch sizes and sequence lengths its benchmarks run at.

use kiln_core::api::{VersionDetail, VersionStatus};
use kiln_core::runners::{BenchmarkJob, RunnerView};
use prost::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, expect_json};
use crate::runners::{TestRunner, registration, runner_token, version_manifest};

struct EngineRunner<'a>(TestRunner<'a>);

impl<'a> EngineRunner<'a> {
    async fn register(app: &'a TestApp, name: &str, engines: Value) -> Self {
        let mut body = registration(name);
        body["engines"] = engines;
        Self(TestRunner::register_as(app, name, body).await)
    }

    async fn claim_all(&self) -> Vec<BenchmarkJob> {
        let mut jobs = Vec::new();
        while let Some(job) = self.0.claim().await {
            jobs.push(job);
        }
        jobs
    }

    async fn report(&self, job: &BenchmarkJob, provider: &str) -> reqwest::Response {
        let result = json!({
            "device": "cpu", "device_name": "test CPU", "driver": null, "engine": "claimed by the runner",
            "engine_version": "99", "execution_provider": provider,
            "engine_options": { "graph_optimization_level": "all", "intra_op_threads": "1" },
            "threads": 1, "batch_size": 2, "sequence_length": 16, "input_shapes": { "x": [2, 8] },
            "warmup_iterations": 1, "iterations": 3, "p50_ms": 1.0, "p90_ms": 1.5, "p99_ms": 2.0,
            "throughput": 2000.0, "peak_memory_bytes": 1000, "max_abs_error": null, "runner": "x",
            "measured_at": "2020-01-01T00:00:00Z"
        });
        self.0
            .post(&format!("/jobs/{}/result", job.job_id))
            .json(&json!({ "outcome": "succeeded", "results": [result] }))
            .send()
            .await
            .unwrap()
    }
}

fn onnxruntime() -> Value {
    json!([{ "name": "onnxruntime", "version": "1.32.0", "execution_providers": ["CPUExecutionProvider"] }])
}

async fn push(app: &TestApp, reference: &str, pipeline: Value) -> reqwest::Response {
    let model = kiln_onnx::sample_models::mlp_graph(false).encode_to_vec();
    let (name, version) = reference.split_once(':').unwrap();
    let blob = app.upload_blob(&model).await;
    let body = json!({
        "version": version,
        "files": [{ "path": "model.onnx", "digest": blob, "size": model.len() }],
        "pipeline": pipeline,
    });
    app.post_json(&format!("/api/v1/models/{name}/versions"), &body)
        .await
}

async fn benchmarks_are_queued_per_engine_and_each_runner_claims_its_own(app: TestApp) {
    let kiln = EngineRunner::register(&app, "kiln-box", json!([])).await;
    let ort = EngineRunner::register(&app, "ort-box", onnxruntime()).await;
    let runners: Vec<RunnerView> =
        expect_json(app.get("/api/v1/runners").await, StatusCode::OK).await;
    let engines: Vec<(&str, Vec<&str>)> = runners
        .iter()
        .map(|r| {
            (
                r.name.as_str(),
                r.engines.iter().map(|e| e.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        engines,
        [("kiln-box", vec!["kiln"]), ("ort-box", vec!["onnxruntime"])],
        "a runner that lists no engines runs kiln's"
    );

    let pipeline = json!({
        "variants": ["fp32"], "benchmark_batch_sizes": [2], "benchmark_sequence_lengths": [16]
    });
    expect_json::<Value>(push(&app, "acme/m:1", pipeline).await, StatusCode::CREATED).await;
    let detail = app.settled_version("acme/m:1").await;
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    let mut queued: Vec<(&str, &str)> = detail
        .pipeline
        .iter()
        .filter(|j| j.kind == "benchmark")
        .map(|j| (j.variant.as_deref().unwrap(), j.engine.as_deref().unwrap()))
        .collect();
    queued.sort();
    assert_eq!(
        queued,
        [
            ("fp32", "kiln"),
            ("fp32", "onnxruntime"),
            ("onnx", "kiln"),
            ("onnx", "onnxruntime")
        ]
    );

    let kiln_jobs = kiln.claim_all().await;
    let ort_jobs = ort.claim_all().await;
    assert_eq!(kiln_jobs.len(), 2);
    assert_eq!(ort_jobs.len(), 2);
    assert!(kiln_jobs.iter().all(|j| j.engine == "kiln"));
    for job in &ort_jobs {
        assert_eq!(job.engine, "onnxruntime");
        assert_eq!(
            (job.batch_sizes.as_slice(), job.sequence_lengths.as_slice()),
            (&[2][..], &[16][..]),
            "the push's sizes travel with the job"
        );
    }
    // A provider the runner did not register is refused, nothing recorded.
    expect_error(
        ort.report(&ort_jobs[0], "CUDAExecutionProvider").await,
        StatusCode::BAD_REQUEST,
        "invalid_benchmark",
    )
    .await;
    for job in &ort_jobs {
        assert_eq!(
            ort.report(job, "CPUExecutionProvider").await.status(),
            StatusCode::NO_CONTENT
        );
    }
    for job in &kiln_jobs {
        assert_eq!(
            kiln.report(job, "kiln-cpu-not-registered").await.status(),
            StatusCode::BAD_REQUEST,
            "kiln's engine registered the provider `cpu` for a runner that listed none"
        );
        assert_eq!(
            kiln.report(job, "cpu").await.status(),
            StatusCode::NO_CONTENT
        );
    }

    let detail: VersionDetail = expect_json(
        app.get("/api/v1/models/acme/m/versions/1").await,
        StatusCode::OK,
    )
    .await;
    let manifest = version_manifest(&app).await;
    for variant in &manifest.payload.variants {
        let mut by_engine: Vec<_> = variant
            .benchmarks
            .iter()
            .map(|b| {
                (
                    b.engine.as_str(),
                    b.engine_version.as_deref(),
                    b.execution_provider.as_deref(),
                    b.sequence_length,
                )
            })
            .collect();
        by_engine.sort();
        assert_eq!(
            by_engine,
            [
                ("kiln", Some("0"), Some("cpu"), Some(16)),
                (
                    "onnxruntime",
                    Some("1.32.0"),
                    Some("CPUExecutionProvider"),
                    Some(16)
                )
            ],
            "the engine and its version come from the registration, not the report ({})",
            variant.name
        );
        let ort_result = variant
            .benchmarks
            .iter()
            .find(|b| b.engine == "onnxruntime")
            .unwrap();
        assert_eq!(ort_result.engine_options["graph_optimization_level"], "all");
    }
    let shown = detail.variants.iter().find(|v| v.name == "fp32").unwrap();
    assert_eq!(shown.benchmarks.len(), 2);
}

async fn bad_engines_and_benchmark_sizes_are_refused(app: TestApp) {
    let token = runner_token(&app, "bad").await;
    for (engines, why) in [
        (
            json!([{ "name": "Bad Name", "version": "1", "execution_providers": ["x"] }]),
            "engine name",
        ),
        (
            json!([{ "name": "ort", "version": "1", "execution_providers": [] }]),
            "execution_providers",
        ),
        (
            json!([{ "name": "ort", "version": "", "execution_providers": ["x"] }]),
            "version",
        ),
        (
            json!([
                { "name": "ort", "version": "1", "execution_providers": ["x"] },
                { "name": "ort", "version": "2", "execution_providers": ["x"] }
            ]),
            "twice",
        ),
    ] {
        let mut body = registration("bad");
        body["engines"] = engines;
        let error = expect_error(
            app.anonymous(Method::POST, "/api/v1/runners")
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "invalid_runner",
        )
        .await;
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(why), "{message}");
    }
    for pipeline in [
        json!({ "benchmark_batch_sizes": [0] }),
        json!({ "benchmark_batch_sizes": [1, 2, 3, 4, 5] }),
        json!({ "benchmark_batch_sizes": [8, 8] }),
        json!({ "benchmark_batch_sizes": [] }),
        json!({ "benchmark_sequence_lengths": [100000] }),
    ] {
        expect_error(
            push(&app, "acme/bad:1", pipeline).await,
            StatusCode::BAD_REQUEST,
            "invalid_benchmark_options",
        )
        .await;
    }
}

crate::on_every_backend!(
    spawn = crate::runners::spawn_with_short_lease;
    benchmarks_are_queued_per_engine_and_each_runner_claims_its_own,
    bad_engines_and_benchmark_sizes_are_refused,
);
