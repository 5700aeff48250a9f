//! Garbage collection frees exactly what nothing references, and never what a push in flight needs.

use kiln_core::Sha256Digest;
use kiln_core::api::{CollectionReport, NamespaceUsage};
use kiln_server::db::repos::collection::{self, Cutoffs};
use kiln_server::db::repos::leases;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, expect_json};

const KIB: usize = 1024;

pub fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(97).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// Every blob object in the store: (count, bytes).
pub async fn stored(app: &TestApp) -> (usize, u64) {
    let (mut count, mut total) = (0, 0);
    for slice in 0..=255u8 {
        for object in app.store.list_blobs(&format!("{slice:02x}")).await.unwrap() {
            count += 1;
            total += object.size;
        }
    }
    (count, total)
}

pub async fn collect(app: &TestApp, body: Value) -> CollectionReport {
    expect_json(
        app.post_json("/api/v1/admin/gc", &body).await,
        StatusCode::OK,
    )
    .await
}

pub async fn download(app: &TestApp, path: &str) -> reqwest::Response {
    app.get(&format!("/api/v1/models/{path}")).await
}

async fn collection_frees_exactly_the_unique_bytes(app: TestApp) {
    let (shared, only_one, only_two) = (
        bytes(300 * KIB, 1),
        bytes(200 * KIB, 2),
        bytes(100 * KIB, 3),
    );
    for (reference, files) in [
        (
            "acme/one:1",
            [("shared.bin", &shared), ("own.bin", &only_one)],
        ),
        (
            "acme/two:1",
            [("shared.bin", &shared), ("own.bin", &only_two)],
        ),
    ] {
        let files: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (*p, d.as_slice())).collect();
        expect_json::<Value>(app.push(reference, &files).await, StatusCode::CREATED).await;
        app.settled_version(reference).await;
    }
    let usage: NamespaceUsage = expect_json(
        app.get("/api/v1/namespaces/acme/usage").await,
        StatusCode::OK,
    )
    .await;
    let one = usage
        .models
        .iter()
        .find(|m| m.model.as_str() == "one")
        .unwrap();
    assert_eq!(
        (one.bytes, one.unique_bytes, one.shared_bytes),
        (500 * KIB as i64, 200 * KIB as i64, 300 * KIB as i64)
    );
    assert_eq!(
        (usage.bytes, usage.unique_bytes, usage.versions),
        (600 * KIB as i64, 600 * KIB as i64, 2)
    );

    let (count, before) = stored(&app).await;
    assert_eq!((count, before), (3, 600 * KIB as u64));
    // Nothing is garbage yet.
    assert_eq!(collect(&app, json!({})).await.blobs_deleted, 0);

    let response = app
        .request(Method::DELETE, "/api/v1/models/acme/one")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let dry = collect(&app, json!({ "dry_run": true })).await;
    assert_eq!(
        (dry.dry_run, dry.blobs_deleted, dry.bytes_freed),
        (true, 1, 200 * KIB as u64)
    );
    assert_eq!(stored(&app).await.1, before, "a dry run deletes nothing");

    let report = collect(&app, json!({})).await;
    assert_eq!(
        (report.blobs_deleted, report.bytes_freed),
        (1, one.unique_bytes as u64)
    );
    assert_eq!(stored(&app).await, (2, before - one.unique_bytes as u64));
    // The blob both models held survives deleting one of them.
    for (path, expected) in [("shared.bin", &shared), ("own.bin", &only_two)] {
        let response = download(&app, &format!("acme/two/versions/1/files/{path}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.bytes().await.unwrap().as_ref(),
            expected.as_slice()
        );
    }
    // A second run finds nothing more, and the run is in the audit log.
    assert_eq!(collect(&app, json!({})).await.blobs_deleted, 0);
    let audit: Value = expect_json(
        app.get("/api/v1/audit?action=storage.collect").await,
        StatusCode::OK,
    )
    .await;
    assert!(audit.to_string().contains("bytes_freed"), "{audit}");
}

async fn a_push_racing_a_collection_commits_and_pulls(app: TestApp) {
    // Uploads done, commit not sent yet: a collection with the grace period keeps what was uploaded.
    let data = bytes(64 * KIB, 9);
    let digest = app.upload_blob(&data).await;
    let report = collect(&app, json!({ "grace_seconds": 3600 })).await;
    assert_eq!(report.blobs_deleted, 0);
    // Without a grace period, the blob is garbage when marked; the version commits before the condemning
    // transaction, which asks again and keeps it.
    let cutoffs = {
        let at = chrono::Utc::now().naive_utc() + chrono::Duration::seconds(1);
        Cutoffs {
            recorded_before: at,
            granted_after: at,
            reserved_before: at,
        }
    };
    let marked = app
        .db
        .run(move |conn| {
            let page = collection::page(conn, "", 1000)?;
            Ok(collection::garbage(conn, &page, &cutoffs)?)
        })
        .await
        .unwrap();
    assert!(
        marked.iter().any(|b| b.digest == digest.to_string()),
        "{marked:?}"
    );
    let commit = app
        .post_json(
            "/api/v1/models/acme/racing/versions",
            &json!({ "version": "1", "files": [{ "path": "w.bin", "digest": digest, "size": data.len() }] }),
        )
        .await;
    expect_json::<Value>(commit, StatusCode::CREATED).await;
    let digests: Vec<String> = marked.into_iter().map(|b| b.digest).collect();
    let condemned = app
        .db
        .run(move |conn| {
            use diesel::Connection;
            Ok(conn.transaction(|conn| collection::condemn(conn, &digests, &cutoffs))?)
        })
        .await
        .unwrap();
    assert!(condemned.is_empty(), "{condemned:?}");
    assert_eq!(collect(&app, json!({})).await.blobs_deleted, 0);
    app.settled_version("acme/racing:1").await;
    let response = download(&app, "acme/racing/versions/1/files/w.bin").await;
    assert_eq!(response.bytes().await.unwrap().as_ref(), data.as_slice());
}

async fn one_collection_runs_at_a_time(app: TestApp) {
    app.db
        .run(|conn| {
            let at = chrono::Utc::now().naive_utc();
            Ok(leases::acquire(
                conn,
                "garbage-collection",
                "another-replica",
                at,
                chrono::Duration::minutes(5),
            )?)
        })
        .await
        .unwrap()
        .unwrap();
    let refused = expect_error(
        app.post_json("/api/v1/admin/gc", &json!({})).await,
        StatusCode::CONFLICT,
        "collection_running",
    )
    .await;
    assert!(refused.to_string().contains("lease"), "{refused}");
    // Only administrators collect.
    let anonymous = app
        .anonymous(Method::POST, "/api/v1/admin/gc")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

async fn abandoned_uploads_are_aborted(app: TestApp) {
    let data = bytes(9 * 1024 * KIB, 4);
    let digest = Sha256Digest::of(&data);
    let session: Value = expect_json(
        app.create_session(&digest, data.len()).await,
        StatusCode::CREATED,
    )
    .await;
    let id = session["id"].as_str().unwrap().to_owned();
    expect_json::<Value>(
        app.patch_chunk(&id, 0, data[..8 * 1024 * KIB].to_vec(), data.len())
            .await,
        StatusCode::OK,
    )
    .await;
    // The upload is in progress: its blob-to-be stays referenced, its staged bytes are no orphans.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let report = collect(&app, json!({})).await;
    assert_eq!(report.uploads_aborted, 1, "{report:?}");
    let gone = app.get(&format!("/api/v1/uploads/{id}")).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert!(app.store.list_staging().await.unwrap().is_empty());
}

async fn abandoned_after_a_second(backend: crate::harness::Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| {
        s.upload_session_ttl = std::time::Duration::from_secs(1);
    })
    .await
}

mod abandoned {
    use super::*;
    crate::on_every_backend!(spawn = super::abandoned_after_a_second; abandoned_uploads_are_aborted);
}

/// S3 refuses to copy more than 5 GiB in one request: an upload larger than the copy limit (1 MiB here)
/// is streamed to its content address instead, and reads back whole.
async fn a_blob_over_the_copy_limit_is_promoted_without_one_copy(app: TestApp) {
    let data = bytes(3 * 1024 * KIB + 17, 5);
    expect_json::<Value>(
        app.push("acme/big:1", &[("big.bin", &data)]).await,
        StatusCode::CREATED,
    )
    .await;
    let response = download(&app, "acme/big/versions/1/files/big.bin").await;
    assert_eq!(response.bytes().await.unwrap().as_ref(), data.as_slice());
}

async fn with_a_one_mib_copy_limit(backend: crate::harness::Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| {
        if let kiln_server::config::StorageSettings::S3 { max_copy_bytes, .. } = &mut s.storage {
            *max_copy_bytes = 1024 * 1024;
        }
    })
    .await
}

mod copy_limit {
    use super::*;
    crate::on_every_backend!(
        spawn = super::with_a_one_mib_copy_limit;
        a_blob_over_the_copy_limit_is_promoted_without_one_copy
    );
}

crate::on_every_backend!(
    collection_frees_exactly_the_unique_bytes,
    a_push_racing_a_collection_commits_and_pulls,
    one_collection_runs_at_a_time,
);
