//! Lineage end to end, through the real binaries: `kiln push --lineage FILE` (or `-` for stdin), `kiln show`
//! as JSON and in words, what was derived listed on the parent, the lineage in the signed manifest that
//! `kiln verify` checks, and messages that say what to fix when the file is wrong or names nothing readable.

use std::io::Write;
use std::process::Stdio;

use kiln_tests::{Backend, Server, assert_ok, settled, stderr, stdout};
use serde_json::{Value, json};

fn folder_with(root: &std::path::Path, name: &str, file: &str, bytes: &[u8]) -> String {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(file), bytes).unwrap();
    dir.to_str().unwrap().to_owned()
}

fn lineage_file(root: &std::path::Path, lineage: &Value) -> String {
    let path = root.join(format!("lineage-{}.json", short_name(lineage)));
    std::fs::write(&path, serde_json::to_vec_pretty(lineage).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A file name per lineage, so that each case writes its own.
fn short_name(value: &Value) -> String {
    kiln_core::Sha256Digest::of(value.to_string().as_bytes()).hex()[..12].to_owned()
}

#[test]
fn a_push_with_lineage_is_shown_both_ways_and_signed() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let teacher = folder_with(work.path(), "teacher", "notes.txt", b"teacher");
    let corpus = folder_with(work.path(), "corpus", "train.txt", b"the quick brown fox");
    let student = folder_with(work.path(), "student", "notes.txt", b"student");
    assert_ok(&server.kiln(&["push", &teacher, "acme/teacher:1"]));
    assert_ok(&server.kiln(&["push", &corpus, "acme/corpus:1"]));
    let lineage = json!({
        "parents": [{ "reference": "acme/teacher:1", "role": "teacher" }],
        "datasets": [{ "reference": "acme/corpus:1" }, { "uri": "https://data.example/extra.jsonl" }],
        "training_run": "https://ci.example/runs/42",
        "producer": { "name": "torchrun", "version": "2.5.1" },
        "hyperparameters": { "lr": 0.0003, "steps": 1000 },
    });
    let file = lineage_file(work.path(), &lineage);
    let pushed = server.kiln_json(&["push", &student, "acme/student:1", "--lineage", &file]);
    assert_eq!(pushed["outcome"], "created");

    let shown = server.kiln_json(&["show", "acme/student:1"]);
    assert_eq!(
        shown["lineage"]["parents"][0]["reference"],
        "acme/teacher:1"
    );
    assert_eq!(shown["lineage"]["parents"][0]["role"], "teacher");
    assert!(
        shown["lineage"]["parents"][0]["status"].is_string(),
        "{shown}"
    );
    let corpus_digest = kiln_core::Sha256Digest::of(b"the quick brown fox").to_string();
    assert_eq!(
        shown["lineage"]["datasets"][0]["files"][0]["digest"],
        corpus_digest
    );
    let words = server.kiln(&["show", "acme/student:1"]);
    assert_ok(&words);
    for line in [
        "lineage:",
        "parent   acme/teacher:1 (teacher, ",
        "dataset  acme/corpus:1 (",
        "dataset  https://data.example/extra.jsonl",
        "run      https://ci.example/runs/42",
        "producer torchrun 2.5.1",
        "hyper    lr = 0.0003",
    ] {
        assert!(
            stdout(&words).contains(line),
            "{line:?} in:\n{}",
            stdout(&words)
        );
    }
    let parent = server.kiln(&["show", "acme/teacher:1"]);
    assert!(
        stdout(&parent).contains("derived:\n  acme/student:1 (as its teacher)"),
        "{}",
        stdout(&parent)
    );
    assert_eq!(
        server.kiln_json(&["show", "acme/corpus:1"])["derived"],
        json!([{ "reference": "acme/student:1", "link": "dataset", "role": "dataset" }])
    );

    settled(&server, "acme/student:1");
    let manifest = server.kiln_json(&["manifest", "acme/student:1"]);
    assert_eq!(
        manifest["payload"]["lineage"]["parents"],
        json!([{ "reference": "acme/teacher:1", "role": "teacher" }])
    );
    let verified = server.kiln_json(&["verify", "acme/student:1"]);
    assert_eq!(
        verified["manifest"]["lineage"]["datasets"][0]["files"][0]["digest"], corpus_digest,
        "the lineage is in the signed document kiln verify checked"
    );

    // The same lineage from stdin; the identical re-push is a no-op.
    let mut again = server.kiln_command(&[
        "push",
        &student,
        "acme/student:1",
        "--lineage",
        "-",
        "--json",
    ]);
    let mut child = again
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(lineage.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_ok(&output);
    let answer: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(answer["outcome"], "already_present");
}

#[test]
fn a_wrong_lineage_says_what_to_fix() {
    let server = Server::start(Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let student = folder_with(work.path(), "student", "notes.txt", b"student");

    // Checked before anything is hashed or uploaded: a usage error (2) naming the field.
    let typo = lineage_file(work.path(), &json!({ "run": "https://ci.example/runs/42" }));
    let refused = server.kiln(&["push", &student, "acme/student:1", "--lineage", &typo]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("unknown field `run`"),
        "{}",
        stderr(&refused)
    );
    assert!(
        stderr(&refused).contains("training_run"),
        "{}",
        stderr(&refused)
    );
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("p{i}"), json!(i))).collect();
    let oversized = lineage_file(work.path(), &json!({ "hyperparameters": many }));
    let refused = server.kiln(&["push", &student, "acme/student:1", "--lineage", &oversized]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("lineage.hyperparameters: at most 64"),
        "{}",
        stderr(&refused)
    );
    let missing = server.kiln(&[
        "push",
        &student,
        "acme/student:1",
        "--lineage",
        "no-such.json",
    ]);
    assert_eq!(missing.status.code(), Some(1), "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("no-such.json"),
        "{}",
        stderr(&missing)
    );

    // A parent that does not exist (or that the pusher cannot read): not found (4), naming the field.
    let absent = lineage_file(
        work.path(),
        &json!({ "parents": [{ "reference": "acme/nothing:1", "role": "base" }] }),
    );
    let refused = server.kiln(&["push", &student, "acme/student:1", "--lineage", &absent]);
    assert_eq!(refused.status.code(), Some(4), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("lineage.parents[0].reference: version acme/nothing:1 not found"),
        "{}",
        stderr(&refused)
    );
    let listed = server.kiln(&["show", "acme/student:1"]);
    assert_eq!(listed.status.code(), Some(4), "nothing was committed");
}
