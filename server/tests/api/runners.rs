//! Runners: registration, benchmark jobs claimed under a lease (never by two runners), a lost lease moving
//! the job to another runner, a late report refused, and results reaching the version and its manifest.

use std::time::Duration;

use kiln_core::api::{ManifestResponse, VersionDetail, VersionStatus};
use kiln_core::deployment::BenchmarkResult;
use kiln_core::runners::{BenchmarkJob, RegisteredRunner, RunnerState, RunnerView};
use prost::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, expect_error, expect_json};

pub(crate) async fn runner_token(app: &TestApp, name: &str) -> String {
    let created: Value = expect_json(
        app.post_json(
            "/api/v1/tokens",
            &json!({ "name": name, "scopes": ["runner"] }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    created["token"].as_str().unwrap().to_owned()
}

pub(crate) fn registration(name: &str) -> Value {
    json!({
        "name": name, "device": "cpu", "device_name": "test CPU", "memory_bytes": null, "driver": null,
        "engine": "test", "kiln_version": "0", "capabilities": ["benchmark"], "threads": 1
    })
}

pub(crate) struct TestRunner<'a> {
    app: &'a TestApp,
    pub(crate) token: String,
    pub(crate) id: String,
}

impl<'a> TestRunner<'a> {
    async fn register(app: &'a TestApp, name: &str) -> Self {
        Self::register_as(app, name, registration(name)).await
    }

    /// Registers with this registration body, under a runner token of its own.
    pub(crate) async fn register_as(app: &'a TestApp, name: &str, body: Value) -> Self {
        let token = runner_token(app, name).await;
        let registered: RegisteredRunner = expect_json(
            app.anonymous(Method::POST, "/api/v1/runners")
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        Self {
            app,
            token,
            id: registered.id,
        }
    }

    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.app
            .anonymous(Method::POST, &format!("/api/v1/runners/{}{path}", self.id))
            .bearer_auth(&self.token)
    }

    pub(crate) async fn claim(&self) -> Option<BenchmarkJob> {
        let response = self.post("/claim").send().await.unwrap();
        if response.status() == StatusCode::NO_CONTENT {
            return None;
        }
        Some(expect_json(response, StatusCode::OK).await)
    }

    /// Reports one result that claims to come from an H200 and from the embedded runner: the server
    /// must record what this runner registered as instead.
    async fn report(&self, job: &BenchmarkJob) -> reqwest::Response {
        self.report_with(job, 1.0).await
    }

    async fn report_with(&self, job: &BenchmarkJob, p50_ms: f64) -> reqwest::Response {
        let result = json!({
            "device": "cuda:0", "device_name": "NVIDIA H200", "driver": "driver 580", "engine": "test",
            "threads": 1, "batch_size": 1, "input_shapes": { "x": [1, 8] }, "warmup_iterations": 1,
            "iterations": 3, "p50_ms": p50_ms, "p90_ms": 1.5, "p99_ms": 2.0, "throughput": 1000.0,
            "peak_memory_bytes": null, "max_abs_error": null, "runner": "embedded (not really)",
            "measured_at": "2020-01-01T00:00:00Z"
        });
        self.post(&format!("/jobs/{}/result", job.job_id))
            .json(&json!({ "outcome": "succeeded", "results": [result] }))
            .send()
            .await
            .unwrap()
    }

    async fn heartbeat(&self, job: Option<&str>) -> reqwest::Response {
        self.post("/heartbeat")
            .json(&json!({ "job_id": job }))
            .send()
            .await
            .unwrap()
    }
}

pub(crate) async fn push_mlp(app: &TestApp, reference: &str, variants: &[&str]) -> VersionDetail {
    let model = kiln_onnx::sample_models::mlp_graph(false).encode_to_vec();
    let pipeline = json!({ "variants": variants });
    let files: [(&str, &[u8]); 1] = [("model.onnx", &model)];
    expect_json::<Value>(
        app.push_with_pipeline(reference, &files, Some(pipeline))
            .await,
        StatusCode::CREATED,
    )
    .await;
    let detail = app.settled_version(reference).await;
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    detail
}

fn benchmark_jobs(detail: &VersionDetail) -> Vec<(&str, &str)> {
    detail
        .pipeline
        .iter()
        .filter(|j| j.kind == "benchmark")
        .map(|j| (j.variant.as_deref().unwrap(), j.state.as_str()))
        .collect()
}

async fn two_runners_never_share_a_job_and_a_lost_lease_moves_to_the_other(app: TestApp) {
    let a = TestRunner::register(&app, "runner-a").await;
    let b = TestRunner::register(&app, "runner-b").await;
    push_mlp(&app, "acme/m:1", &["fp32", "fp16", "int8"]).await;

    // Eight claims at once for four jobs: each job goes to exactly one runner.
    let claims = futures_util::future::join_all((0..8).map(|i| {
        let runner = if i % 2 == 0 { &a } else { &b };
        async move { runner.claim().await.map(|job| (i % 2, job)) }
    }))
    .await;
    let claimed: Vec<(usize, BenchmarkJob)> = claims.into_iter().flatten().collect();
    let mut ids: Vec<&str> = claimed.iter().map(|(_, j)| j.job_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((claimed.len(), ids.len()), (4, 4), "{claimed:#?}");
    assert!(a.claim().await.is_none() && b.claim().await.is_none());

    // Another runner's credential cannot act for a runner.
    let foreign = app
        .anonymous(Method::POST, &format!("/api/v1/runners/{}/claim", a.id))
        .bearer_auth(&b.token)
        .send()
        .await
        .unwrap();
    expect_error(foreign, StatusCode::NOT_FOUND, "not_found").await;

    for (who, job) in &claimed {
        let runner = if *who == 0 { &a } else { &b };
        assert_eq!(runner.report(job).await.status(), StatusCode::NO_CONTENT);
    }

    // Runner A stops heartbeating: once its lease (2 s here) runs out, B takes A's job over, and A's late
    // report, heartbeat and file fetch are refused with nothing recorded.
    push_mlp(&app, "acme/m:2", &["fp32"]).await;
    let of_a = a.claim().await.unwrap();
    let of_b = b.claim().await.unwrap();
    assert_eq!(b.report(&of_b).await.status(), StatusCode::NO_CONTENT);
    assert!(b.claim().await.is_none(), "A's job is leased");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let taken_over = b.claim().await.unwrap();
    assert_eq!(
        (taken_over.job_id.as_str(), taken_over.attempt),
        (of_a.job_id.as_str(), 2)
    );
    let late = &of_a;
    let refused = expect_error(a.report(late).await, StatusCode::CONFLICT, "lease_lost").await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("this runner no longer holds job {}", late.job_id)),
        "{refused}"
    );
    expect_error(
        a.heartbeat(Some(&late.job_id)).await,
        StatusCode::CONFLICT,
        "lease_lost",
    )
    .await;
    let fetch = app
        .anonymous(
            Method::GET,
            &format!(
                "/api/v1/runners/{}/jobs/{}/files/model.onnx",
                a.id, late.job_id
            ),
        )
        .bearer_auth(&a.token)
        .send()
        .await
        .unwrap();
    expect_error(fetch, StatusCode::CONFLICT, "lease_lost").await;
    // B holds it now and may read its files.
    let fetch = app
        .anonymous(
            Method::GET,
            &format!(
                "/api/v1/runners/{}/jobs/{}/files/{}",
                b.id, late.job_id, late.files[0].path
            ),
        )
        .bearer_auth(&b.token)
        .send()
        .await
        .unwrap();
    assert_eq!(fetch.status(), StatusCode::OK);
    let bytes = fetch.bytes().await.unwrap();
    assert_eq!(kiln_core::Sha256Digest::of(&bytes), late.files[0].digest);

    // Numbers out of order are refused and nothing is recorded; the job stays B's.
    let refused = expect_error(
        b.report_with(&taken_over, 9.0).await,
        StatusCode::BAD_REQUEST,
        "invalid_benchmark",
    )
    .await;
    assert_eq!(
        refused["error"]["message"],
        "percentiles out of order: p50 9 p90 1.5 p99 2"
    );
    assert_eq!(b.report(&taken_over).await.status(), StatusCode::NO_CONTENT);
    let detail: VersionDetail = expect_json(
        app.get("/api/v1/models/acme/m/versions/2").await,
        StatusCode::OK,
    )
    .await;
    assert!(
        benchmark_jobs(&detail)
            .iter()
            .all(|(_, s)| *s == "succeeded"),
        "{detail:#?}"
    );
    for variant in &detail.variants {
        assert_eq!(
            variant.benchmarks.len(),
            1,
            "{}: one result, recorded once",
            variant.name
        );
    }
    // Who measured it and on what comes from B's registration and the server's clock, not the report.
    let recorded = &detail.variants[0].benchmarks[0];
    assert_eq!(
        (
            recorded.device.as_str(),
            recorded.device_name.as_str(),
            recorded.driver.as_deref()
        ),
        ("cpu", "test CPU", None)
    );
    assert_eq!(recorded.runner, format!("runner-b ({})", b.id));
    assert!(recorded.measured_at > chrono::Utc::now() - chrono::Duration::minutes(5));
    // Every benchmark in: the manifest is re-published with the numbers and who measured them.
    let manifest: ManifestResponse = expect_json(
        app.get("/api/v1/models/acme/m/versions/2/manifest").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(manifest.sequence, 3);
    assert!(
        manifest
            .payload
            .variants
            .iter()
            .all(|v| v.benchmarks.len() == 1)
    );
    assert_eq!(
        manifest.payload.provenance.runners,
        [format!("runner-b ({})", b.id)]
    );

    // A is lost (no heartbeat for a lease period); B, heartbeating, is idle.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    expect_json::<Value>(b.heartbeat(None).await, StatusCode::OK).await;
    let runners: Vec<RunnerView> =
        expect_json(app.get("/api/v1/runners").await, StatusCode::OK).await;
    let state = |id: &str| runners.iter().find(|r| r.id == id).unwrap().state;
    assert_eq!(state(&a.id), RunnerState::Lost);
    assert_eq!(state(&b.id), RunnerState::Idle);
}

async fn a_bad_registration_is_refused(app: TestApp) {
    let token = runner_token(&app, "bad").await;
    let mut body = registration("bad");
    body["device"] = json!("tpu");
    let response = app
        .anonymous(Method::POST, "/api/v1/runners")
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let refused = expect_error(response, StatusCode::BAD_REQUEST, "invalid_runner").await;
    assert_eq!(
        refused["error"]["message"],
        "device \"tpu\" is not cpu or cuda:N"
    );
    // Numbers outside what the document declares (a thread count past i32 would wrap when stored).
    for (field, value) in [
        ("threads", json!(0)),
        ("threads", json!(2_147_483_648u64)),
        ("memory_bytes", json!(-1)),
    ] {
        let mut body = registration("bad");
        body[field] = value;
        let response = app
            .anonymous(Method::POST, "/api/v1/runners")
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(response, StatusCode::BAD_REQUEST, "invalid_runner").await;
    }
    let runners: Vec<RunnerView> =
        expect_json(app.get("/api/v1/runners").await, StatusCode::OK).await;
    assert!(runners.is_empty());
}

async fn a_restarted_runner_gets_its_identity_back(app: TestApp) {
    let token = runner_token(&app, "restarts").await;
    let register = || async {
        let registered: RegisteredRunner = expect_json(
            app.anonymous(Method::POST, "/api/v1/runners")
                .bearer_auth(&token)
                .json(&registration("host-1"))
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        registered.id
    };
    let first = register().await;
    // Registering again while the first is alive is another runner (two processes on one host)...
    let second = register().await;
    assert_ne!(first, second);
    // ...but once they are lost (no heartbeat for the 2 s lease), a restart takes an old identity back.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let restarted = register().await;
    assert!(restarted == first || restarted == second, "{restarted}");
    let runners: Vec<RunnerView> =
        expect_json(app.get("/api/v1/runners").await, StatusCode::OK).await;
    assert_eq!(runners.len(), 2);
}

/// A GPU runner that is gone for good must not keep a version's CPU results out of its manifest: after
/// three silent leases its queued jobs are failed with the reason and the manifest is published.
async fn benchmarks_no_runner_will_claim_are_failed_and_the_rest_published(app: TestApp) {
    let token = runner_token(&app, "gpu").await;
    let mut gpu = registration("gpu-box");
    gpu["device"] = json!("cuda:0");
    let response = app
        .anonymous(Method::POST, "/api/v1/runners")
        .bearer_auth(&token)
        .json(&gpu)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let cpu = TestRunner::register(&app, "cpu-box").await;
    push_mlp(&app, "acme/m:1", &["fp32"]).await;
    while let Some(job) = cpu.claim().await {
        assert_eq!(cpu.report(&job).await.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(
        version_manifest(&app).await.sequence,
        2,
        "the cuda jobs are still queued"
    );
    assert_eq!(app.services.runners.fail_orphaned().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(6500)).await;
    assert_eq!(app.services.runners.fail_orphaned().await.unwrap(), 2);
    let detail: VersionDetail = expect_json(
        app.get("/api/v1/models/acme/m/versions/1").await,
        StatusCode::OK,
    )
    .await;
    let cuda: Vec<(&str, Option<&str>)> = detail
        .pipeline
        .iter()
        .filter(|j| j.device.as_deref() == Some("cuda"))
        .map(|j| (j.state.as_str(), j.message.as_deref()))
        .collect();
    let why = Some("not measured: no cuda runner with the kiln engine was heard from for 6 s");
    assert_eq!(cuda, [("failed", why), ("failed", why)]);
    let published = version_manifest(&app).await;
    assert_eq!(published.sequence, 3);
    assert!(
        published
            .payload
            .variants
            .iter()
            .all(|v| v.benchmarks.len() == 1)
    );
}

pub(crate) async fn version_manifest(app: &TestApp) -> ManifestResponse {
    expect_json(
        app.get("/api/v1/models/acme/m/versions/1/manifest").await,
        StatusCode::OK,
    )
    .await
}

pub(crate) async fn spawn_with_short_lease(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| {
        s.runner_lease = Duration::from_secs(2);
    })
    .await
}

crate::on_every_backend!(
    spawn = super::spawn_with_short_lease;
    benchmarks_no_runner_will_claim_are_failed_and_the_rest_published,
    a_restarted_runner_gets_its_identity_back,
    two_runners_never_share_a_job_and_a_lost_lease_moves_to_the_other,
    a_bad_registration_is_refused,
);

/// The embedded default with nothing else started: its in-process CPU runner measures every deployable
/// variant, the results show on the version, and the manifest is re-published with them.
#[actix_web::test]
async fn the_embedded_runner_benchmarks_every_variant() {
    let app = TestApp::spawn_with(Backend::Embedded, |s| s.embedded_runner = true).await;
    // The runner registers as the server starts.
    let mut runners: Vec<RunnerView> = Vec::new();
    for _ in 0..100 {
        runners = expect_json(app.get("/api/v1/runners").await, StatusCode::OK).await;
        if !runners.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(runners.len(), 1);
    assert_eq!(runners[0].name, "embedded");
    assert_eq!(runners[0].threads, Some(1));

    push_mlp(&app, "acme/m:1", &["fp32", "fp16"]).await;
    let mut detail = app.settled_version("acme/m:1").await;
    for _ in 0..300 {
        detail = expect_json(
            app.get("/api/v1/models/acme/m/versions/1").await,
            StatusCode::OK,
        )
        .await;
        if benchmark_jobs(&detail)
            .iter()
            .all(|(_, s)| *s == "succeeded" || *s == "failed")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let jobs = benchmark_jobs(&detail);
    assert_eq!(
        jobs,
        [
            ("fp16", "succeeded"),
            ("fp32", "succeeded"),
            ("onnx", "succeeded")
        ]
    );
    for variant in &detail.variants {
        let batches: Vec<i64> = variant.benchmarks.iter().map(|b| b.batch_size).collect();
        assert_eq!(batches, [1, 8], "{}", variant.name);
        for b in &variant.benchmarks {
            sane(b);
        }
    }
    let manifest: ManifestResponse = expect_json(
        app.get("/api/v1/models/acme/m/versions/1/manifest").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(manifest.sequence, 3);
    assert!(
        manifest
            .payload
            .variants
            .iter()
            .all(|v| v.benchmarks.len() == 2)
    );
    assert_eq!(manifest.payload.provenance.runners.len(), 1);
    // What it fetched is gone again: the files live in the server's own store.
    let cache = app.settings.data_dir.join("runner-cache");
    assert!(
        cache.join("sha256").is_dir(),
        "the runner fetched through its cache"
    );
    let left: Vec<_> = walk(&cache);
    assert!(left.is_empty(), "{left:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

fn sane(b: &BenchmarkResult) {
    assert_eq!(b.device, "cpu");
    assert_eq!(b.threads, Some(1));
    assert!(b.iterations >= 10, "{b:?}");
    assert!(
        0.0 < b.p50_ms && b.p50_ms <= b.p90_ms && b.p90_ms <= b.p99_ms,
        "{b:?}"
    );
    let expected = b.batch_size as f64 * 1000.0 / b.p50_ms;
    assert!((b.throughput - expected).abs() <= 1e-9 * expected, "{b:?}");
    assert!(b.runner.starts_with("embedded ("), "{b:?}");
}
