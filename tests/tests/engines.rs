//! End to end with the real binaries and ONNX Runtime's real library (the official wheel's, unpacked by
//! scripts/fetch-onnxruntime.sh): a `kiln-runner --engine ort` beside a `kiln-runner --engine kiln` on one
//! server, each variant measured by both and the numbers, with the engine, its version and its execution
//! provider, in `kiln show` and the signed manifest; the embedded runner on ONNX Runtime when the server
//! is told where the library is; a runner without the library refusing the engine with what to do.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kiln_tests::{Backend, Server, assert_ok, binary, settled, stderr, stdout, write_mlp};
use serde_json::{Value, json};

/// ONNX Runtime's library: `KILN_TEST_ONNXRUNTIME_LIB` (scripts/test.sh sets it), else fetched here by the
/// same script (pinned and checked; a no-op once done).
fn onnxruntime_library() -> PathBuf {
    if let Some(library) = std::env::var_os("KILN_TEST_ONNXRUNTIME_LIB") {
        return PathBuf::from(library);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let fetched = Command::new(root.join("scripts/fetch-onnxruntime.sh"))
        .current_dir(root)
        .output()
        .expect("scripts/fetch-onnxruntime.sh runs");
    assert!(
        fetched.status.success(),
        "scripts/fetch-onnxruntime.sh failed: {}",
        String::from_utf8_lossy(&fetched.stderr)
    );
    PathBuf::from(String::from_utf8(fetched.stdout).unwrap().trim())
}

fn runner_token(server: &Server) -> String {
    let (status, token) = server.post_json(
        "/api/v1/tokens",
        &json!({ "name": "runners", "scopes": ["runner"] }),
    );
    assert_eq!(status, 201, "{token}");
    token["token"].as_str().unwrap().to_owned()
}

fn start_runner(server: &Server, token: &str, name: &str, engine: &[&str]) -> Child {
    let cache = server.dir.path().join(format!("cache-{name}"));
    Command::new(binary("kiln-runner"))
        .args(["--server", &server.url, "--token", token, "--device", "cpu"])
        .args(["--name", name, "--threads", "1"])
        .args(["--cache", cache.to_str().unwrap()])
        .args(["--min-iterations", "5", "--time-budget-ms", "200"])
        .args(engine)
        .env_remove("KILN_RUNNER_TOKEN")
        .env_remove("KILN_ONNXRUNTIME_LIB")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(server.dir.path().join(format!("{name}.log"))).unwrap())
        .spawn()
        .expect("kiln-runner starts")
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn push_mlp(server: &Server, reference: &str) {
    let work = tempfile::tempdir().unwrap();
    let folder = work.path().join("mlp");
    write_mlp(&folder, false);
    assert_ok(&server.kiln(&[
        "push",
        folder.to_str().unwrap(),
        reference,
        "--variants",
        "fp32,int8",
        "--benchmark-batch-sizes",
        "1,4",
    ]));
}

/// (engine, version, provider, batch) of each result, sorted.
fn measured(benchmarks: &Value) -> Vec<(String, String, String, i64)> {
    let mut rows: Vec<_> = benchmarks
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let text = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
            (
                text("engine"),
                text("engine_version"),
                text("execution_provider"),
                b["batch_size"].as_i64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn an_ort_runner_and_a_kiln_runner_measure_every_variant_into_the_manifest() {
    let library = onnxruntime_library();
    let server = Server::start_with(Backend::Embedded, &[("KILN_EMBEDDED_RUNNER", "false")]);
    let token = runner_token(&server);
    let ort_flags = [
        "--engine",
        "ort",
        "--onnxruntime-lib",
        library.to_str().unwrap(),
    ];
    let mut ort = start_runner(&server, &token, "ort-box", &ort_flags);
    let mut kiln = start_runner(&server, &token, "kiln-box", &["--engine", "kiln"]);
    wait_for("both runners to register", || {
        server
            .get_json("/api/v1/runners")
            .1
            .as_array()
            .map(Vec::len)
            == Some(2)
    });
    let runners = stdout(&server.kiln(&["runners"]));
    assert!(
        runners.contains("onnxruntime 1.32.0 (CPUExecutionProvider)"),
        "{runners}"
    );

    push_mlp(&server, "acme/mlp:1");
    let detail = settled(&server, "acme/mlp:1");
    ort.kill().ok();
    kiln.kill().ok();
    ort.wait().ok();
    kiln.wait().ok();
    let failed: Vec<&Value> = detail["pipeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "benchmark" && j["state"] != "succeeded")
        .collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", server.log());
    let version = env!("CARGO_PKG_VERSION");
    let kiln_version = format!("{version} (candle-core 0.11)");
    let expected: Vec<(String, String, String, i64)> = [
        ("kiln", kiln_version.as_str(), "candle-cpu", 1),
        ("kiln", kiln_version.as_str(), "candle-cpu", 4),
        ("onnxruntime", "1.32.0", "CPUExecutionProvider", 1),
        ("onnxruntime", "1.32.0", "CPUExecutionProvider", 4),
    ]
    .into_iter()
    .map(|(e, v, p, b)| (e.to_owned(), v.to_owned(), p.to_owned(), b))
    .collect();
    let variants = detail["variants"].as_array().unwrap();
    let deployable: Vec<&Value> = variants
        .iter()
        .filter(|v| v["status"] == "deployable")
        .collect();
    assert!(deployable.len() >= 2, "{variants:?}");
    for variant in &deployable {
        assert_eq!(measured(&variant["benchmarks"]), expected, "{variant}");
        for b in variant["benchmarks"].as_array().unwrap() {
            let p50 = b["p50_ms"].as_f64().unwrap();
            assert!(p50 > 0.0 && p50 <= b["p99_ms"].as_f64().unwrap(), "{b}");
            assert!(b["peak_memory_bytes"].as_i64().unwrap() > 0, "{b}");
            if b["engine"] == "onnxruntime" {
                let options = &b["engine_options"];
                assert_eq!(options["graph_optimization_level"], "all", "{b}");
                assert_eq!(options["intra_op_threads"], "1", "{b}");
            }
        }
    }

    // The signed manifest carries the same numbers.
    let manifest: Value =
        serde_json::from_str(&stdout(&server.kiln(&["manifest", "acme/mlp:1"]))).unwrap();
    for variant in manifest["variants"].as_array().unwrap() {
        assert_eq!(measured(&variant["benchmarks"]), expected, "{variant}");
    }
    let human = stdout(&server.kiln(&["show", "acme/mlp:1"]));
    assert!(
        human.contains("onnxruntime 1.32.0 CPUExecutionProvider"),
        "{human}"
    );
}

#[test]
fn the_embedded_runner_measures_with_onnxruntime_when_the_server_has_the_library() {
    let library = onnxruntime_library();
    let server = Server::start_with(
        Backend::Embedded,
        &[("KILN_ONNXRUNTIME_LIB", library.to_str().unwrap())],
    );
    push_mlp(&server, "acme/mlp:1");
    let detail = settled(&server, "acme/mlp:1");
    for variant in detail["variants"].as_array().unwrap() {
        if variant["status"] != "deployable" {
            continue;
        }
        let engines: Vec<String> = measured(&variant["benchmarks"])
            .into_iter()
            .map(|(engine, version, provider, _)| format!("{engine} {version} {provider}"))
            .collect();
        assert_eq!(
            engines,
            ["onnxruntime 1.32.0 CPUExecutionProvider"; 2],
            "{variant}\n{}",
            server.log()
        );
    }
    // A library that is not there stops the server at start with the setting's name.
    let wrong = Command::new(binary("kiln-server"))
        .env_clear()
        .env("KILN_DATA_DIR", server.dir.path().join("other"))
        .env("KILN_ONNXRUNTIME_LIB", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    let message = stderr(&wrong);
    assert!(
        message.contains("KILN_ONNXRUNTIME_LIB") && message.contains("fetch-onnxruntime.sh"),
        "{message}"
    );
}

#[test]
fn a_runner_without_the_library_refuses_the_engine_and_says_what_to_do() {
    let measure = |extra: &[&str]| {
        Command::new(binary("kiln-runner"))
            .args(["--measure", "model.onnx", "--engine", "ort"])
            .args(extra)
            .env_remove("KILN_ONNXRUNTIME_LIB")
            .output()
            .unwrap()
    };
    for (extra, says) in [
        (&[][..], "--onnxruntime-lib"),
        (
            &["--onnxruntime-lib", "/nonexistent/libonnxruntime.so"][..],
            "does not exist",
        ),
        (
            &["--onnxruntime-lib", "/etc/hostname"][..],
            "is not ONNX Runtime's library",
        ),
    ] {
        let refused = measure(extra);
        assert_eq!(refused.status.code(), Some(2), "{extra:?}");
        let message = stderr(&refused);
        assert!(
            message.contains(says) && message.contains("scripts/fetch-onnxruntime.sh"),
            "{extra:?}: {message}"
        );
    }
    let unknown = Command::new(binary("kiln-runner"))
        .args(["--measure", "model.onnx", "--engine", "tensorflow"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("use kiln or ort"),
        "{}",
        stderr(&unknown)
    );
}
