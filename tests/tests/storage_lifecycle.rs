//! The storage lifecycle through the real binaries: the CLI's usage, quota, retention, gc and fsck
//! commands, and a server killed (SIGKILL) in the middle of a collection.

use std::path::Path;
use std::time::{Duration, Instant};

use kiln_tests::{
    Backend, Server, assert_ok, same_bytes, settled, stderr, stdout, tree, write_pseudo_random,
};
use serde_json::json;

/// A folder of `count` files of `size` bytes, distinct for each seed.
fn folder(root: &Path, name: &str, count: usize, size: usize, seed: u64) -> std::path::PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..count {
        write_pseudo_random(
            &dir.join(format!("part-{i:05}.bin")),
            size,
            seed * 100_003 + i as u64 + 1,
        );
    }
    dir
}

/// Blob objects in the embedded default's store folder.
fn local_blobs(server: &Server) -> usize {
    tree(&server.dir.path().join("kiln-data/store/blobs")).len()
}

#[test]
fn the_cli_reports_usage_enforces_quotas_and_collects() {
    let server = Server::start_with(Backend::Embedded, &[("KILN_GC_GRACE_MINUTES", "0")]);
    let work = tempfile::tempdir().unwrap();
    let shared = folder(work.path(), "shared", 2, 40_000, 1);
    assert_ok(&server.kiln(&["push", shared.to_str().unwrap(), "acme/one:1"]));
    assert_ok(&server.kiln(&["push", shared.to_str().unwrap(), "acme/two:1"]));
    let own = folder(work.path(), "own", 1, 30_000, 2);
    assert_ok(&server.kiln(&["push", own.to_str().unwrap(), "acme/one:2"]));
    for reference in ["acme/one:1", "acme/two:1", "acme/one:2"] {
        settled(&server, reference);
    }
    let usage = server.kiln_json(&["usage", "acme"]);
    assert_eq!(
        (usage["bytes"].as_i64(), usage["versions"].as_i64()),
        (Some(110_000), Some(3))
    );
    let one = usage["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["model"] == "one")
        .unwrap();
    assert_eq!(
        (one["unique_bytes"].as_i64(), one["shared_bytes"].as_i64()),
        (Some(30_000), Some(80_000))
    );
    let text = stdout(&server.kiln(&["usage", "acme"]));
    assert!(text.contains("UNIQUE") && text.contains("one"), "{text}");

    // A push past the quota is refused before any byte goes up.
    let quota = server.kiln_json(&["admin", "quota", "acme", "--max-bytes", "120KB"]);
    assert_eq!(quota["max_bytes"], 120_000);
    let blobs_before = local_blobs(&server);
    let big = folder(work.path(), "big", 1, 50_000, 3);
    let refused = server.kiln(&["push", big.to_str().unwrap(), "acme/one:3"]);
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("120000-byte quota") && message.contains("kiln usage"),
        "{message}"
    );
    assert_eq!(local_blobs(&server), blobs_before, "nothing was uploaded");
    assert!(tree(&server.dir.path().join("kiln-data/store/uploads")).is_empty());
    assert_ok(&server.kiln(&["admin", "quota", "acme", "--unlimited"]));
    assert_ok(&server.kiln(&["push", big.to_str().unwrap(), "acme/one:3"]));
    settled(&server, "acme/one:3");

    // Retention: keep the newest version of each model; a dry run first.
    assert_ok(&server.kiln(&["retention", "set", "acme", "--keep-last", "1"]));
    let dry = server.kiln_json(&["retention", "apply", "acme", "--dry-run"]);
    assert_eq!(dry["deleted"].as_array().unwrap().len(), 2, "{dry}");
    let applied = server.kiln_json(&["retention", "apply", "acme"]);
    assert_eq!(applied["deleted"], dry["deleted"]);
    let gc = server.kiln_json(&["admin", "gc", "--dry-run"]);
    assert_eq!(
        (gc["blobs_deleted"].as_i64(), gc["bytes_freed"].as_i64()),
        (Some(1), Some(30_000))
    );
    let gc = server.kiln_json(&["admin", "gc"]);
    assert_eq!(gc["blobs_deleted"], 1);
    assert_eq!(local_blobs(&server), blobs_before - 1 + 1);
    let fsck = server.kiln_json(&["admin", "fsck", "--verify"]);
    assert_eq!(
        (
            fsck["problem_count"].as_i64(),
            fsck["orphan_count"].as_i64()
        ),
        (Some(0), Some(0))
    );
}

/// SIGKILL at several moments of collections over 250 garbage blobs, swept `batch_rows` at a time
/// (KILN_GC_BATCH_ROWS; a thousand by default): after each restart a collection finishes the job, the
/// store check finds nothing recorded that is absent and no orphan, and the version kept all along pulls
/// byte for byte.
fn killing_the_server_mid_collection_loses_nothing(backend: Backend, batch_rows: &str) {
    let mut server = Server::start_with(
        backend,
        &[
            ("KILN_GC_GRACE_MINUTES", "0"),
            ("KILN_GC_LEASE_SECS", "3"),
            ("KILN_GC_BATCH_ROWS", batch_rows),
            // Three pushes of 250 files in quick succession, each after a SIGKILL: for 10 s after a
            // restart the dead process still counts as a replica and halves the default limit.
            ("KILN_RATE_LIMIT_PER_MINUTE", "1000000"),
        ],
    );
    let work = tempfile::tempdir().unwrap();
    let kept = folder(work.path(), "kept", 20, 5_000, 999);
    assert_ok(&server.kiln(&["push", kept.to_str().unwrap(), "acme/kept:1"]));
    settled(&server, "acme/kept:1");
    let mut outcomes = Vec::new();
    for (trial, delay_ms) in [10u64, 90, 250].into_iter().enumerate() {
        // Several batches, so that a kill can land between batches as well as inside one.
        let junk = folder(
            work.path(),
            &format!("junk-{trial}"),
            250,
            64,
            trial as u64 + 1,
        );
        let pushed = server.kiln(&["push", junk.to_str().unwrap(), "acme/junk:1", "--jobs", "8"]);
        assert!(
            pushed.status.success(),
            "push failed: {}\nserver log (last lines):\n{}",
            stderr(&pushed),
            server
                .log()
                .lines()
                .rev()
                .take(40)
                .collect::<Vec<_>>()
                .join("\n")
        );
        settled(&server, "acme/junk:1");
        assert_ok(&server.kiln(&["rm", "acme/junk", "--yes"]));

        let url = server.url.clone();
        let collection = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            // The answer never comes: the server dies first, or answers once done (either is fine).
            let _ = runtime.block_on(async {
                reqwest::Client::new()
                    .post(format!("{url}/api/v1/admin/gc"))
                    .bearer_auth(kiln_tests::ADMIN_TOKEN)
                    .json(&json!({}))
                    .timeout(Duration::from_secs(60))
                    .send()
                    .await
            });
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        server.kill();
        collection.join().unwrap();
        server.restart();

        // The dead run's lease lapses (3 s), then a collection finishes what it left.
        let deadline = Instant::now() + Duration::from_secs(30);
        let report = loop {
            let (status, body) = server.post_json("/api/v1/admin/gc", &json!({}));
            if status == 200 {
                break body;
            }
            assert_eq!(status, 409, "{body}");
            assert!(Instant::now() < deadline, "the lease never lapsed: {body}");
            std::thread::sleep(Duration::from_millis(250));
        };
        let (status, check) = server.post_json("/api/v1/admin/fsck", &json!({ "verify": true }));
        assert_eq!(status, 200, "{check}");
        assert_eq!(
            check["problem_count"], 0,
            "a recorded blob is absent: {check}"
        );
        assert_eq!(
            check["orphan_count"], 0,
            "an object nothing records: {check}"
        );
        assert_eq!(
            check["blobs_checked"], 20,
            "only the kept version's blobs are left: {check}"
        );
        outcomes.push((
            delay_ms,
            report["blobs_deleted"].clone(),
            report["deletions_resumed"].clone(),
        ));
    }
    let pulled = work.path().join("pulled");
    assert_ok(&server.kiln(&["pull", "acme/kept:1", "-o", pulled.to_str().unwrap()]));
    for entry in std::fs::read_dir(&kept).unwrap() {
        let entry = entry.unwrap();
        assert!(same_bytes(&entry.path(), &pulled.join(entry.file_name())));
    }
    // What each restart's collection found left (kill delay, deleted, resumed), for the log.
    eprintln!("kill trials: {outcomes:?}");
}

#[test]
fn killing_the_server_mid_collection_on_the_embedded_default() {
    // SQLite and local files collect 250 blobs in 100-row batches within 90 ms here: smaller batches
    // keep the run going long enough for the later kills to land inside it.
    killing_the_server_mid_collection_loses_nothing(Backend::Embedded, "10");
}

#[test]
fn killing_the_server_mid_collection_on_postgres_and_garage() {
    // 100-row batches: kills at 90 and 250 ms land mid-sweep, leaving condemned rows to resume.
    killing_the_server_mid_collection_loses_nothing(Backend::PostgresS3, "100");
}
