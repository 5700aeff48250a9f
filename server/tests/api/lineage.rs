//! Lineage: a push says where its version came from (parent versions with roles, datasets, the training
//! run, the producing tool, hyperparameters); the version shows it with each kiln reference resolved, the
//! versions it names list it as derived, and its signed manifest carries it.

use kiln_core::api::{LineageLink, VersionDetail, VersionStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, expect_json};

/// Uploads the files and commits them as `reference` with `lineage` (null: none), as `token`.
async fn push_with_lineage(
    app: &TestApp,
    token: &str,
    reference: &str,
    files: &[(&str, &[u8])],
    lineage: Value,
) -> reqwest::Response {
    let (model, version) = reference.split_once(':').expect("NS/MODEL:VERSION");
    let mut entries = Vec::new();
    for (path, data) in files {
        let digest = app.upload_blob_as(token, data).await;
        entries.push(json!({ "path": path, "digest": digest, "size": data.len() }));
    }
    let mut body = json!({ "version": version, "files": entries });
    if !lineage.is_null() {
        body["lineage"] = lineage;
    }
    app.anonymous(Method::POST, &format!("/api/v1/models/{model}/versions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request sent")
}

async fn version_as(app: &TestApp, token: Option<&str>, reference: &str) -> VersionDetail {
    let (model, version) = reference.split_once(':').unwrap();
    let mut request = app.anonymous(
        Method::GET,
        &format!("/api/v1/models/{model}/versions/{version}"),
    );
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    expect_json(request.send().await.unwrap(), StatusCode::OK).await
}

/// A user who belongs to no namespace but their own; their access token.
async fn outsider(app: &TestApp, name: &str) -> String {
    let password = format!("{name}'s long password");
    let user = json!({ "name": name, "password": password });
    expect_json::<Value>(
        app.post_json("/api/v1/users", &user).await,
        StatusCode::CREATED,
    )
    .await;
    let login = app
        .anonymous(Method::POST, "/api/v1/auth/token")
        .json(&json!({ "username": name, "password": password }));
    let answer: Value = expect_json(login.send().await.unwrap(), StatusCode::OK).await;
    answer["access_token"].as_str().unwrap().to_owned()
}

const ADMIN: &str = crate::harness::ADMIN_TOKEN;
const TEACHER: &[(&str, &[u8])] = &[("weights.bin", b"teacher weights")];
const CORPUS: &[(&str, &[u8])] = &[
    ("train.txt", b"the quick brown fox"),
    ("held-out.txt", b"jumps"),
];
const STUDENT: &[(&str, &[u8])] = &[("weights.bin", b"student weights")];

fn student_lineage() -> Value {
    json!({
        "parents": [{ "reference": "acme/teacher:1", "role": "teacher" }],
        "datasets": [
            { "reference": "acme/corpus:2024-05" },
            { "uri": "s3://corpus/extra.parquet", "sha256": kiln_core::Sha256Digest::of(b"extra") },
        ],
        "training_run": "https://ci.example/runs/42",
        "producer": { "name": "torchrun", "version": "2.5.1" },
        "hyperparameters": { "lr": 3e-4, "steps": 1000, "fused": true, "schedule": "cosine" },
    })
}

async fn a_pushed_lineage_is_shown_both_ways(app: TestApp) {
    for (reference, files) in [("acme/teacher:1", TEACHER), ("acme/corpus:2024-05", CORPUS)] {
        expect_json::<Value>(app.push(reference, files).await, StatusCode::CREATED).await;
    }
    let created: VersionDetail = expect_json(
        push_with_lineage(&app, ADMIN, "acme/student:1", STUDENT, student_lineage()).await,
        StatusCode::CREATED,
    )
    .await;
    assert!(
        created.lineage.is_some(),
        "the commit answers with the lineage"
    );

    let student = version_as(&app, Some(ADMIN), "acme/student:1").await;
    let lineage = student.lineage.expect("the lineage is shown");
    assert_eq!(
        (
            lineage.parents[0].reference.as_str(),
            lineage.parents[0].role.as_str()
        ),
        ("acme/teacher:1", "teacher")
    );
    assert!(lineage.parents[0].status.is_some(), "resolved: {lineage:?}");
    let corpus = version_as(&app, Some(ADMIN), "acme/corpus:2024-05").await;
    assert_eq!(
        lineage.datasets[0].files, corpus.files,
        "a kiln dataset is pinned by its files' digests"
    );
    assert_eq!(
        lineage.datasets[1].uri.as_deref(),
        Some("s3://corpus/extra.parquet")
    );
    assert!(lineage.datasets[1].files.is_empty() && lineage.datasets[1].status.is_none());
    assert_eq!(
        lineage.training_run.as_deref(),
        Some("https://ci.example/runs/42")
    );
    assert_eq!(lineage.producer.unwrap().name, "torchrun");
    assert_eq!(lineage.hyperparameters.unwrap()["steps"], json!(1000));

    let teacher = version_as(&app, Some(ADMIN), "acme/teacher:1").await;
    assert_eq!(teacher.derived_count, 1);
    assert_eq!(
        (
            teacher.derived[0].reference.as_str(),
            teacher.derived[0].link,
            teacher.derived[0].role.as_str()
        ),
        ("acme/student:1", LineageLink::Parent, "teacher")
    );
    assert_eq!(corpus.derived[0].link, LineageLink::Dataset);
    let nothing_derived = version_as(&app, Some(ADMIN), "acme/student:1").await;
    assert!(nothing_derived.derived.is_empty() && nothing_derived.derived_count == 0);
}

/// The lineage is part of the version's content when a re-commit states one: the same lineage is the
/// same no-op as identical files; another lineage, or one added afterwards, is a conflict.
async fn a_recommit_must_state_the_recorded_lineage(app: TestApp) {
    for (reference, files) in [("acme/teacher:1", TEACHER), ("acme/corpus:2024-05", CORPUS)] {
        expect_json::<Value>(app.push(reference, files).await, StatusCode::CREATED).await;
    }
    let first = push_with_lineage(&app, ADMIN, "acme/student:1", STUDENT, student_lineage()).await;
    expect_json::<Value>(first, StatusCode::CREATED).await;
    let same = push_with_lineage(&app, ADMIN, "acme/student:1", STUDENT, student_lineage()).await;
    expect_json::<Value>(same, StatusCode::OK).await;
    let without = push_with_lineage(&app, ADMIN, "acme/student:1", STUDENT, Value::Null).await;
    expect_json::<Value>(without, StatusCode::OK).await;
    let mut other = student_lineage();
    other["parents"][0]["role"] = json!("base");
    let changed = push_with_lineage(&app, ADMIN, "acme/student:1", STUDENT, other).await;
    expect_error(changed, StatusCode::CONFLICT, "version_conflict").await;
    expect_json::<Value>(app.push("acme/plain:1", STUDENT).await, StatusCode::CREATED).await;
    let added = push_with_lineage(&app, ADMIN, "acme/plain:1", STUDENT, student_lineage()).await;
    let body = expect_error(added, StatusCode::CONFLICT, "version_conflict").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no lineage"),
        "{body}"
    );
}

/// Deleting a parent leaves its children whole: the reference stays, its status goes.
async fn a_deleted_parent_leaves_its_reference(app: TestApp) {
    for (reference, files) in [("acme/teacher:1", TEACHER), ("acme/corpus:2024-05", CORPUS)] {
        expect_json::<Value>(app.push(reference, files).await, StatusCode::CREATED).await;
    }
    let pushed = push_with_lineage(&app, ADMIN, "acme/student:1", STUDENT, student_lineage()).await;
    expect_json::<Value>(pushed, StatusCode::CREATED).await;
    let deleted = app
        .request(Method::DELETE, "/api/v1/models/acme/teacher/versions/1")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let student = version_as(&app, Some(ADMIN), "acme/student:1").await;
    let lineage = student.lineage.unwrap();
    assert_eq!(lineage.parents[0].reference, "acme/teacher:1");
    assert_eq!(lineage.parents[0].status, None, "deleted since");
    assert!(
        lineage.datasets[0].status.is_some(),
        "the corpus is still there"
    );
}

/// A private version its pusher cannot read is refused exactly as an absent one, so a lineage cannot
/// probe for private models; a public one may be named by anyone, and what was derived from it is
/// listed only to those who may read the derived version.
async fn unreadable_references_are_refused_as_absent_ones(app: TestApp) {
    for reference in ["acme/secret:1", "acme/open:1"] {
        expect_json::<Value>(app.push(reference, TEACHER).await, StatusCode::CREATED).await;
    }
    let public = app
        .request(Method::PUT, "/api/v1/models/acme/open/visibility")
        .json(&json!({ "visibility": "public" }));
    expect_json::<Value>(public.send().await.unwrap(), StatusCode::OK).await;
    let mallory = outsider(&app, "mallory").await;
    let mut messages = Vec::new();
    for (field, lineage) in [
        (
            "parents",
            json!({ "parents": [{ "reference": "acme/secret:1", "role": "teacher" }] }),
        ),
        (
            "parents",
            json!({ "parents": [{ "reference": "acme/absent:1", "role": "teacher" }] }),
        ),
        (
            "datasets",
            json!({ "datasets": [{ "reference": "acme/secret:1" }] }),
        ),
        (
            "datasets",
            json!({ "datasets": [{ "reference": "acme/absent:1" }] }),
        ),
    ] {
        let refused =
            push_with_lineage(&app, &mallory, "mallory/student:1", STUDENT, lineage).await;
        let body = expect_error(refused, StatusCode::NOT_FOUND, "not_found").await;
        let message = body["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            message.starts_with(&format!("lineage.{field}[0].reference: ")),
            "{message}"
        );
        messages.push(message.replace("secret", "X").replace("absent", "X"));
    }
    assert_eq!(messages[0], messages[1], "unreadable reads as absent");
    assert_eq!(messages[2], messages[3], "unreadable reads as absent");
    let missing = app.get("/api/v1/models/mallory/student/versions/1").await;
    assert_eq!(
        missing.status(),
        StatusCode::NOT_FOUND,
        "a refused commit leaves nothing"
    );

    let lineage = json!({ "parents": [{ "reference": "acme/open:1", "role": "base" }] });
    let pushed = push_with_lineage(&app, &mallory, "mallory/student:1", STUDENT, lineage).await;
    expect_json::<Value>(pushed, StatusCode::CREATED).await;
    let seen_by_admin = version_as(&app, Some(ADMIN), "acme/open:1").await;
    assert_eq!(seen_by_admin.derived[0].reference, "mallory/student:1");
    let seen_by_anyone = version_as(&app, None, "acme/open:1").await;
    assert!(
        seen_by_anyone.derived.is_empty() && seen_by_anyone.derived_count == 0,
        "mallory's model is private: {:?}",
        seen_by_anyone.derived
    );
}

/// Bad input is refused with 400 naming the field, before anything is written.
async fn a_malformed_lineage_is_refused_naming_its_field(app: TestApp) {
    let many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("p{i}"), json!(i))).collect();
    for (lineage, field) in [
        (
            json!({ "hyperparameters": many }),
            "lineage.hyperparameters",
        ),
        (
            json!({ "hyperparameters": { "note": "n".repeat(257) } }),
            "lineage.hyperparameters.note",
        ),
        (
            json!({ "hyperparameters": { "layers": [1, 2] } }),
            "lineage.hyperparameters.layers",
        ),
        (
            json!({ "parents": [{ "reference": "acme/teacher@production", "role": "teacher" }] }),
            "lineage.parents[0].reference",
        ),
        (
            json!({ "parents": [{ "reference": "acme/t:1", "role": "Teacher!" }] }),
            "lineage.parents[0].role",
        ),
        (
            json!({ "datasets": [{ "uri": "not a uri" }] }),
            "lineage.datasets[0].uri",
        ),
        (json!({ "training_run": "" }), "lineage.training_run"),
    ] {
        let refused = push_with_lineage(&app, ADMIN, "acme/student:1", STUDENT, lineage).await;
        let body = expect_error(refused, StatusCode::BAD_REQUEST, "invalid_lineage").await;
        assert_eq!(body["error"]["details"]["field"], field, "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with(field),
            "{body}"
        );
    }
    let unknown = push_with_lineage(
        &app,
        ADMIN,
        "acme/student:1",
        STUDENT,
        json!({ "run": "x" }),
    )
    .await;
    let body = expect_error(unknown, StatusCode::BAD_REQUEST, "invalid_json").await;
    assert!(
        body["error"]["message"].as_str().unwrap().contains("run"),
        "{body}"
    );
    let missing = app.get("/api/v1/models/acme/student/versions/1").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// The manifest signs the lineage as recorded at push (no statuses, which move): a deployment can prove
/// which teacher and which data its model came from; a changed lineage breaks the signature.
async fn the_manifest_signs_the_lineage(app: TestApp) {
    for (reference, files) in [("acme/teacher:1", TEACHER), ("acme/corpus:2024-05", CORPUS)] {
        expect_json::<Value>(app.push(reference, files).await, StatusCode::CREATED).await;
    }
    let files: &[(&str, &[u8])] = &[(
        "tokenizer.json",
        br#"{"version":"1.0","model":{"type":"BPE"}}"#,
    )];
    let pushed = push_with_lineage(&app, ADMIN, "acme/student:1", files, student_lineage()).await;
    expect_json::<Value>(pushed, StatusCode::CREATED).await;
    let detail = app.settled_version("acme/student:1").await;
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    let manifest: kiln_core::api::ManifestResponse = expect_json(
        app.get("/api/v1/models/acme/student/versions/1/manifest")
            .await,
        StatusCode::OK,
    )
    .await;
    let jwks: Value = app
        .anonymous(Method::GET, "/.well-known/jwks.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let claims = crate::manifests::verify(&manifest.jws, &jwks).unwrap();
    let lineage = &claims["lineage"];
    assert_eq!(
        lineage["parents"],
        json!([{ "reference": "acme/teacher:1", "role": "teacher" }]),
        "the reference and role, no status"
    );
    let corpus = version_as(&app, Some(ADMIN), "acme/corpus:2024-05").await;
    assert_eq!(
        lineage["datasets"][0]["files"],
        serde_json::to_value(&corpus.files).unwrap()
    );
    assert_eq!(
        lineage["datasets"][1]["sha256"],
        json!(kiln_core::Sha256Digest::of(b"extra"))
    );
    assert_eq!(
        lineage["producer"],
        json!({ "name": "torchrun", "version": "2.5.1" })
    );
    assert_eq!(lineage["hyperparameters"]["lr"], json!(3e-4));

    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = manifest.jws.split('.').collect();
    let mut payload: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    payload["lineage"]["parents"][0]["reference"] = json!("acme/other-teacher:1");
    let forged = [
        parts[0],
        &engine.encode(serde_json::to_vec(&payload).unwrap()),
        parts[2],
    ]
    .join(".");
    assert!(crate::manifests::verify(&forged, &jwks).is_err());
}

/// The web UI's version page has a Lineage section: parents and kiln datasets link to their pages, and
/// the parent's page links to what was derived from it.
async fn the_version_page_links_lineage_both_ways(app: TestApp) {
    for (reference, files) in [("acme/teacher:1", TEACHER), ("acme/corpus:2024-05", CORPUS)] {
        expect_json::<Value>(app.push(reference, files).await, StatusCode::CREATED).await;
    }
    let pushed = push_with_lineage(&app, ADMIN, "acme/student:1", STUDENT, student_lineage()).await;
    expect_json::<Value>(pushed, StatusCode::CREATED).await;
    for model in ["teacher", "student"] {
        let public = app
            .request(
                Method::PUT,
                &format!("/api/v1/models/acme/{model}/visibility"),
            )
            .json(&json!({ "visibility": "public" }));
        expect_json::<Value>(public.send().await.unwrap(), StatusCode::OK).await;
    }
    let app = &app;
    let page = |path: &'static str| async move {
        let response = app.anonymous(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap()
    };
    let student = page("/models/acme/student/versions/1").await;
    for expected in [
        r#"<h2 id="lineage">Lineage</h2>"#,
        r#"<a href="/models/acme/teacher/versions/1">acme/teacher:1</a> <small>teacher</small>"#,
        r#"<a href="/models/acme/corpus/versions/2024-05">acme/corpus:2024-05</a>"#,
        r#"<a href="https://ci.example/runs/42" rel="noopener noreferrer">"#,
        "torchrun 2.5.1",
    ] {
        assert!(student.contains(expected), "{expected} in:\n{student}");
    }
    let teacher = page("/models/acme/teacher/versions/1").await;
    assert!(
        teacher.contains(r#"<a href="/models/acme/student/versions/1">acme/student:1</a> <small>as its teacher</small>"#),
        "{teacher}"
    );
}

/// kiln's own jobs (distillation) record the lineage of the version they push through the registry's
/// commit, without HTTP: the same checks and resolution, with the visibility of the user who asked for the
/// job, so a job cannot name what its user cannot read.
async fn a_job_records_lineage_through_the_registry_service(app: TestApp) {
    use kiln_server::db::repos::audit::Actor;
    use kiln_server::db::repos::models::Visible;
    use kiln_server::services::registry::Committed;
    expect_json::<Value>(
        app.push("acme/teacher:1", TEACHER).await,
        StatusCode::CREATED,
    )
    .await;
    let digest = app.upload_blob(b"distilled student").await;
    let request = |version: &str| -> kiln_core::api::CreateVersionRequest {
        serde_json::from_value(json!({
            "version": version,
            "files": [{ "path": "weights.bin", "digest": digest, "size": 17 }],
            "lineage": {
                "parents": [{ "reference": "acme/teacher:1", "role": "teacher" }],
                "producer": { "name": "kiln-distill", "version": env!("CARGO_PKG_VERSION") },
                "hyperparameters": { "student_layers": 2, "temperature": 2.0 },
            },
        }))
        .unwrap()
    };
    let job = || Actor {
        name: "job:distill".to_owned(),
        user_id: None,
        remote_addr: None,
    };
    let registry = &app.services.registry;
    let (ns, model) = ("acme".parse().unwrap(), "student".parse().unwrap());
    let committed = registry
        .create_version(ns, model, request("1"), job(), Visible::All)
        .await
        .unwrap();
    assert!(matches!(committed, Committed::Created(_)));
    let student = version_as(&app, Some(ADMIN), "acme/student:1").await;
    assert_eq!(
        student.lineage.unwrap().producer.unwrap().name,
        "kiln-distill"
    );
    let teacher = version_as(&app, Some(ADMIN), "acme/teacher:1").await;
    assert_eq!(teacher.derived[0].reference, "acme/student:1");

    let (ns, model) = ("acme".parse().unwrap(), "student".parse().unwrap());
    let nobody = Visible::Some {
        namespace_ids: Vec::new(),
    };
    let refused = registry
        .create_version(ns, model, request("2"), job(), nobody)
        .await;
    assert!(
        matches!(refused, Err(kiln_server::error::Error::NotFound { .. })),
        "a private teacher its user cannot read"
    );
}

crate::on_every_backend!(
    a_job_records_lineage_through_the_registry_service,
    a_pushed_lineage_is_shown_both_ways,
    the_version_page_links_lineage_both_ways,
    a_recommit_must_state_the_recorded_lineage,
    a_deleted_parent_leaves_its_reference,
    unreadable_references_are_refused_as_absent_ones,
    a_malformed_lineage_is_refused_naming_its_field,
    the_manifest_signs_the_lineage,
);
