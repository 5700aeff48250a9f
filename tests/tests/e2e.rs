//! End to end: real files through the real `kiln` CLI against a real `kiln-server` process.

use std::path::Path;
use std::time::{Duration, Instant};

use kiln_core::Sha256Digest;
use kiln_tests::{
    Backend, Server, assert_ok, same_bytes, stderr, stdout, tree, write_pseudo_random,
};
use serde_json::{Value, json};

const MIB: usize = 1024 * 1024;

/// A model folder with nested paths, an empty file and one file over 64 MiB.
fn model_folder(root: &Path) {
    std::fs::create_dir_all(root.join("tokenizer/special")).unwrap();
    std::fs::write(
        root.join("config.json"),
        br#"{"architectures": ["BertModel"]}"#,
    )
    .unwrap();
    std::fs::write(root.join("tokenizer/vocab.txt"), b"[PAD]\n[UNK]\nhello\n").unwrap();
    std::fs::write(root.join("tokenizer/special/tokens.json"), b"{}").unwrap();
    std::fs::write(root.join("README"), b"").unwrap();
    write_pseudo_random(&root.join("model.safetensors"), 65 * MIB + 123, 7);
}

fn push_pull_round_trip(backend: Backend) {
    let server = Server::start(backend);
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("my-model");
    model_folder(&source);

    let push = server.kiln(&[
        "push",
        source.to_str().unwrap(),
        "acme/sentiment:1.0.0",
        "--description",
        "demo",
    ]);
    assert_ok(&push);
    assert!(
        stdout(&push).starts_with("pushed acme/sentiment:1.0.0 (5 files"),
        "{}",
        stdout(&push)
    );
    // Piped: no progress bars, no terminal control characters.
    assert!(
        !stderr(&push).contains('\r') && !stderr(&push).contains('\u{1b}'),
        "{:?}",
        stderr(&push)
    );

    let again = server.kiln(&["push", source.to_str().unwrap(), "acme/sentiment:1.0.0"]);
    assert_ok(&again);
    assert!(
        stdout(&again).contains("already present"),
        "{}",
        stdout(&again)
    );
    assert!(
        stdout(&again).contains("uploaded 0 blob(s)"),
        "identical files are not sent twice: {}",
        stdout(&again)
    );

    let show = server.kiln(&["show", "acme/sentiment:1.0.0", "--json"]);
    assert_ok(&show);
    let shown: Value = serde_json::from_str(&stdout(&show)).unwrap();
    let mut keys: Vec<&str> = shown
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "created_at",
            "files",
            "model",
            "namespace",
            "pipeline",
            "status",
            "variants",
            "version"
        ]
    );
    assert_eq!(
        (shown["namespace"].as_str(), shown["model"].as_str()),
        (Some("acme"), Some("sentiment"))
    );
    // Random bytes named model.safetensors are no model: scanning may still be running, or has refused it.
    assert!(
        ["pending", "processing", "ready", "failed"].contains(&shown["status"].as_str().unwrap()),
        "{shown}"
    );
    let big = shown["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "model.safetensors")
        .unwrap();
    assert_eq!(big["size"], 65 * MIB + 123);
    let digest = Sha256Digest::of(&std::fs::read(source.join("model.safetensors")).unwrap());
    assert_eq!(big["digest"], json!(digest));

    let ls = server.kiln(&["ls", "--json"]);
    assert_ok(&ls);
    let models: Value = serde_json::from_str(&stdout(&ls)).unwrap();
    assert_eq!(models[0]["namespace"], "acme");
    assert_eq!(models[0]["description"], "demo");
    let table = server.kiln(&["ls", "acme/sentiment"]);
    assert_ok(&table);
    assert!(
        stdout(&table).contains("1.0.0") && stdout(&table).contains("STATUS"),
        "{}",
        stdout(&table)
    );

    let out = work.path().join("out");
    let pull = server.kiln(&["pull", "acme/sentiment:1.0.0", "-o", out.to_str().unwrap()]);
    assert_ok(&pull);
    assert_eq!(tree(&out), tree(&source));
    for path in tree(&source) {
        assert!(
            same_bytes(&source.join(&path), &out.join(&path)),
            "{path} differs after pull"
        );
    }
    // Pulling into the same folder again downloads nothing.
    let repull = server.kiln(&["pull", "acme/sentiment:1.0.0", "-o", out.to_str().unwrap()]);
    assert_ok(&repull);
    assert!(
        stdout(&repull).contains("0 downloaded, 5 already up to date"),
        "{}",
        stdout(&repull)
    );

    let one = work.path().join("one");
    let pull_one = server.kiln(&[
        "pull",
        "acme/sentiment:1.0.0",
        "-o",
        one.to_str().unwrap(),
        "--file",
        "tokenizer/vocab.txt",
    ]);
    assert_ok(&pull_one);
    assert_eq!(tree(&one), ["tokenizer/vocab.txt"]);

    // The same bytes under another model are stored once: nothing to upload.
    let other = server.kiln(&["push", source.to_str().unwrap(), "acme/copy:1"]);
    assert_ok(&other);
    assert!(
        stdout(&other).contains("uploaded 0 blob(s), 5 already on the server"),
        "{}",
        stdout(&other)
    );
}

#[test]
fn push_pull_round_trip_on_the_embedded_default() {
    push_pull_round_trip(Backend::Embedded);
}

#[test]
fn push_pull_round_trip_on_postgres_and_garage() {
    push_pull_round_trip(Backend::PostgresS3);
}

/// Pushes of the same files by one account at once (two CI jobs publishing the same weights) share
/// upload sessions, chunks and commits: every push succeeds, every version pulls byte for byte, the
/// server answers no request with a 5xx, and the store check finds nothing amiss.
fn simultaneous_pushes_of_the_same_files(backend: Backend) {
    let server = Server::start(backend);
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("model");
    std::fs::create_dir_all(&source).unwrap();
    // Three 8 MiB chunks (the smallest part size), so that pushes also meet mid-session.
    write_pseudo_random(&source.join("weights.bin"), 17 * MIB, 7);
    for i in 0..30 {
        write_pseudo_random(&source.join(format!("shard-{i:02}.bin")), 5_000, 100 + i);
    }
    let pushes: Vec<_> = (1..=4)
        .map(|n| {
            server
                .kiln_command(&[
                    "push",
                    source.to_str().unwrap(),
                    &format!("acme/same:{n}"),
                    "--chunk-size",
                    "1",
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    for push in pushes {
        assert_ok(&push.wait_with_output().unwrap());
    }
    for n in 1..=4 {
        let pulled = work.path().join(format!("pulled-{n}"));
        assert_ok(&server.kiln(&[
            "pull",
            &format!("acme/same:{n}"),
            "-o",
            pulled.to_str().unwrap(),
        ]));
        for entry in std::fs::read_dir(&source).unwrap() {
            let entry = entry.unwrap();
            assert!(same_bytes(&entry.path(), &pulled.join(entry.file_name())));
        }
    }
    let log = server.log();
    assert!(!log.contains("status_code=5"), "a request failed: {log}");
    let check = server.kiln_json(&["admin", "fsck", "--verify"]);
    assert_eq!(
        (
            check["problem_count"].as_i64(),
            check["orphan_count"].as_i64()
        ),
        (Some(0), Some(0)),
        "{check}"
    );
}

#[test]
fn simultaneous_pushes_of_the_same_files_on_the_embedded_default() {
    simultaneous_pushes_of_the_same_files(Backend::Embedded);
}

#[test]
fn simultaneous_pushes_of_the_same_files_on_postgres_and_garage() {
    simultaneous_pushes_of_the_same_files(Backend::PostgresS3);
}

#[test]
fn the_embedded_default_keeps_its_data_under_kiln_data() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("model.onnx"), b"onnx").unwrap();
    assert_ok(&server.kiln(&[
        "push",
        work.path().join("model.onnx").to_str().unwrap(),
        "acme/tiny:1",
    ]));
    let data = server.dir.path().join("kiln-data");
    assert!(
        data.join("kiln.db").is_file(),
        "SQLite database under ./kiln-data"
    );
    let blob = Sha256Digest::of(b"onnx").hex();
    assert!(
        data.join(format!("store/blobs/sha256/{}/{blob}", &blob[..2]))
            .is_file(),
        "blob stored content-addressed"
    );
}

/// Starts a push of `file` in the background, and returns once the server holds at least `at_least` bytes.
#[expect(
    clippy::zombie_processes,
    reason = "the caller waits for or kills the returned push"
)]
fn push_until(server: &Server, file: &Path, reference: &str, at_least: i64) -> std::process::Child {
    let size = std::fs::metadata(file).unwrap().len() as i64;
    let digest = Sha256Digest::of(&std::fs::read(file).unwrap());
    // Open the session ourselves so its progress can be watched; the CLI continues this same session.
    let (status, session) = server.post_json(
        "/api/v1/uploads",
        &json!({ "digest": digest, "size": size }),
    );
    assert!(status == 201 || status == 200, "{session}");
    let id = session["id"].as_str().unwrap().to_owned();
    let mut child = server
        .kiln_command(&[
            "push",
            file.to_str().unwrap(),
            reference,
            "--chunk-size",
            "8388608",
        ])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, progress) = server.get_json(&format!("/api/v1/uploads/{id}"));
        let offset = progress["offset"].as_i64().unwrap_or(0);
        if offset >= at_least && offset < size {
            return child;
        }
        if offset >= size || Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!(
                "the upload could not be caught in flight (offset {offset} of {size}): {progress}"
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn killing_the_server_mid_push_leaves_nothing_visible(backend: Backend) {
    let mut server = Server::start(backend);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("big.bin");
    write_pseudo_random(&file, 256 * MIB, 11);

    let push = push_until(&server, &file, "acme/crash:1", 16 * MIB as i64);
    server.kill();
    let output = push.wait_with_output().unwrap();
    assert!(
        !output.status.success(),
        "the push cannot succeed once the server is gone"
    );
    assert!(
        stderr(&output).contains("rerun"),
        "the CLI says how to continue: {}",
        stderr(&output)
    );

    server.restart();
    let (status, body) = server.get_json("/api/v1/models/acme/crash/versions/1");
    assert_eq!(
        status, 404,
        "a half-pushed version must not be visible: {body}"
    );
    let ls = server.kiln(&["ls", "--json"]);
    assert_ok(&ls);
    assert_eq!(
        stdout(&ls).trim(),
        "[]",
        "no model appears before a version is committed"
    );

    // Rerunning the push continues the interrupted upload instead of starting over.
    let rerun = server.kiln(&["push", file.to_str().unwrap(), "acme/crash:1"]);
    assert_ok(&rerun);
    assert!(
        stderr(&rerun).contains("resuming upload of big.bin at"),
        "{}",
        stderr(&rerun)
    );
    let out = work.path().join("out");
    assert_ok(&server.kiln(&["pull", "acme/crash:1", "-o", out.to_str().unwrap()]));
    assert!(same_bytes(&file, &out.join("big.bin")));
}

#[test]
fn killing_the_server_mid_push_on_the_embedded_default() {
    killing_the_server_mid_push_leaves_nothing_visible(Backend::Embedded);
}

#[test]
fn killing_the_server_mid_push_on_postgres_and_garage() {
    killing_the_server_mid_push_leaves_nothing_visible(Backend::PostgresS3);
}

#[test]
fn an_interrupted_push_resumes_when_rerun() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("weights.bin");
    write_pseudo_random(&file, 128 * MIB, 5);

    let mut push = push_until(&server, &file, "acme/resume:1", 16 * MIB as i64);
    push.kill().unwrap();
    push.wait().unwrap();

    let rerun = server.kiln(&["push", file.to_str().unwrap(), "acme/resume:1"]);
    assert_ok(&rerun);
    let message = stderr(&rerun);
    let resumed_at = message
        .split("resuming upload of weights.bin at ")
        .nth(1)
        .unwrap_or_else(|| panic!("the rerun must resume: {message}"));
    assert!(!resumed_at.starts_with("0 B"), "{message}");
    let out = work.path().join("out");
    assert_ok(&server.kiln(&["pull", "acme/resume:1", "-o", out.to_str().unwrap()]));
    assert!(same_bytes(&file, &out.join("weights.bin")));
}

#[test]
fn wrong_settings_stop_the_start_with_one_line() {
    for (setting, value, expected) in [
        (
            "KILN_LISTEN",
            "not-an-address",
            "kiln-server: KILN_LISTEN: \"not-an-address\" is not an address",
        ),
        (
            "KILN_DATABASE_URL",
            "mysql://db/kiln",
            "kiln-server: KILN_DATABASE_URL: unsupported database \"mysql\"",
        ),
        (
            "KILN_STORAGE_URL",
            "gs://bucket",
            "kiln-server: KILN_STORAGE_URL: unsupported storage \"gs\"",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let output = std::process::Command::new(kiln_tests::binary("kiln-server"))
            .current_dir(dir.path())
            .env(setting, value)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{setting}");
        let text = stderr(&output);
        assert_eq!(text.lines().count(), 1, "one line: {text}");
        assert!(text.starts_with(expected), "{text}");
        assert!(
            !dir.path().join("kiln-data").exists(),
            "nothing is created when the settings are wrong"
        );
    }
}

#[test]
fn the_cli_says_what_to_do_when_something_is_wrong() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("m.bin"), b"x").unwrap();
    let file = work.path().join("m.bin");

    let no_version = server.kiln(&["push", file.to_str().unwrap(), "acme/m"]);
    assert_eq!(no_version.status.code(), Some(2));
    assert!(
        stderr(&no_version).contains("NAMESPACE/MODEL:VERSION"),
        "{}",
        stderr(&no_version)
    );
    let bad_name = server.kiln(&["push", file.to_str().unwrap(), "Acme/m:1"]);
    assert!(!bad_name.status.success());
    assert!(
        stderr(&bad_name).contains("invalid namespace \"Acme\""),
        "{}",
        stderr(&bad_name)
    );
    let missing = server.kiln(&[
        "pull",
        "acme/none:1",
        "-o",
        work.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(4));
    assert!(
        stderr(&missing).contains("model acme/none not found"),
        "{}",
        stderr(&missing)
    );
    let no_file = server.kiln(&[
        "push",
        work.path().join("nope").to_str().unwrap(),
        "acme/m:1",
    ]);
    assert!(
        stderr(&no_file).contains("No such file"),
        "{}",
        stderr(&no_file)
    );

    assert_ok(&server.kiln(&["push", file.to_str().unwrap(), "acme/m:1"]));
    std::fs::write(&file, b"changed").unwrap();
    let conflict = server.kiln(&["push", file.to_str().unwrap(), "acme/m:1"]);
    assert!(
        stderr(&conflict).contains("versions are immutable"),
        "{}",
        stderr(&conflict)
    );
    let wrong_file = server.kiln(&[
        "pull",
        "acme/m:1",
        "--file",
        "other.bin",
        "-o",
        work.path().join("o").to_str().unwrap(),
    ]);
    assert!(
        stderr(&wrong_file).contains("has no file \"other.bin\"; it has: m.bin"),
        "{}",
        stderr(&wrong_file)
    );
    let delete = server.kiln(&["delete", "acme/m:1"]);
    assert!(stderr(&delete).contains("--yes"), "{}", stderr(&delete));
    assert_ok(&server.kiln(&["delete", "acme/m:1", "--yes"]));
    // A whole model, by its name.
    assert_ok(&server.kiln(&["push", file.to_str().unwrap(), "acme/m:2"]));
    assert_ok(&server.kiln(&["delete", "acme/m", "--yes"]));
    let gone = server.kiln(&["show", "acme/m"]);
    assert!(!gone.status.success(), "{}", stdout(&gone));

    let unreachable = std::process::Command::new(kiln_tests::binary("kiln"))
        .args(["ls", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(
        stderr(&unreachable).contains("cannot reach the kiln server at http://127.0.0.1:9"),
        "{}",
        stderr(&unreachable)
    );
}
