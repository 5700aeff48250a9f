//! Retention rules, quotas and the store check, as an operator meets them.

use kiln_core::Sha256Digest;
use kiln_core::api::{RetentionOutcome, RetentionRules, StoreCheckReport, VersionDetail};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, expect_json};
use crate::storage_collection::{bytes, collect, download, stored};

const KIB: usize = 1024;

async fn put(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.request(Method::PUT, path)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn names(outcome: &RetentionOutcome) -> Vec<String> {
    outcome
        .deleted
        .iter()
        .map(|v| format!("{}:{}", v.model, v.version))
        .collect()
}

async fn retention_rules_keep_what_they_say_with_a_dry_run_first(app: TestApp) {
    for n in 1..=5u8 {
        let data = bytes(4 * KIB, n);
        expect_json::<Value>(
            app.push(&format!("acme/m:{n}"), &[("w.bin", &data)]).await,
            StatusCode::CREATED,
        )
        .await;
        app.settled_version(&format!("acme/m:{n}")).await;
    }
    expect_json::<Value>(
        app.push("acme/other:1", &[("w.bin", &bytes(KIB, 77))])
            .await,
        StatusCode::CREATED,
    )
    .await;
    app.settled_version("acme/other:1").await;
    expect_json::<Value>(
        put(
            &app,
            "/api/v1/models/acme/m/aliases/production",
            &json!({ "version": "1" }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    // The namespace keeps the last 2 of every model; `other` has one version, so it keeps it.
    let rules: RetentionRules = expect_json(
        put(
            &app,
            "/api/v1/namespaces/acme/retention",
            &json!({ "keep_last": 2 }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(rules.rule.unwrap().keep_last, Some(2));
    let dry: RetentionOutcome = expect_json(
        app.post_json(
            "/api/v1/namespaces/acme/retention/apply",
            &json!({ "dry_run": true }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    // Version 1 stays while production names it; 4 and 5 are the last two.
    assert_eq!(names(&dry), ["m:2", "m:3"]);
    assert_eq!(dry.kept, 4);
    let listed: Value = expect_json(
        app.get("/api/v1/models/acme/m/versions").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        listed.as_array().unwrap().len(),
        5,
        "a dry run deletes nothing"
    );

    // A model's own rule replaces the namespace's.
    expect_json::<Value>(
        put(
            &app,
            "/api/v1/models/acme/m/retention",
            &json!({ "keep_last": 4 }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let applied: RetentionOutcome = expect_json(
        app.post_json("/api/v1/namespaces/acme/retention/apply", &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        names(&applied),
        Vec::<String>::new(),
        "m keeps 2..5 and its aliased 1"
    );
    let response = app
        .request(Method::DELETE, "/api/v1/models/acme/m/retention")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let applied: RetentionOutcome = expect_json(
        app.post_json("/api/v1/namespaces/acme/retention/apply", &json!({}))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(&applied), ["m:2", "m:3"]);
    for (version, status) in [(1, 200), (2, 404), (3, 404), (4, 200), (5, 200)] {
        let response = app
            .get(&format!("/api/v1/models/acme/m/versions/{version}"))
            .await;
        assert_eq!(response.status().as_u16(), status, "version {version}");
    }
    let audit: Value = expect_json(
        app.get("/api/v1/audit?action=version.delete").await,
        StatusCode::OK,
    )
    .await;
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    assert!(
        entries
            .iter()
            .all(|e| e["actor"].as_str().unwrap().starts_with("retention rule")),
        "{audit}"
    );
    // Then collection frees their blobs.
    assert_eq!(collect(&app, json!({})).await.blobs_deleted, 2);
    expect_error(
        put(
            &app,
            "/api/v1/namespaces/acme/retention",
            &json!({ "keep_last": 0 }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_retention",
    )
    .await;
}

async fn a_push_over_the_quota_is_refused_before_any_byte(app: TestApp) {
    expect_json::<Value>(
        app.push("acme/m:1", &[("w.bin", &bytes(10 * KIB, 1))])
            .await,
        StatusCode::CREATED,
    )
    .await;
    expect_json::<Value>(
        put(
            &app,
            "/api/v1/namespaces/acme/quota",
            &json!({ "max_bytes": 16 * KIB, "max_versions": 3 }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    let big = bytes(8 * KIB, 2);
    let check = json!({ "files": [{ "digest": Sha256Digest::of(&big), "size": big.len() }] });
    let refused = expect_error(
        app.post_json("/api/v1/models/acme/m/quota-check", &check)
            .await,
        StatusCode::CONFLICT,
        "quota_exceeded",
    )
    .await;
    assert_eq!(refused["error"]["details"]["usage"]["bytes"], 10 * KIB);
    assert_eq!(refused["error"]["details"]["quota"]["max_bytes"], 16 * KIB);
    assert_eq!(refused["error"]["details"]["added_bytes"], 8 * KIB);
    assert!(
        refused.to_string().contains("16384-byte quota"),
        "{refused}"
    );
    // The check uploaded nothing; committing anyway is refused too, and nothing was added.
    let (blobs_before, _) = stored(&app).await;
    let digest = app.upload_blob(&big).await;
    expect_error(
        app.post_json(
            "/api/v1/models/acme/m/versions",
            &json!({ "version": "2", "files": [{ "path": "w.bin", "digest": digest, "size": big.len() }] }),
        )
        .await,
        StatusCode::CONFLICT,
        "quota_exceeded",
    )
    .await;
    assert_eq!(
        app.get("/api/v1/models/acme/m/versions/2").await.status(),
        StatusCode::NOT_FOUND
    );
    // Files the namespace holds already add nothing; an administrator raises the quota.
    let same =
        json!({ "files": [{ "digest": Sha256Digest::of(&bytes(10 * KIB, 1)), "size": 10 * KIB }] });
    let fits: Value = expect_json(
        app.post_json("/api/v1/models/acme/m/quota-check", &same)
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(fits["added_bytes"], 0);
    expect_json::<Value>(
        put(
            &app,
            "/api/v1/namespaces/acme/quota",
            &json!({ "max_bytes": 64 * KIB, "max_versions": 2 }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    expect_json::<Value>(
        app.push("acme/m:2", &[("w.bin", &big)]).await,
        StatusCode::CREATED,
    )
    .await;
    // Two versions is the version quota now.
    expect_error(
        app.push("acme/m:3", &[("w.bin", &bytes(KIB, 3))]).await,
        StatusCode::CONFLICT,
        "quota_exceeded",
    )
    .await;
    let usage: Value = expect_json(
        app.get("/api/v1/namespaces/acme/usage").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (usage["bytes"].as_i64(), usage["versions"].as_i64()),
        (Some(18 * KIB as i64), Some(2))
    );
    assert_eq!(usage["quota"]["max_versions"], 2);
    assert!(stored(&app).await.0 >= blobs_before);
    expect_error(
        put(
            &app,
            "/api/v1/namespaces/acme/quota",
            &json!({ "max_bytes": -1 }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_quota",
    )
    .await;
}

async fn fsck(app: &TestApp, body: Value) -> StoreCheckReport {
    expect_json(
        app.post_json("/api/v1/admin/fsck", &body).await,
        StatusCode::OK,
    )
    .await
}

async fn the_store_check_finds_a_lost_object_and_an_orphan(app: TestApp) {
    let (kept, lost) = (bytes(5 * KIB, 1), bytes(6 * KIB, 2));
    expect_json::<Value>(
        app.push("acme/m:1", &[("kept.bin", &kept), ("lost.bin", &lost)])
            .await,
        StatusCode::CREATED,
    )
    .await;
    app.settled_version("acme/m:1").await;
    assert_eq!(
        app.get("/v2/acme/m/manifests/1").await.status(),
        StatusCode::OK
    );
    let clean = fsck(&app, json!({ "verify": true })).await;
    assert_eq!(
        (clean.problem_count, clean.orphan_count, clean.blobs_checked),
        (0, 0, 2),
        "{clean:?}"
    );

    // An object lost behind kiln's back, and one nothing records.
    let lost_digest = Sha256Digest::of(&lost);
    app.store.delete_blobs(&[lost_digest]).await.unwrap();
    let stray = bytes(3 * KIB, 3);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &stray).unwrap();
    app.store
        .put_file(file.path(), &Sha256Digest::of(&stray))
        .await
        .unwrap();

    let found = fsck(&app, json!({})).await;
    assert_eq!(
        (found.problem_count, found.orphan_count),
        (1, 1),
        "{found:?}"
    );
    assert_eq!(found.problems[0].digest, lost_digest);
    assert_eq!(found.problems[0].problem, "missing");
    assert_eq!(found.problems[0].versions, ["acme/m:1"]);
    assert!(
        found.orphans[0]
            .key
            .ends_with(&Sha256Digest::of(&stray).hex())
    );
    assert!(!found.orphans[0].removed && found.versions_damaged.is_empty());

    let repaired = fsck(&app, json!({ "repair": true })).await;
    assert_eq!(repaired.versions_damaged, ["acme/m:1"]);
    assert!(repaired.orphans[0].removed);
    let detail: VersionDetail = expect_json(
        app.get("/api/v1/models/acme/m/versions/1").await,
        StatusCode::OK,
    )
    .await;
    assert!(
        detail.damage.as_deref().unwrap().contains("missing"),
        "{detail:?}"
    );
    // A damaged version is not served: neither its files nor its manifest.
    expect_error(
        download(&app, "acme/m/versions/1/files/kept.bin").await,
        StatusCode::CONFLICT,
        "version_damaged",
    )
    .await;
    expect_error(
        app.get("/api/v1/models/acme/m/versions/1/manifest").await,
        StatusCode::CONFLICT,
        "version_damaged",
    )
    .await;

    assert_eq!(
        app.get("/v2/acme/m/manifests/1").await.status(),
        StatusCode::NOT_FOUND,
        "nor through the OCI endpoint"
    );
    // Pushing the same files again uploads the lost bytes; the next repair serves the version again.
    let missing: Value = expect_json(
        app.post_json(
            "/api/v1/blobs/missing",
            &json!({ "digests": [lost_digest] }),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(missing["missing"], json!([lost_digest]));
    app.upload_blob(&lost).await;
    let restored = fsck(&app, json!({ "repair": true, "verify": true })).await;
    assert_eq!(restored.versions_restored, ["acme/m:1"], "{restored:?}");
    assert_eq!((restored.problem_count, restored.orphan_count), (0, 0));
    let response = download(&app, "acme/m/versions/1/files/lost.bin").await;
    assert_eq!(response.bytes().await.unwrap().as_ref(), lost.as_slice());
    assert_eq!(
        app.get("/v2/acme/m/manifests/1").await.status(),
        StatusCode::OK
    );
}

crate::on_every_backend!(
    retention_rules_keep_what_they_say_with_a_dry_run_first,
    a_push_over_the_quota_is_refused_before_any_byte,
    the_store_check_finds_a_lost_object_and_an_orphan,
);
