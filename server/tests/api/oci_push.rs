//! Pushing through `/v2/` beyond the conformance suite's small blobs: chunks of any length across many
//! staged parts, resumed after a dropped connection; one writer per upload at a time; a ModelPack
//! artifact (older `vnd.cnai` names too) becoming a version; and the clear refusals.

use base64::Engine;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, CONTENT_RANGE, CONTENT_TYPE, LOCATION};
use reqwest::{Body, Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, expect_json};

const MIB: usize = 1024 * 1024;
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn digest(bytes: &[u8]) -> String {
    kiln_core::Sha256Digest::of(bytes).to_string()
}

fn basic(user: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
    format!("Basic {encoded}")
}

async fn send(
    app: &TestApp,
    auth: &str,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: impl Into<Body>,
) -> Response {
    let mut request = app
        .http
        .request(method, app.url(path))
        .header(AUTHORIZATION, auth);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.body(body).send().await.unwrap()
}

async fn oci_code(response: Response, status: StatusCode) -> String {
    let actual = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(actual, status, "{body}");
    body["errors"][0]["code"].as_str().unwrap().to_owned()
}

async fn start(app: &TestApp, auth: &str, repo: &str) -> String {
    let started = send(
        app,
        auth,
        Method::POST,
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    started.headers()[LOCATION].to_str().unwrap().to_owned()
}

/// Uploads a blob in one request.
async fn upload(app: &TestApp, auth: &str, repo: &str, bytes: &[u8]) {
    let location = start(app, auth, repo).await;
    let done = send(
        app,
        auth,
        Method::PUT,
        &format!("{location}?digest={}", digest(bytes)),
        &[],
        bytes.to_vec(),
    )
    .await;
    assert_eq!(done.status(), StatusCode::CREATED);
}

fn held(response: &Response) -> String {
    response.headers()["range"].to_str().unwrap().to_owned()
}

async fn chunks_of_any_length_resume_after_a_dropped_connection(app: TestApp) {
    let admin = basic("admin", ADMIN_TOKEN);
    // 40 MiB and 3 bytes in 7 MiB chunks: no chunk ends on a 16 MiB part boundary.
    let blob: Vec<u8> = (0..40 * MIB + 3).map(|i| (i * 31 % 251) as u8).collect();
    let location = start(&app, &admin, "acme/big").await;
    let chunk = 7 * MIB;
    let mut offset = 0;
    for _ in 0..3 {
        let end = offset + chunk;
        let sent = send(
            &app,
            &admin,
            Method::PATCH,
            &location,
            &[(CONTENT_RANGE.as_str(), format!("{offset}-{}", end - 1))],
            blob[offset..end].to_vec(),
        )
        .await;
        assert_eq!(sent.status(), StatusCode::ACCEPTED);
        assert_eq!(held(&sent), format!("0-{}", end - 1));
        offset = end;
    }
    // The connection drops halfway through the next chunk: nothing of it counts.
    let half: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::copy_from_slice(&blob[offset..offset + 3 * MIB])),
        Err(std::io::Error::other("the client went away")),
    ];
    let dropped = app
        .http
        .request(Method::PATCH, app.url(&location))
        .header(AUTHORIZATION, &admin)
        .header(CONTENT_RANGE, format!("{offset}-{}", offset + chunk - 1))
        .body(Body::wrap_stream(futures_util::stream::iter(half)))
        .send()
        .await;
    assert!(dropped.is_err() || !dropped.unwrap().status().is_success());
    // A body shorter than its Content-Range is refused, and changes nothing either. (Until the
    // server has seen the dropped request end, that one still holds the upload: 416.)
    let mut short = None;
    for _ in 0..100 {
        let answer = send(
            &app,
            &admin,
            Method::PATCH,
            &location,
            &[(
                CONTENT_RANGE.as_str(),
                format!("{offset}-{}", offset + chunk - 1),
            )],
            blob[offset..offset + MIB].to_vec(),
        )
        .await;
        if answer.status() != StatusCode::RANGE_NOT_SATISFIABLE {
            short = Some(answer);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let short = short.expect("the dropped request lets go of the upload");
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    let state = send(&app, &admin, Method::GET, &location, &[], vec![]).await;
    assert_eq!(state.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        held(&state),
        format!("0-{}", offset - 1),
        "resume where it stood"
    );
    // The rest streams in without Content-Range, and the last bytes come with the PUT.
    let rest = send(
        &app,
        &admin,
        Method::PATCH,
        &location,
        &[],
        blob[offset..blob.len() - 5].to_vec(),
    )
    .await;
    assert_eq!(rest.status(), StatusCode::ACCEPTED);
    let done = send(
        &app,
        &admin,
        Method::PUT,
        &format!("{location}?digest={}", digest(&blob)),
        &[],
        blob[blob.len() - 5..].to_vec(),
    )
    .await;
    assert_eq!(done.status(), StatusCode::CREATED);
    let read = send(
        &app,
        &admin,
        Method::GET,
        &format!("/v2/acme/big/blobs/{}", digest(&blob)),
        &[],
        vec![],
    )
    .await;
    assert_eq!(read.status(), StatusCode::OK);
    assert!(read.bytes().await.unwrap() == blob, "the bytes pushed");
    let gone = send(&app, &admin, Method::GET, &location, &[], vec![]).await;
    assert_eq!(
        oci_code(gone, StatusCode::NOT_FOUND).await,
        "BLOB_UPLOAD_UNKNOWN"
    );
}

async fn one_request_writes_to_an_upload_at_a_time(app: TestApp) {
    let admin = basic("admin", ADMIN_TOKEN);
    let location = start(&app, &admin, "acme/race").await;
    let (release, wait) = tokio::sync::oneshot::channel::<()>();
    let first: Vec<u8> = vec![1; MIB];
    let body =
        futures_util::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(first)) })
            .chain(futures_util::stream::once(async move {
                let _ = wait.await;
                Ok(Bytes::from(vec![2u8; MIB]))
            }));
    let slow = app
        .http
        .request(Method::PATCH, app.url(&location))
        .header(AUTHORIZATION, &admin)
        .body(Body::wrap_stream(body))
        .send();
    let slow = tokio::spawn(slow);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let second = send(&app, &admin, Method::PATCH, &location, &[], vec![3u8; 10]).await;
    assert_eq!(
        oci_code(second, StatusCode::RANGE_NOT_SATISFIABLE).await,
        "BLOB_UPLOAD_INVALID"
    );
    release.send(()).unwrap();
    let slow = slow.await.unwrap().unwrap();
    assert_eq!(slow.status(), StatusCode::ACCEPTED);
    assert_eq!(held(&slow), format!("0-{}", 2 * MIB - 1));
}

async fn a_pushed_modelpack_artifact_is_a_version(app: TestApp) {
    let admin = basic("admin", ADMIN_TOKEN);
    let (weights, card, config) = (
        b"model weights".to_vec(),
        b"# card".to_vec(),
        br#"{"descriptor":{"name":"m"}}"#.to_vec(),
    );
    for blob in [&weights, &card, &config] {
        upload(&app, &admin, "acme/pack", blob).await;
    }
    // The older vnd.cnai names, as modctl and KitOps wrote them.
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": "application/vnd.cnai.model.manifest.v1+json",
        "config": { "mediaType": "application/vnd.cnai.model.config.v1+json",
                    "digest": digest(&config), "size": config.len() },
        "layers": [
            { "mediaType": "application/vnd.cnai.model.weight.v1.raw", "digest": digest(&weights),
              "size": weights.len(), "annotations": { "org.cnai.model.filepath": "weights/model.bin" } },
            { "mediaType": "application/vnd.cnai.model.doc.v1.raw", "digest": digest(&card),
              "size": card.len(), "annotations": { "org.cnai.model.filepath": "README.md" } },
        ],
    }))
    .unwrap();
    let put = send(
        &app,
        &admin,
        Method::PUT,
        "/v2/acme/pack/manifests/1.0_rc1",
        &[(CONTENT_TYPE.as_str(), MANIFEST.to_owned())],
        manifest.clone(),
    )
    .await;
    assert_eq!(put.status(), StatusCode::CREATED);
    // The tag `1.0_rc1` is version `1.0+rc1`, which goes through the pipeline like any push.
    let version = app.settled_version("acme/pack:1.0+rc1").await;
    assert_eq!(version.status, kiln_core::api::VersionStatus::Ready);
    let files: Vec<(String, String)> = version
        .files
        .iter()
        .map(|f| (f.path.to_string(), f.digest.to_string()))
        .collect();
    assert_eq!(
        files,
        [
            ("README.md".to_owned(), digest(&card)),
            ("weights/model.bin".to_owned(), digest(&weights)),
        ]
    );
    let file = app
        .get("/api/v1/models/acme/pack/versions/1.0+rc1/files/weights/model.bin")
        .await;
    assert_eq!(file.bytes().await.unwrap(), weights);
    let by_tag = send(
        &app,
        &admin,
        Method::GET,
        "/v2/acme/pack/manifests/1.0_rc1",
        &[],
        vec![],
    )
    .await;
    assert_eq!(by_tag.bytes().await.unwrap(), manifest, "the bytes pushed");
    let tags: Value = send(
        &app,
        &admin,
        Method::GET,
        "/v2/acme/pack/tags/list",
        &[],
        vec![],
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(
        tags["tags"].as_array().unwrap().contains(&json!("1.0_rc1")),
        "{tags}"
    );
    // Pushing it again is the same version; other bytes under its tag are refused.
    let again = send(
        &app,
        &admin,
        Method::PUT,
        "/v2/acme/pack/manifests/1.0_rc1",
        &[(CONTENT_TYPE.as_str(), MANIFEST.to_owned())],
        manifest,
    )
    .await;
    assert_eq!(again.status(), StatusCode::CREATED);
}

async fn bad_pushes_are_refused_clearly_and_leave_nothing(app: TestApp) {
    let admin = basic("admin", ADMIN_TOKEN);
    expect_json::<Value>(
        app.push("acme/m:1", &[("w.bin", b"weights")]).await,
        StatusCode::CREATED,
    )
    .await;
    expect_json::<Value>(
        app.push("private/m:1", &[("s.bin", b"secret")]).await,
        StatusCode::CREATED,
    )
    .await;
    app.settled_version("acme/m:1").await;
    let alias = app
        .request(Method::PUT, "/api/v1/models/acme/m/aliases/production")
        .json(&json!({ "version": "1" }));
    expect_json::<Value>(alias.send().await.unwrap(), StatusCode::OK).await;
    let user = json!({ "name": "bob", "password": "bob's long password" });
    expect_json::<Value>(
        app.post_json("/api/v1/users", &user).await,
        StatusCode::CREATED,
    )
    .await;
    let member = app
        .request(Method::PUT, "/api/v1/namespaces/acme/members/bob")
        .json(&json!({ "role": "writer" }));
    expect_json::<Value>(member.send().await.unwrap(), StatusCode::OK).await;
    let bob = basic("bob", "bob's long password");
    let put = |auth: String, path: &'static str, body: Vec<u8>| {
        let app = &app;
        async move {
            send(
                app,
                &auth,
                Method::PUT,
                path,
                &[(CONTENT_TYPE.as_str(), MANIFEST.to_owned())],
                body,
            )
            .await
        }
    };
    let over = |blob: &[u8], title: &str| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": MANIFEST,
            "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(blob), "size": blob.len() },
            "layers": [{ "mediaType": "application/octet-stream", "digest": digest(blob), "size": blob.len(),
                         "annotations": { "org.opencontainers.image.title": title } }],
        }))
        .unwrap()
    };

    let garbage = put(
        admin.clone(),
        "/v2/acme/new/manifests/1",
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(
        oci_code(garbage, StatusCode::BAD_REQUEST).await,
        "MANIFEST_INVALID"
    );
    let pinned = put(
        admin.clone(),
        "/v2/acme/new/manifests/sha256:0000000000000000000000000000000000000000000000000000000000000000",
        over(b"weights", "w.bin"),
    )
    .await;
    assert_eq!(
        oci_code(pinned, StatusCode::BAD_REQUEST).await,
        "DIGEST_INVALID"
    );
    let unknown = put(
        admin.clone(),
        "/v2/acme/new/manifests/1",
        over(b"never pushed", "x"),
    )
    .await;
    assert_eq!(
        oci_code(unknown, StatusCode::BAD_REQUEST).await,
        "MANIFEST_BLOB_UNKNOWN"
    );
    let bad_tag = put(
        admin.clone(),
        "/v2/acme/m/manifests/_x",
        over(b"weights", "w.bin"),
    )
    .await;
    assert_eq!(
        oci_code(bad_tag, StatusCode::BAD_REQUEST).await,
        "TAG_INVALID"
    );
    let bad_path = put(
        admin.clone(),
        "/v2/acme/m/manifests/2",
        over(b"weights", "../etc/passwd"),
    )
    .await;
    assert_eq!(
        oci_code(bad_path, StatusCode::BAD_REQUEST).await,
        "MANIFEST_INVALID"
    );
    let huge = put(admin.clone(), "/v2/acme/m/manifests/2", vec![b' '; 5 * MIB]).await;
    assert_eq!(
        oci_code(huge, StatusCode::PAYLOAD_TOO_LARGE).await,
        "SIZE_INVALID"
    );
    let aliased = put(
        admin.clone(),
        "/v2/acme/m/manifests/production",
        over(b"weights", "w.bin"),
    )
    .await;
    assert_eq!(oci_code(aliased, StatusCode::CONFLICT).await, "DENIED");
    // Two layers at one path, or a file that is also a folder: refused before anything is written.
    let clash = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(b"weights"), "size": 7 },
        "layers": [
            { "mediaType": "application/octet-stream", "digest": digest(b"weights"), "size": 7,
              "annotations": { "org.opencontainers.image.title": "a" } },
            { "mediaType": "application/octet-stream", "digest": digest(b"weights"), "size": 7,
              "annotations": { "org.opencontainers.image.title": "a/b" } },
        ],
    }))
    .unwrap();
    upload(&app, &admin, "acme/new", b"weights").await;
    let clashing = put(admin.clone(), "/v2/acme/new/manifests/1", clash).await;
    assert_eq!(
        oci_code(clashing, StatusCode::BAD_REQUEST).await,
        "MANIFEST_INVALID"
    );
    // None of that made a model, a version, or a tag.
    assert_eq!(
        app.get("/api/v1/models/acme/new").await.status(),
        StatusCode::NOT_FOUND
    );
    let versions: Value = expect_json(
        app.get("/api/v1/models/acme/m/versions").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(versions.as_array().unwrap().len(), 1, "{versions}");

    // Bob writes in acme but cannot read `private`: its blob is neither his to name nor to mount.
    let borrowed = put(
        bob.clone(),
        "/v2/acme/m/manifests/3",
        over(b"secret", "s.bin"),
    )
    .await;
    assert_eq!(
        oci_code(borrowed, StatusCode::BAD_REQUEST).await,
        "MANIFEST_BLOB_UNKNOWN"
    );
    let mount = send(
        &app,
        &bob,
        Method::POST,
        &format!(
            "/v2/acme/m/blobs/uploads/?mount={}&from=private/m",
            digest(b"secret")
        ),
        &[],
        vec![],
    )
    .await;
    assert_eq!(
        mount.status(),
        StatusCode::ACCEPTED,
        "an upload instead of the mount"
    );
    let mounted = send(
        &app,
        &bob,
        Method::POST,
        &format!(
            "/v2/acme/other/blobs/uploads/?mount={}&from=acme/m",
            digest(b"weights")
        ),
        &[],
        vec![],
    )
    .await;
    assert_eq!(mounted.status(), StatusCode::CREATED);
    let refused = send(
        &app,
        &bob,
        Method::POST,
        "/v2/private/m/blobs/uploads/",
        &[],
        vec![],
    )
    .await;
    assert_eq!(oci_code(refused, StatusCode::FORBIDDEN).await, "DENIED");

    // A wrong digest at the end discards the upload.
    let location = start(&app, &bob, "acme/m").await;
    let wrong = send(
        &app,
        &bob,
        Method::PUT,
        &format!("{location}?digest={}", digest(b"something else")),
        &[],
        b"these bytes".to_vec(),
    )
    .await;
    assert_eq!(
        oci_code(wrong, StatusCode::BAD_REQUEST).await,
        "DIGEST_INVALID"
    );
    let gone = send(&app, &bob, Method::GET, &location, &[], vec![]).await;
    assert_eq!(
        oci_code(gone, StatusCode::NOT_FOUND).await,
        "BLOB_UPLOAD_UNKNOWN"
    );
    // Someone else's upload is as absent as one that never was.
    let mine = start(&app, &admin, "acme/m").await;
    let theirs = send(&app, &bob, Method::PATCH, &mine, &[], b"x".to_vec()).await;
    assert_eq!(
        oci_code(theirs, StatusCode::NOT_FOUND).await,
        "BLOB_UPLOAD_UNKNOWN"
    );
}

/// A blob larger than the store copies in one request (S3: 5 GiB; here lowered to 1 MiB) is streamed
/// into its content address instead of copied, and reads back whole.
async fn a_promotion_past_the_copy_limit_streams(app: TestApp) {
    let app = app
        .restart_with(|settings| {
            if let kiln_server::config::StorageSettings::S3 { max_copy_bytes, .. } =
                &mut settings.storage
            {
                *max_copy_bytes = MIB as u64;
            }
        })
        .await;
    let admin = basic("admin", ADMIN_TOKEN);
    let blob: Vec<u8> = (0..3 * MIB + 5).map(|i| (i % 241) as u8).collect();
    upload(&app, &admin, "acme/copied", &blob).await;
    let read = send(
        &app,
        &admin,
        Method::GET,
        &format!("/v2/acme/copied/blobs/{}", digest(&blob)),
        &[],
        vec![],
    )
    .await;
    assert!(read.bytes().await.unwrap() == blob);
    // A kiln push's upload session is promoted the same way.
    expect_json::<Value>(
        app.push("acme/copied:1", &[("big.dat", &blob[..2 * MIB + 1])])
            .await,
        StatusCode::CREATED,
    )
    .await;
    let file = app
        .get("/api/v1/models/acme/copied/versions/1/files/big.dat")
        .await;
    assert!(file.bytes().await.unwrap() == blob[..2 * MIB + 1]);
}

crate::on_every_backend!(
    a_promotion_past_the_copy_limit_streams,
    chunks_of_any_length_resume_after_a_dropped_connection,
    one_request_writes_to_an_upload_at_a_time,
    a_pushed_modelpack_artifact_is_a_version,
    bad_pushes_are_refused_clearly_and_leave_nothing,
);
