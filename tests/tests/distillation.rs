//! Distillation as users meet it, with the real binaries: `kiln distill` on the embedded default (its
//! runner distills), the student committed with its lineage and report and run through the whole pipeline;
//! on PostgreSQL + S3 a `kiln-runner` killed with SIGKILL mid-training, the job resumed by another from the
//! checkpoint kept in the store; and a distillation cancelled while it runs.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_onnx::sample_models;
use kiln_tests::{Backend, Server, assert_ok, binary, settled, stderr, stdout};
use serde_json::{Value, json};

fn push_teacher(server: &Server, work: &Path, family: &str, reference: &str) {
    let folder = work.join(family);
    let model = match family {
        "gpt2" => sample_models::gpt2(64, 32, 4, 4),
        _ => sample_models::bert(64, 32, 4, 4),
    };
    model.unwrap().write_safetensors(&folder).unwrap();
    assert_ok(&server.kiln(&["push", folder.to_str().unwrap(), reference]));
    assert_eq!(settled(server, reference)["status"], "ready");
}

fn wait_for<T>(what: &str, limit: Duration, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = found() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn distillation(server: &Server, id: &str) -> Value {
    let (status, body) = server.get_json(&format!("/api/v1/distillations/{id}"));
    assert_eq!(status, 200, "{body}");
    body
}

/// The student as the registry holds it: ready through the pipeline, its lineage naming the teacher,
/// the teacher listing it, and the report among its files and in the job.
fn check_student(server: &Server, teacher: &str, student: &str, job: &Value) {
    let detail = settled(server, student);
    assert_eq!(detail["status"], "ready", "{detail:#}");
    let kinds: Vec<&str> = detail["pipeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["kind"].as_str().unwrap())
        .collect();
    for kind in ["scan", "convert", "optimize"] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }
    assert!(
        detail["variants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["status"] == "deployable"),
        "{detail:#}"
    );
    let lineage = &detail["lineage"];
    assert_eq!(
        lineage["parents"],
        json!([{"reference": teacher, "role": "teacher", "status": "ready"}])
    );
    assert_eq!(lineage["producer"]["name"], "kiln-distill");
    assert_eq!(lineage["hyperparameters"]["student"], "layers=2");
    assert!(
        lineage["hyperparameters"]["training.steps"].is_number(),
        "{lineage}"
    );
    let files: Vec<&str> = detail["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for file in [
        "config.json",
        "model.safetensors",
        "distillation-report.json",
    ] {
        assert!(files.contains(&file), "{files:?}");
    }
    let teacher_detail = server.kiln_json(&["show", teacher]);
    assert!(
        teacher_detail["derived"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["reference"] == student && d["role"] == "teacher"),
        "{teacher_detail:#}"
    );
    let report = &job["report"];
    assert_eq!(report["kept_layers"], json!([0, 2]), "{report:#}");
    assert_eq!(report["teacher_layers"], 4);
    assert!(report["student_parameters"].as_u64() < report["teacher_parameters"].as_u64());
    assert!(!report["loss_curve"].as_array().unwrap().is_empty());
    for agreement in ["untrained", "trained"] {
        let top1 = report[agreement]["top1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&top1), "{report:#}");
    }
    // The signed manifest carries the lineage: a deployment can prove which teacher made the model.
    let manifest: Value =
        serde_json::from_str(&stdout(&server.kiln(&["manifest", student]))).unwrap();
    assert_eq!(
        manifest["lineage"]["parents"],
        json!([{"reference": teacher, "role": "teacher"}]),
        "{manifest:#}"
    );
}

#[test]
fn kiln_distill_on_the_embedded_default_makes_a_student_that_runs_the_pipeline() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    push_teacher(&server, work.path(), "gpt2", "acme/gpt2:1");
    let out = server.kiln(&[
        "distill",
        "acme/gpt2:1",
        "--into",
        "acme/gpt2-small:1",
        "--student",
        "layers=2",
        "--steps",
        "40",
        "--sequence-length",
        "16",
        "--wait",
    ]);
    assert_ok(&out);
    assert_eq!(stdout(&out).trim(), "acme/gpt2-small:1");
    assert!(stderr(&out).contains("succeeded"), "{}", stderr(&out));
    let (_, listed) = server.get_json("/api/v1/models/acme/gpt2/versions/1/distillations");
    let job = &listed[0];
    assert_eq!(job["state"], "succeeded", "{listed:#}");
    assert_eq!(job["attempt"], 1);
    check_student(&server, "acme/gpt2:1", "acme/gpt2-small:1", job);
    // With both benchmarked, the student's latency stands next to the teacher's.
    let comparison = &distillation(&server, job["id"].as_str().unwrap())["comparison"];
    assert_eq!(comparison["student"], "acme/gpt2-small:1");
    let pairs = comparison["latency"].as_array().unwrap();
    assert!(!pairs.is_empty(), "{comparison:#}");
    for pair in pairs {
        assert!(pair["teacher_p50_ms"].as_f64().unwrap() > 0.0, "{pair}");
        assert!(pair["student_p50_ms"].as_f64().unwrap() > 0.0, "{pair}");
    }
    let shown = stdout(&server.kiln(&["show", "acme/gpt2:1"]));
    assert!(shown.contains("STUDENT P50 MS"), "{shown}");
    assert!(
        shown.contains("DISTILLATION")
            && shown.contains("acme/gpt2-small:1")
            && shown.contains("succeeded"),
        "{shown}"
    );

    // With a dataset version of token ids: the lineage pins its files by digest, the report says so.
    let tokens = work.path().join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let ids: Vec<u32> = (0..64 * 16).map(|i| (i * 7 + i / 16) % 64).collect();
    let ids = candle_core::Tensor::from_vec(ids, (64, 16), &candle_core::Device::Cpu).unwrap();
    candle_core::safetensors::save(
        &std::collections::HashMap::from([("input_ids".to_owned(), ids)]),
        tokens.join("train.safetensors"),
    )
    .unwrap();
    assert_ok(&server.kiln(&["push", tokens.to_str().unwrap(), "acme/tokens:1"]));
    let out = server.kiln(&[
        "distill",
        "acme/gpt2:1",
        "--into",
        "acme/gpt2-small:2",
        "--data",
        "acme/tokens:1",
        "--steps",
        "10",
        "--sequence-length",
        "16",
        "--wait",
    ]);
    assert_ok(&out);
    let student = server.kiln_json(&["show", "acme/gpt2-small:2"]);
    let dataset = &student["lineage"]["datasets"][0];
    assert_eq!(dataset["reference"], "acme/tokens:1", "{student:#}");
    let dataset_version = server.kiln_json(&["show", "acme/tokens:1"]);
    assert_eq!(dataset["files"], dataset_version["files"], "{student:#}");
    let (_, listed) = server.get_json("/api/v1/models/acme/gpt2/versions/1/distillations");
    let report = &listed[0]["report"];
    assert_eq!(listed[0]["into"], "acme/gpt2-small:2");
    assert_eq!(
        report["data"]["source"],
        json!({"dataset": {"files": ["train.safetensors"]}}),
        "{report:#}"
    );

    // A teacher kiln cannot distill fails the job with the runner's reason; --wait says so and exits 1.
    let mlp = work.path().join("mlp");
    kiln_tests::write_mlp(&mlp, false);
    assert_ok(&server.kiln(&["push", mlp.to_str().unwrap(), "acme/mlp:1"]));
    let failed = server.kiln(&[
        "distill",
        "acme/mlp:1",
        "--into",
        "acme/mlp-small:1",
        "--wait",
    ]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("Hugging Face checkpoint"),
        "{}",
        stderr(&failed)
    );
    assert!(!server.kiln(&["show", "acme/mlp-small:1"]).status.success());

    // Asking again for the same student is a conflict; bad knobs name their field.
    let (status, body) = server.post_json(
        "/api/v1/models/acme/gpt2/versions/1/distillations",
        &json!({"into": "acme/gpt2-small:1"}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("version_conflict")),
        "{body}"
    );
    let (status, body) = server.post_json(
        "/api/v1/models/acme/gpt2/versions/1/distillations",
        &json!({"into": "acme/gpt2-small:2", "student": "layers=zero"}),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["details"]["field"], "student");
    let refused = server.kiln(&[
        "distill",
        "acme/gpt2:1",
        "--into",
        "acme/x:1",
        "--steps",
        "0",
    ]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("steps"), "{}", stderr(&refused));
}

fn runner(server: &Server, token: &str, name: &str) -> Child {
    let cache = server.dir.path().join(format!("cache-{name}"));
    Command::new(binary("kiln-runner"))
        .args(["--server", &server.url, "--token", token, "--device", "cpu"])
        .args([
            "--name",
            name,
            "--threads",
            "2",
            "--cache",
            cache.to_str().unwrap(),
        ])
        .args(["--min-iterations", "3", "--time-budget-ms", "200"])
        .env_remove("KILN_RUNNER_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(server.dir.path().join(format!("{name}.log"))).unwrap())
        .spawn()
        .expect("kiln-runner starts")
}

fn request(server: &Server, teacher: &str, body: Value) -> String {
    let (ns_model, version) = teacher.rsplit_once(':').unwrap();
    let (status, queued) = server.post_json(
        &format!("/api/v1/models/{ns_model}/versions/{version}/distillations"),
        &body,
    );
    assert_eq!(status, 201, "{queued}");
    assert_eq!(queued["state"], "queued");
    queued["id"].as_str().unwrap().to_owned()
}

#[test]
fn a_runner_killed_mid_training_is_resumed_from_its_checkpoint_and_a_job_can_be_cancelled() {
    let (server, token) = kiln_tests::server_for_runners(Backend::PostgresS3);
    let work = tempfile::tempdir().unwrap();
    push_teacher(&server, work.path(), "bert", "acme/bert:1");

    let id = request(
        &server,
        "acme/bert:1",
        // Enough steps to be running still when its first checkpoint (after a second) is seen: a fast
        // host trains 150 steps a second, and 300 steps once ended before the test's poll saw it.
        json!({"into": "acme/bert-small:1", "student": "layers=2", "steps": 1200,
               "sequence_length": 16, "checkpoint_every_seconds": 1}),
    );
    let mut a = runner(&server, &token, "runner-a");
    // Running, with progress in the API and a checkpoint kept by the server.
    let saved = wait_for("a checkpoint", Duration::from_secs(180), || {
        let job = distillation(&server, &id);
        let step = job["progress"]["checkpoint_step"].as_u64()?;
        assert_eq!(job["state"], "running", "{job:#}");
        assert!(
            job["progress"]["steps_per_second"].as_f64().unwrap() > 0.0,
            "{job:#}"
        );
        (step >= 1).then_some(step)
    });
    a.kill().unwrap(); // SIGKILL
    a.wait().unwrap();
    let mut b = runner(&server, &token, "runner-b");
    let job = wait_for("the resumed job to end", Duration::from_secs(600), || {
        let job = distillation(&server, &id);
        (job["state"] != "running" && job["state"] != "queued").then_some(job)
    });
    assert_eq!(
        job["state"],
        "succeeded",
        "{job:#}\n{}",
        std::fs::read_to_string(server.dir.path().join("runner-b.log")).unwrap_or_default()
    );
    assert_eq!(job["attempt"], 2, "{job:#}");
    let resumed = job["report"]["resumed_at"].as_array().unwrap();
    assert_eq!(resumed.len(), 1, "{job:#}");
    assert!(
        resumed[0].as_u64().unwrap() >= saved,
        "resumed at {resumed:?}, saved {saved}"
    );
    assert_eq!(job["report"]["steps"], 1200);
    check_student(&server, "acme/bert:1", "acme/bert-small:1", &job);

    // A running distillation cancelled: its runner drops it and is free for the next job.
    let second = request(
        &server,
        "acme/bert:1",
        json!({"into": "acme/bert-small:2", "steps": 100000, "sequence_length": 16}),
    );
    wait_for("the second job to run", Duration::from_secs(120), || {
        (distillation(&server, &second)["progress"]["step"].as_u64()? > 0).then_some(())
    });
    let out = server.kiln(&["distill", "--cancel", &second]);
    assert_ok(&out);
    let job = distillation(&server, &second);
    assert_eq!(job["state"], "cancelled", "{job:#}");
    assert!(
        job["message"].as_str().unwrap().starts_with("cancelled by"),
        "{job:#}"
    );
    let log = server.dir.path().join("runner-b.log");
    wait_for(
        "runner-b to drop the cancelled job",
        Duration::from_secs(60),
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.contains(&second).then_some(())?;
            text.contains("lost the job's lease").then_some(())
        },
    );
    let again = server.kiln(&["distill", "--cancel", &second]);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("finished already"),
        "{}",
        stderr(&again)
    );
    assert!(!server.kiln(&["show", "acme/bert-small:2"]).status.success());
    b.kill().ok();
    b.wait().ok();
}
