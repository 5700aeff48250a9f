//! End to end with the real binaries: the embedded default benchmarks with nothing else started, and two
//! `kiln-runner` processes share one PostgreSQL-backed server, one of them killed mid-job.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_tests::{Backend, Server, assert_ok, binary, settled, stdout, write_mlp};
use serde_json::Value;

fn push_mlp(server: &Server, work: &std::path::Path, reference: &str) {
    let folder = work.join("mlp");
    write_mlp(&folder, false);
    assert_ok(&server.kiln(&[
        "push",
        folder.to_str().unwrap(),
        reference,
        "--variants",
        "fp32",
    ]));
}

fn sane(benchmark: &Value) {
    let (p50, p90, p99) = (
        benchmark["p50_ms"].as_f64().unwrap(),
        benchmark["p90_ms"].as_f64().unwrap(),
        benchmark["p99_ms"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99, "{benchmark}");
    let batch = benchmark["batch_size"].as_f64().unwrap();
    let throughput = benchmark["throughput"].as_f64().unwrap();
    assert!(
        (throughput - batch * 1000.0 / p50).abs() <= 1e-6 * throughput,
        "{benchmark}"
    );
}

#[test]
fn the_embedded_default_benchmarks_with_nothing_else_started() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    push_mlp(&server, work.path(), "acme/mlp:1");
    let detail = settled(&server, "acme/mlp:1");
    assert_eq!(detail["status"], "ready");
    for variant in detail["variants"].as_array().unwrap() {
        let benchmarks = variant["benchmarks"].as_array().unwrap();
        let batches: Vec<i64> = benchmarks
            .iter()
            .map(|b| b["batch_size"].as_i64().unwrap())
            .collect();
        assert_eq!(batches, [1, 8], "{variant}");
        benchmarks.iter().for_each(sane);
    }
    let human = stdout(&server.kiln(&["show", "acme/mlp:1"]));
    assert!(
        human.contains("benchmarks:") && human.contains("P50 MS"),
        "{human}"
    );
    let runners = stdout(&server.kiln(&["runners"]));
    assert!(
        runners.contains("embedded") && runners.contains("idle"),
        "{runners}"
    );
    let manifest: Value =
        serde_json::from_str(&stdout(&server.kiln(&["manifest", "acme/mlp:1"]))).unwrap();
    // Scanned, then the variants, then the benchmarks.
    assert_eq!(manifest["sequence"], 3);
    assert!(
        manifest["provenance"]["runners"][0]
            .as_str()
            .unwrap()
            .starts_with("embedded (")
    );
}

/// The embedded runner's per-start secret is accepted only on the loopback listener made for it: the
/// same credential presented on the public listener is an unknown token. Read from the child's
/// environment, as someone on the same host with the server's uid could.
#[test]
fn the_embedded_runners_secret_is_refused_on_the_public_listener() {
    let server = Server::start(Backend::Embedded);
    let (url, secret) = embedded_runner_door(&server);
    assert_ne!(
        url, server.url,
        "the runner's listener is not the public one"
    );
    let (status, body) = server.get_json_as(&format!("{}/api/v1/runners", server.url), &secret);
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    // The same secret on its own listener is the runner: proof the refusal above is about the door.
    let (status, body) = server.get_json_as(&format!("{url}/api/v1/runners"), &secret);
    assert_ne!(status, 401, "{body}");
}

/// The embedded runner child's URL and secret, from /proc/<child>/environ.
fn embedded_runner_door(server: &Server) -> (String, String) {
    let parent = server.pid().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid ...: the fields after the last ')'.
            let ppid = stat
                .rsplit(')')
                .next()
                .and_then(|rest| rest.split_whitespace().nth(1));
            if ppid != Some(parent.as_str()) {
                continue;
            }
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            let vars: std::collections::HashMap<String, String> = environ
                .split(|&b| b == 0)
                .filter_map(|kv| {
                    let kv = String::from_utf8_lossy(kv);
                    let (k, v) = kv.split_once('=')?;
                    Some((k.to_owned(), v.to_owned()))
                })
                .collect();
            if let (Some(url), Some(secret)) = (
                vars.get("KILN_EMBEDDED_RUNNER_URL"),
                vars.get("KILN_EMBEDDED_RUNNER_SECRET"),
            ) {
                return (url.trim_end_matches('/').to_owned(), secret.clone());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no embedded runner child of the server:\n{}", server.log());
}

fn start_runner(server: &Server, token: &str, name: &str, slow: bool) -> Child {
    let cache = server.dir.path().join(format!("cache-{name}"));
    let mut command = Command::new(binary("kiln-runner"));
    command
        .args(["--server", &server.url, "--token", token, "--device", "cpu"])
        .args([
            "--name",
            name,
            "--threads",
            "1",
            "--cache",
            cache.to_str().unwrap(),
        ])
        .env_remove("KILN_RUNNER_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(server.dir.path().join(format!("{name}.log"))).unwrap());
    if slow {
        // Stays inside its first job until killed.
        command.args(["--min-iterations", "1000000", "--max-iterations", "1000000"]);
    } else {
        command.args(["--min-iterations", "5", "--time-budget-ms", "200"]);
    }
    command.spawn().expect("kiln-runner starts")
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_killed_runners_job_is_finished_by_another() {
    let (server, token) = kiln_tests::server_for_runners(Backend::PostgresS3);
    let mut a = start_runner(&server, &token, "runner-a", true);
    let runners = || server.get_json("/api/v1/runners").1;
    wait_for("runner-a to register", || {
        runners().as_array().is_some_and(|r| r.len() == 1)
    });

    let work = tempfile::tempdir().unwrap();
    push_mlp(&server, work.path(), "acme/mlp:1");
    wait_for("runner-a to take a job", || runners()[0]["state"] == "busy");
    let held = runners()[0]["current_job"].as_str().unwrap().to_owned();
    a.kill().unwrap();
    a.wait().unwrap();

    let mut b = start_runner(&server, &token, "runner-b", false);
    let detail = settled(&server, "acme/mlp:1");
    b.kill().ok();
    b.wait().ok();
    let jobs: Vec<&Value> = detail["pipeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "benchmark")
        .collect();
    assert_eq!(jobs.len(), 2, "{detail:#}");
    assert!(jobs.iter().all(|j| j["state"] == "succeeded"), "{detail:#}");
    // The killed runner's job took a second attempt; the other was claimed once.
    let mut attempts: Vec<i64> = jobs
        .iter()
        .map(|j| j["attempts"].as_i64().unwrap())
        .collect();
    attempts.sort_unstable();
    assert_eq!(attempts, [1, 2], "{detail:#}");
    // Each variant measured once, at both batch sizes, all by runner-b.
    for variant in detail["variants"].as_array().unwrap() {
        let benchmarks = variant["benchmarks"].as_array().unwrap();
        assert_eq!(benchmarks.len(), 2, "{variant}");
        for b in benchmarks {
            assert!(
                b["runner"].as_str().unwrap().starts_with("runner-b ("),
                "{b}"
            );
            assert!(b["peak_memory_bytes"].as_i64().unwrap() > 0, "{b}");
            sane(b);
        }
    }
    let states: Vec<(String, String)> = runners()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        states.contains(&("runner-a".to_owned(), "lost".to_owned())),
        "{states:?} (held {held})"
    );
}
