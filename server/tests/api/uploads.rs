//! Blob uploads: chunked sessions, resuming, and every way a client can send the wrong bytes.

use kiln_core::Sha256Digest;
use kiln_core::api::{MissingBlobsResponse, UploadSession};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, expect_json};

const MIB: usize = 1024 * 1024;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn commit(app: &TestApp, id: &str) -> reqwest::Response {
    app.request(Method::POST, &format!("/api/v1/uploads/{id}/commit"))
        .send()
        .await
        .unwrap()
}

/// A new session holding all of `data` in one chunk, not committed.
async fn uploaded_whole(app: &TestApp, data: &[u8]) -> UploadSession {
    uploaded_whole_as(app, &Sha256Digest::of(data), data).await
}

/// The same, declared as `digest` (which `data` may not have).
async fn uploaded_whole_as(app: &TestApp, digest: &Sha256Digest, data: &[u8]) -> UploadSession {
    let session: UploadSession = expect_json(
        app.create_session(digest, data.len()).await,
        StatusCode::CREATED,
    )
    .await;
    expect_json::<UploadSession>(
        app.patch_chunk(&session.id, 0, data.to_vec(), data.len())
            .await,
        StatusCode::OK,
    )
    .await
}

async fn chunked_upload_stores_the_blob_once(app: TestApp) {
    let data = pattern(20 * MIB, 1);
    let digest = Sha256Digest::of(&data);
    let missing: MissingBlobsResponse = expect_json(
        app.post_json("/api/v1/blobs/missing", &json!({ "digests": [digest] }))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(missing.missing, vec![digest]);

    let session: UploadSession = expect_json(
        app.create_session(&digest, data.len()).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!((session.offset, session.part_size), (0, 8 * MIB as i64));
    for (start, end) in [(0, 8 * MIB), (8 * MIB, 16 * MIB), (16 * MIB, 20 * MIB)] {
        let after: UploadSession = expect_json(
            app.patch_chunk(&session.id, start, data[start..end].to_vec(), data.len())
                .await,
            StatusCode::OK,
        )
        .await;
        assert_eq!(after.offset, end as i64);
    }
    let blob: Value = expect_json(commit(&app, &session.id).await, StatusCode::OK).await;
    assert_eq!(blob, json!({ "digest": digest, "size": data.len() }));

    let missing: MissingBlobsResponse = expect_json(
        app.post_json("/api/v1/blobs/missing", &json!({ "digests": [digest] }))
            .await,
        StatusCode::OK,
    )
    .await;
    assert!(missing.missing.is_empty());
    expect_error(
        app.create_session(&digest, data.len()).await,
        StatusCode::CONFLICT,
        "blob_exists",
    )
    .await;
    expect_error(
        app.get(&format!("/api/v1/uploads/{}", session.id)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn an_upload_resumes_after_a_server_restart(app: TestApp) {
    let data = pattern(17 * MIB, 2);
    let digest = Sha256Digest::of(&data);
    let session: UploadSession = expect_json(
        app.create_session(&digest, data.len()).await,
        StatusCode::CREATED,
    )
    .await;
    let first = app
        .patch_chunk(&session.id, 0, data[..8 * MIB].to_vec(), data.len())
        .await;
    expect_json::<UploadSession>(first, StatusCode::OK).await;

    let app = app.restart().await;
    let resumed: UploadSession = expect_json(
        app.create_session(&digest, data.len()).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        (resumed.id.as_str(), resumed.offset, resumed.resumed),
        (session.id.as_str(), 8 * MIB as i64, true)
    );
    let rest = app
        .patch_chunk(&session.id, 8 * MIB, data[8 * MIB..].to_vec(), data.len())
        .await;
    expect_json::<UploadSession>(rest, StatusCode::OK).await;
    expect_json::<Value>(commit(&app, &session.id).await, StatusCode::OK).await;

    let response = app
        .post_json(
            "/api/v1/models/acme/resumed/versions",
            &json!({ "version": "1", "files": [{ "path": "w.bin", "digest": digest, "size": data.len() }] }),
        )
        .await;
    expect_json::<Value>(response, StatusCode::CREATED).await;
    let body = app
        .get("/api/v1/models/acme/resumed/versions/1/files/w.bin")
        .await
        .bytes()
        .await
        .unwrap();
    assert!(
        body == data,
        "downloaded bytes differ from the uploaded ones"
    );
}

async fn a_wrong_digest_is_refused_and_the_upload_discarded(app: TestApp) {
    let data = b"the real bytes".to_vec();
    let claimed = Sha256Digest::of(b"other bytes");
    let session = uploaded_whole_as(&app, &claimed, &data).await;
    let error = expect_error(
        commit(&app, &session.id).await,
        StatusCode::BAD_REQUEST,
        "digest_mismatch",
    )
    .await;
    assert_eq!(
        error["error"]["details"]["actual"],
        Sha256Digest::of(&data).to_string()
    );
    expect_error(
        app.get(&format!("/api/v1/uploads/{}", session.id)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let missing: MissingBlobsResponse = expect_json(
        app.post_json("/api/v1/blobs/missing", &json!({ "digests": [claimed] }))
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        missing.missing,
        vec![claimed],
        "a refused upload must not be recorded"
    );
}

async fn malformed_chunks_are_refused_without_moving_the_offset(app: TestApp) {
    let data = pattern(9 * MIB, 3);
    let digest = Sha256Digest::of(&data);
    let session: UploadSession = expect_json(
        app.create_session(&digest, data.len()).await,
        StatusCode::CREATED,
    )
    .await;
    let id = session.id.clone();
    let path = format!("/api/v1/uploads/{id}");
    let total = data.len();

    // A chunk that is not the last must be a whole number of parts.
    let unaligned = app
        .request(Method::PATCH, &path)
        .header("content-range", format!("bytes 0-9/{total}"))
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    expect_error(unaligned, StatusCode::BAD_REQUEST, "chunk_not_aligned").await;
    // The range declares the whole blob, the body carries 1 MiB: the body ended early.
    let truncated = app
        .request(Method::PATCH, &path)
        .header("content-range", format!("bytes 0-{}/{total}", total - 1))
        .body(data[..MIB].to_vec())
        .send()
        .await
        .unwrap();
    expect_error(truncated, StatusCode::BAD_REQUEST, "truncated_body").await;
    let overlong = app
        .request(Method::PATCH, &path)
        .header("content-range", format!("bytes 0-{}/{total}", 8 * MIB - 1))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    expect_error(overlong, StatusCode::BAD_REQUEST, "body_too_long").await;
    let no_range = app
        .request(Method::PATCH, &path)
        .body(vec![1u8])
        .send()
        .await
        .unwrap();
    expect_error(no_range, StatusCode::BAD_REQUEST, "missing_content_range").await;
    let bad_range = app
        .request(Method::PATCH, &path)
        .header("content-range", "0-1")
        .body(vec![1u8, 2])
        .send()
        .await
        .unwrap();
    expect_error(bad_range, StatusCode::BAD_REQUEST, "invalid_content_range").await;
    let wrong_total = app
        .patch_chunk(&id, 0, data[..8 * MIB].to_vec(), total + 1)
        .await;
    expect_error(wrong_total, StatusCode::BAD_REQUEST, "size_mismatch").await;
    let gap = app
        .patch_chunk(&id, 8 * MIB, data[8 * MIB..].to_vec(), total)
        .await;
    let error = expect_error(gap, StatusCode::CONFLICT, "offset_mismatch").await;
    assert_eq!(error["error"]["details"]["offset"], 0);
    expect_error(
        commit(&app, &id).await,
        StatusCode::CONFLICT,
        "upload_incomplete",
    )
    .await;

    let state: UploadSession = expect_json(app.get(&path).await, StatusCode::OK).await;
    assert_eq!(
        state.offset, 0,
        "refused chunks must not advance the session"
    );
    // The session is still usable after all that.
    expect_json::<UploadSession>(
        app.patch_chunk(&id, 0, data[..8 * MIB].to_vec(), total)
            .await,
        StatusCode::OK,
    )
    .await;
    expect_json::<UploadSession>(
        app.patch_chunk(&id, 8 * MIB, data[8 * MIB..].to_vec(), total)
            .await,
        StatusCode::OK,
    )
    .await;
    expect_json::<Value>(commit(&app, &id).await, StatusCode::OK).await;
}

async fn invalid_session_requests_are_refused(app: TestApp) {
    let bad_digest = app
        .post_json(
            "/api/v1/uploads",
            &json!({ "digest": "md5:abc", "size": 1 }),
        )
        .await;
    let body = expect_error(bad_digest, StatusCode::BAD_REQUEST, "invalid_digest").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid digest"),
        "{body}"
    );
    let negative = app.create_session(&Sha256Digest::of(b"x"), 0).await;
    expect_json::<UploadSession>(negative, StatusCode::CREATED).await;
    let response = app
        .post_json(
            "/api/v1/uploads",
            &json!({ "digest": Sha256Digest::of(b"y"), "size": -5 }),
        )
        .await;
    expect_error(response, StatusCode::BAD_REQUEST, "invalid_size").await;
    let unknown = app
        .post_json(
            "/api/v1/uploads",
            &json!({ "digest": Sha256Digest::of(b"y"), "size": 1, "extra": 1 }),
        )
        .await;
    expect_error(unknown, StatusCode::BAD_REQUEST, "invalid_json").await;
    expect_error(
        app.get("/api/v1/uploads/nope").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let aborted = app
        .request(Method::DELETE, "/api/v1/uploads/nope")
        .send()
        .await
        .unwrap();
    expect_error(aborted, StatusCode::NOT_FOUND, "not_found").await;
}

async fn an_empty_file_uploads_and_downloads(app: TestApp) {
    let response = app.push("acme/empty:1", &[("empty.txt", b"")]).await;
    expect_json::<Value>(response, StatusCode::CREATED).await;
    let response = app
        .get("/api/v1/models/acme/empty/versions/1/files/empty.txt")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.unwrap().is_empty());
}

async fn an_aborted_session_is_gone(app: TestApp) {
    let data = b"abandon me".to_vec();
    let session = uploaded_whole(&app, &data).await;
    let response = app
        .request(Method::DELETE, &format!("/api/v1/uploads/{}", session.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_error(
        commit(&app, &session.id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    if let Some(root) = app.store.local_root() {
        assert!(
            !root.join("uploads").join(&session.id).exists(),
            "staged bytes must be removed"
        );
    }
}

/// Two requests writing the same chunk at once: the second is refused (`upload_busy`, retry in 1 s) while
/// the first writes, so the parts staged are always the bytes hashed, and the blob stored is the one
/// declared.
async fn one_request_writes_to_a_session_at_a_time(app: TestApp) {
    use futures_util::StreamExt;
    let data = pattern(16 * MIB, 9);
    let digest = Sha256Digest::of(&data);
    let session: UploadSession = expect_json(
        app.create_session(&digest, data.len()).await,
        StatusCode::CREATED,
    )
    .await;
    let path = format!("/api/v1/uploads/{}", session.id);
    let part = session.part_size as usize;
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let (head, rest) = (data[..MIB].to_vec(), data[MIB..part].to_vec());
    let body =
        futures_util::stream::once(
            async move { Ok::<_, std::io::Error>(bytes::Bytes::from(head)) },
        )
        .chain(futures_util::stream::once(async move {
            let _ = wait.await;
            Ok(bytes::Bytes::from(rest))
        }));
    let slow = app
        .request(Method::PATCH, &path)
        .header(
            "content-range",
            format!("bytes 0-{}/{}", part - 1, data.len()),
        )
        .body(reqwest::Body::wrap_stream(body))
        .send();
    let slow = tokio::spawn(slow);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Other bytes for the same chunk, while the first request writes: refused, nothing staged.
    let rival = app
        .request(Method::PATCH, &path)
        .header(
            "content-range",
            format!("bytes 0-{}/{}", part - 1, data.len()),
        )
        .body(vec![0xEE; part])
        .send()
        .await
        .unwrap();
    // The session stands where the rival starts, so it is told to wait, not to move on.
    let retry_after = rival.headers().get("retry-after").cloned();
    let busy = expect_error(rival, StatusCode::CONFLICT, "upload_busy").await;
    assert_eq!(busy["error"]["details"]["offset"], 0);
    assert_eq!(busy["error"]["details"]["retry_after"], 1);
    assert_eq!(retry_after.unwrap(), "1");
    release.send(()).unwrap();
    let slow = slow.await.unwrap().unwrap();
    let advanced: UploadSession = expect_json(slow, StatusCode::OK).await;
    assert_eq!(advanced.offset, part as i64);
    expect_json::<UploadSession>(
        app.patch_chunk(&session.id, part, data[part..].to_vec(), data.len())
            .await,
        StatusCode::OK,
    )
    .await;
    expect_json::<Value>(
        app.post_json(&format!("{path}/commit"), &json!({})).await,
        StatusCode::OK,
    )
    .await;
}

/// Two pushes of the same file by one account share its session, so its commit can come twice at
/// once: each commit answers with the blob (or, arriving after the session ended, 404: the pushing
/// client then finds the blob there), none fails, and the blob is stored once.
async fn simultaneous_commits_of_one_session_all_succeed(app: TestApp) {
    let data = pattern(3 * MIB, 9);
    let digest = Sha256Digest::of(&data);
    let session = uploaded_whole(&app, &data).await;
    let commits = (0..6).map(|_| commit(&app, &session.id));
    let mut committed = 0;
    for answer in futures_util::future::join_all(commits).await {
        if answer.status() == StatusCode::NOT_FOUND {
            continue;
        }
        let blob: Value = expect_json(answer, StatusCode::OK).await;
        assert_eq!(blob, json!({ "digest": digest, "size": data.len() }));
        committed += 1;
    }
    assert!(committed >= 1);
    // Once the session has ended, its id is gone; the blob is there for a new push to skip.
    expect_error(
        commit(&app, &session.id).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.create_session(&digest, data.len()).await,
        StatusCode::CONFLICT,
        "blob_exists",
    )
    .await;
}

crate::on_every_backend!(
    one_request_writes_to_a_session_at_a_time,
    simultaneous_commits_of_one_session_all_succeed,
    chunked_upload_stores_the_blob_once,
    an_upload_resumes_after_a_server_restart,
    a_wrong_digest_is_refused_and_the_upload_discarded,
    malformed_chunks_are_refused_without_moving_the_offset,
    invalid_session_requests_are_refused,
    an_empty_file_uploads_and_downloads,
    an_aborted_session_is_gone,
);
