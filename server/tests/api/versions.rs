//! Committing, listing, reading and deleting versions; the registry's semantics and its bad inputs.

use kiln_core::Sha256Digest;
use kiln_core::api::{ModelDetail, ModelSummary, NamespaceSummary, VersionDetail};
use kiln_server::db::repos::audit;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, expect_json};

async fn a_pushed_version_is_listed_everywhere(app: TestApp) {
    let files: &[(&str, &[u8])] = &[
        ("model.onnx", b"onnx bytes"),
        ("tokenizer/vocab.txt", b"a\nb\n"),
        ("config.json", b"{}"),
    ];
    let created: VersionDetail = expect_json(
        app.push("acme/sentiment:1.0.0", files).await,
        StatusCode::CREATED,
    )
    .await;
    insta::assert_json_snapshot!("version_detail", created, {
        ".created_at" => "[created_at]",
        ".pipeline[].created_at" => "[created_at]",
    });

    let fetched: VersionDetail = expect_json(
        app.get("/api/v1/models/acme/sentiment/versions/1.0.0")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(fetched.files, created.files);
    assert_eq!(
        fetched
            .files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>(),
        ["config.json", "model.onnx", "tokenizer/vocab.txt"]
    );

    expect_json::<Value>(
        app.push("acme/sentiment:1.1.0", &[("model.onnx", b"v2")])
            .await,
        StatusCode::CREATED,
    )
    .await;
    expect_json::<Value>(
        app.push("beta/other:0.1", &[("m.bin", b"x")]).await,
        StatusCode::CREATED,
    )
    .await;

    let namespaces: Vec<NamespaceSummary> =
        expect_json(app.get("/api/v1/namespaces").await, StatusCode::OK).await;
    let counts: Vec<(String, i64)> = namespaces
        .iter()
        .map(|n| (n.name.to_string(), n.model_count))
        .collect();
    assert_eq!(
        counts,
        [
            ("acme".to_owned(), 1),
            ("admin".to_owned(), 0),
            ("beta".to_owned(), 1)
        ]
    );

    let models: Vec<ModelSummary> =
        expect_json(app.get("/api/v1/models").await, StatusCode::OK).await;
    let names: Vec<String> = models
        .iter()
        .map(|m| format!("{}/{}", m.namespace, m.name))
        .collect();
    assert_eq!(names, ["acme/sentiment", "beta/other"]);
    assert_eq!(models[0].version_count, 2);
    assert_eq!(models[0].latest_version.as_ref().unwrap().as_str(), "1.1.0");

    let page: Vec<ModelSummary> = expect_json(
        app.get("/api/v1/models?limit=1&offset=1").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].name.as_str(), "other");
    expect_error(
        app.get("/api/v1/models?limit=0").await,
        StatusCode::BAD_REQUEST,
        "invalid_page",
    )
    .await;

    let in_acme: Vec<ModelSummary> = expect_json(
        app.get("/api/v1/namespaces/acme/models").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(in_acme.len(), 1);
    expect_error(
        app.get("/api/v1/namespaces/nobody/models").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let model: ModelDetail = expect_json(
        app.get("/api/v1/models/acme/sentiment").await,
        StatusCode::OK,
    )
    .await;
    let versions: Vec<(&str, i64, i64)> = model
        .versions
        .iter()
        .map(|v| (v.version.as_str(), v.file_count, v.total_size))
        .collect();
    assert_eq!(versions, [("1.1.0", 1, 2), ("1.0.0", 3, 16)]);
}

async fn versions_are_immutable(app: TestApp) {
    let files: &[(&str, &[u8])] = &[("a.bin", b"first")];
    expect_json::<Value>(app.push("acme/m:1", files).await, StatusCode::CREATED).await;
    // The same content again is a no-op.
    let again: VersionDetail = expect_json(app.push("acme/m:1", files).await, StatusCode::OK).await;
    assert_eq!(again.files.len(), 1);
    // Different content for the same version is refused, and the stored version is untouched.
    let changed = app.push("acme/m:1", &[("a.bin", b"second")]).await;
    expect_error(changed, StatusCode::CONFLICT, "version_conflict").await;
    let extra = app
        .push("acme/m:1", &[("a.bin", b"first"), ("b.bin", b"more")])
        .await;
    expect_error(extra, StatusCode::CONFLICT, "version_conflict").await;
    let body = app
        .get("/api/v1/models/acme/m/versions/1/files/a.bin")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(&body[..], b"first");
}

async fn deleting_a_version_is_explicit_and_audited(app: TestApp) {
    expect_json::<Value>(
        app.push("acme/m:1", &[("a.bin", b"first")]).await,
        StatusCode::CREATED,
    )
    .await;
    let response = app
        .request(Method::DELETE, "/api/v1/models/acme/m/versions/1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    expect_error(
        app.get("/api/v1/models/acme/m/versions/1").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let response = app
        .request(Method::DELETE, "/api/v1/models/acme/m/versions/1")
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
    // After deletion the version name may be pushed again.
    expect_json::<Value>(
        app.push("acme/m:1", &[("a.bin", b"replacement")]).await,
        StatusCode::CREATED,
    )
    .await;

    let entries = app
        .db
        .run(|conn| {
            Ok(audit::list(
                conn,
                &audit::AuditFilter {
                    target: Some("acme/m:1".into()),
                    ..Default::default()
                },
                None,
                10,
            )?)
        })
        .await
        .unwrap();
    let actions: Vec<&str> = entries.iter().rev().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        ["version.create", "version.delete", "version.create"]
    );
    assert!(
        entries
            .iter()
            .all(|e| e.actor == "admin" && e.remote_addr.as_deref() == Some("127.0.0.1"))
    );
}

/// A model goes with every version, variant and manifest of it, but not while an alias may be followed by a
/// deployment, unless forced; its blobs stay for the models that share them; the audit log says what went.
async fn deleting_a_model_takes_its_versions_and_is_refused_while_aliased(app: TestApp) {
    for reference in ["acme/gone:1", "acme/gone:2", "acme/kept:1"] {
        expect_json::<Value>(
            app.push(reference, &[("shared.bin", b"shared bytes")])
                .await,
            StatusCode::CREATED,
        )
        .await;
        app.settled_version(reference).await;
    }
    let alias = app
        .request(Method::PUT, "/api/v1/models/acme/gone/aliases/production")
        .json(&json!({ "version": "1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(alias.status(), StatusCode::OK);
    let refused = app
        .request(Method::DELETE, "/api/v1/models/acme/gone")
        .send()
        .await
        .unwrap();
    let body = expect_error(refused, StatusCode::CONFLICT, "model_aliased").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("acme/gone@production points at 1"),
        "{body}"
    );
    expect_json::<Value>(app.get("/api/v1/models/acme/gone").await, StatusCode::OK).await;

    let forced = app
        .request(Method::DELETE, "/api/v1/models/acme/gone?force=true")
        .send()
        .await
        .unwrap();
    assert_eq!(forced.status(), StatusCode::NO_CONTENT);
    for gone in [
        "/api/v1/models/acme/gone",
        "/api/v1/models/acme/gone/versions/1",
        "/api/v1/models/acme/gone/aliases/production/manifest",
    ] {
        expect_error(app.get(gone).await, StatusCode::NOT_FOUND, "not_found").await;
    }
    let kept = app
        .get("/api/v1/models/acme/kept/versions/1/files/shared.bin")
        .await;
    assert_eq!(kept.status(), StatusCode::OK);
    assert_eq!(&kept.bytes().await.unwrap()[..], b"shared bytes");

    let entries = app
        .db
        .run(|conn| {
            Ok(audit::list(
                conn,
                &audit::AuditFilter {
                    target: Some("acme/gone".into()),
                    ..Default::default()
                },
                None,
                10,
            )?)
        })
        .await
        .unwrap();
    let deleted = entries
        .iter()
        .find(|e| e.action == "model.delete")
        .expect("the deletion is audited");
    let details: Value = serde_json::from_str(&deleted.detail).unwrap();
    assert_eq!(details["versions"], json!(["2", "1"]), "{details}");
    assert_eq!(details["aliases"][0]["alias"], "production", "{details}");
    // The name is free again.
    expect_json::<Value>(
        app.push("acme/gone:1", &[("new.bin", b"new")]).await,
        StatusCode::CREATED,
    )
    .await;
}

async fn model_metadata_can_be_edited(app: TestApp) {
    expect_json::<Value>(
        app.push("acme/m:1", &[("a.bin", b"x")]).await,
        StatusCode::CREATED,
    )
    .await;
    let update = json!({ "description": "Sentiment classifier", "tags": ["nlp", "english"] });
    let response = app
        .request(Method::PATCH, "/api/v1/models/acme/m")
        .json(&update)
        .send()
        .await
        .unwrap();
    let model: ModelDetail = expect_json(response, StatusCode::OK).await;
    assert_eq!(
        (model.description.as_str(), model.tags.clone()),
        (
            "Sentiment classifier",
            vec!["nlp".to_owned(), "english".to_owned()]
        )
    );
    let only_tags = json!({ "tags": [] });
    let response = app
        .request(Method::PATCH, "/api/v1/models/acme/m")
        .json(&only_tags)
        .send()
        .await
        .unwrap();
    let model: ModelDetail = expect_json(response, StatusCode::OK).await;
    assert_eq!(model.description, "Sentiment classifier");
    assert!(model.tags.is_empty());
    let bad = json!({ "tags": ["x".repeat(65)] });
    let response = app
        .request(Method::PATCH, "/api/v1/models/acme/m")
        .json(&bad)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::BAD_REQUEST, "invalid_tags").await;
    let response = app
        .request(Method::PATCH, "/api/v1/models/acme/none")
        .json(&update)
        .send()
        .await
        .unwrap();
    expect_error(response, StatusCode::NOT_FOUND, "not_found").await;
}

async fn bad_version_requests_get_clear_errors(app: TestApp) {
    let digest = app.upload_blob(b"payload").await;
    let commit = |path: &str, version: &str| json!({ "version": version, "files": [{ "path": path, "digest": digest, "size": 7 }] });
    // Paths that leave the folder they are pulled into, on some platform, or read as another path.
    for traversal in [
        "../x",
        "/etc/passwd",
        "a/../../b",
        "a//b",
        "a\\b",
        "C:evil",
        "C:/Windows/x",
        "model\u{202E}xnno.exe",
        "weights/NUL",
    ] {
        let response = app
            .post_json("/api/v1/models/acme/m/versions", &commit(traversal, "1"))
            .await;
        let body = expect_error(response, StatusCode::BAD_REQUEST, "invalid_path").await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("invalid file path"),
            "{body}"
        );
    }
    let response = app
        .post_json("/api/v1/models/acme/m/versions", &commit("ok.bin", "1 0"))
        .await;
    expect_error(response, StatusCode::BAD_REQUEST, "invalid_name").await;
    for (ns, model) in [("Acme", "m"), ("acme", "-m"), ("a%20b", "m")] {
        let response = app
            .post_json(
                &format!("/api/v1/models/{ns}/{model}/versions"),
                &commit("ok.bin", "1"),
            )
            .await;
        expect_error(response, StatusCode::BAD_REQUEST, "invalid_name").await;
    }
    expect_error(
        app.get("/api/v1/models/acme/unknown").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.get("/api/v1/models/acme/unknown/versions/1").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    let unknown = Sha256Digest::of(b"never uploaded");
    let missing =
        json!({ "version": "1", "files": [{ "path": "a", "digest": unknown, "size": 3 }] });
    let body = expect_error(
        app.post_json("/api/v1/models/acme/m/versions", &missing)
            .await,
        StatusCode::BAD_REQUEST,
        "missing_blobs",
    )
    .await;
    assert_eq!(body["error"]["details"]["missing"], json!([unknown]));
    let wrong_size =
        json!({ "version": "1", "files": [{ "path": "a", "digest": digest, "size": 8 }] });
    expect_error(
        app.post_json("/api/v1/models/acme/m/versions", &wrong_size)
            .await,
        StatusCode::BAD_REQUEST,
        "size_mismatch",
    )
    .await;
    let duplicate = json!({ "version": "1", "files": [
        { "path": "a", "digest": digest, "size": 7 }, { "path": "a", "digest": digest, "size": 7 }] });
    expect_error(
        app.post_json("/api/v1/models/acme/m/versions", &duplicate)
            .await,
        StatusCode::BAD_REQUEST,
        "duplicate_path",
    )
    .await;
    let conflict = json!({ "version": "1", "files": [
        { "path": "a", "digest": digest, "size": 7 }, { "path": "a/b", "digest": digest, "size": 7 }] });
    expect_error(
        app.post_json("/api/v1/models/acme/m/versions", &conflict)
            .await,
        StatusCode::BAD_REQUEST,
        "path_conflict",
    )
    .await;
    let empty = json!({ "version": "1", "files": [] });
    expect_error(
        app.post_json("/api/v1/models/acme/m/versions", &empty)
            .await,
        StatusCode::BAD_REQUEST,
        "no_files",
    )
    .await;
    let oversized = json!({ "version": "1", "files": [], "padding": "x".repeat(100_000) });
    expect_error(
        app.post_json("/api/v1/models/acme/m/versions", &oversized)
            .await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;
    let not_json = app
        .request(Method::POST, "/api/v1/models/acme/m/versions")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    expect_error(not_json, StatusCode::BAD_REQUEST, "invalid_json").await;
    expect_error(
        app.get("/api/v1/no/such/route").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // None of the refused commits left anything behind.
    expect_error(
        app.get("/api/v1/models/acme/m").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

crate::on_every_backend!(
    a_pushed_version_is_listed_everywhere,
    versions_are_immutable,
    deleting_a_version_is_explicit_and_audited,
    deleting_a_model_takes_its_versions_and_is_refused_while_aliased,
    model_metadata_can_be_edited,
    bad_version_requests_get_clear_errors,
);
