//! Aliases: each move is kept in the history and signs a new manifest for the alias with the next sequence;
//! old manifests stay retrievable, unchanged, by sequence; only a ready version can be named.

use kiln_core::api::{ManifestResponse, VersionStatus};
use kiln_core::deployment::{AliasEvent, AliasView};
use prost::Message;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, expect_json};

async fn push_ready_mlp(app: &TestApp, reference: &str) {
    let model = kiln_onnx::sample_models::mlp_graph(false).encode_to_vec();
    expect_json::<Value>(
        app.push(reference, &[("model.onnx", &model)]).await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        app.settled_version(reference).await.status,
        VersionStatus::Ready
    );
}

async fn set_alias(app: &TestApp, alias: &str, version: &str) -> reqwest::Response {
    app.request(
        Method::PUT,
        &format!("/api/v1/models/acme/m/aliases/{alias}"),
    )
    .json(&json!({ "version": version }))
    .send()
    .await
    .unwrap()
}

async fn alias_manifest(app: &TestApp, path: &str) -> ManifestResponse {
    expect_json(app.get(path).await, StatusCode::OK).await
}

async fn aliases_move_with_history_and_each_move_signs_a_new_manifest(app: TestApp) {
    push_ready_mlp(&app, "acme/m:1").await;
    push_ready_mlp(&app, "acme/m:2").await;

    let first: AliasView =
        expect_json(set_alias(&app, "production", "1").await, StatusCode::OK).await;
    assert_eq!((first.version.as_str(), first.sequence), ("1", 1));
    let manifest_1 =
        alias_manifest(&app, "/api/v1/models/acme/m/aliases/production/manifest").await;
    assert_eq!(
        manifest_1.payload.alias.as_ref().unwrap().as_str(),
        "production"
    );
    assert_eq!(
        (
            manifest_1.payload.version.as_str(),
            manifest_1.payload.sequence
        ),
        ("1", 1)
    );

    let moved: AliasView =
        expect_json(set_alias(&app, "production", "2").await, StatusCode::OK).await;
    assert_eq!((moved.version.as_str(), moved.sequence), ("2", 2));
    let back: AliasView =
        expect_json(set_alias(&app, "production", "1").await, StatusCode::OK).await;
    assert_eq!(back.sequence, 3);
    // Pointing it where it already points changes nothing and signs nothing.
    let same: AliasView =
        expect_json(set_alias(&app, "production", "1").await, StatusCode::OK).await;
    assert_eq!(same.sequence, 3);
    expect_json::<AliasView>(set_alias(&app, "staging", "2").await, StatusCode::OK).await;

    let latest = alias_manifest(&app, "/api/v1/models/acme/m/aliases/production/manifest").await;
    assert_eq!((latest.payload.version.as_str(), latest.sequence), ("1", 3));
    // Old manifests are served exactly as they were published.
    let again = alias_manifest(&app, "/api/v1/models/acme/m/aliases/production/manifests/1").await;
    assert_eq!(again.jws, manifest_1.jws);
    let second = alias_manifest(&app, "/api/v1/models/acme/m/aliases/production/manifests/2").await;
    assert_eq!(second.payload.version.as_str(), "2");
    expect_error(
        app.get("/api/v1/models/acme/m/aliases/production/manifests/4")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let jose = app
        .request(
            Method::GET,
            "/api/v1/models/acme/m/aliases/production/manifests/2",
        )
        .header("accept", "application/jose")
        .send()
        .await
        .unwrap();
    assert_eq!(jose.text().await.unwrap(), second.jws);
    // The version's own manifest is not the alias's.
    let version = alias_manifest(&app, "/api/v1/models/acme/m/versions/1/manifest").await;
    assert_eq!(
        (version.payload.alias.as_ref(), version.sequence),
        (None, 2),
        "published when the scan passed, again when the pipeline ended"
    );
    alias_manifest(&app, "/api/v1/models/acme/m/versions/1/manifests/1").await;

    let history: Vec<AliasEvent> = expect_json(
        app.get("/api/v1/models/acme/m/aliases/production/history")
            .await,
        StatusCode::OK,
    )
    .await;
    let moves: Vec<(Option<&str>, &str, i64)> = history
        .iter()
        .map(|e| {
            (
                e.from.as_ref().map(|v| v.as_str()),
                e.to.as_str(),
                e.sequence,
            )
        })
        .collect();
    assert_eq!(
        moves,
        [(Some("2"), "1", 3), (Some("1"), "2", 2), (None, "1", 1)]
    );
    assert!(
        history
            .iter()
            .all(|e| e.actor == history[0].actor && !e.actor.is_empty())
    );

    let aliases: Vec<AliasView> = expect_json(
        app.get("/api/v1/models/acme/m/aliases").await,
        StatusCode::OK,
    )
    .await;
    let listed: Vec<(&str, &str, i64)> = aliases
        .iter()
        .map(|a| (a.name.as_str(), a.version.as_str(), a.sequence))
        .collect();
    assert_eq!(listed, [("production", "1", 3), ("staging", "2", 1)]);

    // A version an alias names cannot be deleted from under it.
    let refused = expect_error(
        app.request(Method::DELETE, "/api/v1/models/acme/m/versions/2")
            .send()
            .await
            .unwrap(),
        StatusCode::CONFLICT,
        "version_aliased",
    )
    .await;
    assert_eq!(
        refused["error"]["message"],
        "acme/m@staging points at 2; move it first (kiln alias set acme/m staging VERSION)"
    );
}

async fn an_alias_names_only_a_ready_version(app: TestApp) {
    push_ready_mlp(&app, "acme/m:1").await;
    expect_json::<Value>(
        app.push(
            "acme/m:broken",
            &[("model.pkl", crate::manifests::HOSTILE_PICKLE)],
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(
        app.settled_version("acme/m:broken").await.status,
        VersionStatus::Failed
    );
    let refused = expect_error(
        set_alias(&app, "production", "broken").await,
        StatusCode::CONFLICT,
        "version_not_ready",
    )
    .await;
    assert_eq!(
        refused["error"]["message"],
        "cannot point acme/m@production at broken: its safety scan refused it, so kiln serves none of it (kiln show acme/m:broken)"
    );
    // Nothing was half-written: no alias, no manifest.
    let aliases: Vec<AliasView> = expect_json(
        app.get("/api/v1/models/acme/m/aliases").await,
        StatusCode::OK,
    )
    .await;
    assert!(aliases.is_empty());
    expect_error(
        app.get("/api/v1/models/acme/m/aliases/production/manifest")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    expect_error(
        set_alias(&app, "production", "9").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        set_alias(&app, "Prod", "1").await,
        StatusCode::BAD_REQUEST,
        "invalid_name",
    )
    .await;
    let unknown_field = app
        .request(Method::PUT, "/api/v1/models/acme/m/aliases/production")
        .json(&json!({ "version": "1", "force": true }))
        .send()
        .await
        .unwrap();
    expect_error(unknown_field, StatusCode::BAD_REQUEST, "invalid_json").await;
    expect_error(
        app.get("/api/v1/models/acme/m/aliases/production/manifests/x")
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_path_parameter",
    )
    .await;
}

/// An alias that does not move must not freeze its deployments: before its manifest expires kiln re-issues
/// it with the next sequence and new dates, leaving the old one as it was and the history untouched.
async fn manifests_nearing_expiry_are_reissued_with_the_next_sequence(app: TestApp) {
    push_ready_mlp(&app, "acme/m:1").await;
    expect_json::<AliasView>(set_alias(&app, "production", "1").await, StatusCode::OK).await;
    let before = alias_manifest(&app, "/api/v1/models/acme/m/aliases/production/manifest").await;
    let now = chrono::Utc::now();
    assert_eq!(
        app.services.manifests.refresh_expiring(now).await.unwrap(),
        0
    );

    // Two thirds of the 90 days later, the version's and the alias's manifests are both due.
    let later = now + chrono::Duration::days(61);
    assert_eq!(
        app.services
            .manifests
            .refresh_expiring(later)
            .await
            .unwrap(),
        2
    );
    let after = alias_manifest(&app, "/api/v1/models/acme/m/aliases/production/manifest").await;
    assert_eq!(after.sequence, 2);
    assert!(after.payload.expires_at > before.payload.expires_at);
    let unchanged = |m: &kiln_core::deployment::DeploymentManifest| {
        (
            m.model.clone(),
            m.version.clone(),
            m.alias.clone(),
            m.variants.clone(),
            m.sources.clone(),
        )
    };
    assert_eq!(unchanged(&after.payload), unchanged(&before.payload));
    let first = alias_manifest(&app, "/api/v1/models/acme/m/aliases/production/manifests/1").await;
    assert_eq!(first.jws, before.jws);
    let version = alias_manifest(&app, "/api/v1/models/acme/m/versions/1/manifest").await;
    assert_eq!(version.sequence, 3);

    let history: Vec<AliasEvent> = expect_json(
        app.get("/api/v1/models/acme/m/aliases/production/history")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(history.len(), 1);
    let aliases: Vec<AliasView> = expect_json(
        app.get("/api/v1/models/acme/m/aliases").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(aliases[0].sequence, 2);
    assert_eq!(
        app.services.manifests.refresh_expiring(now).await.unwrap(),
        0
    );
}

/// What a follower (`kiln-runner serve` polling an alias) relies on: the ETag names the manifest and its
/// representation; `If-None-Match` with it is 304 with no body until the alias moves.
async fn an_alias_manifest_is_polled_with_conditional_requests(app: TestApp) {
    push_ready_mlp(&app, "acme/m:1").await;
    push_ready_mlp(&app, "acme/m:2").await;
    expect_json::<AliasView>(set_alias(&app, "production", "1").await, StatusCode::OK).await;
    let path = "/api/v1/models/acme/m/aliases/production/manifest";
    let fetch = |etag: Option<String>, jose: bool| {
        let mut request = app.request(Method::GET, path);
        if jose {
            request = request.header("accept", "application/jose");
        }
        if let Some(etag) = etag {
            request = request.header("if-none-match", etag);
        }
        async move { request.send().await.unwrap() }
    };
    let first = fetch(None, true).await;
    assert_eq!(first.status(), StatusCode::OK);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with("-jose\""), "{etag}");
    let unchanged = fetch(Some(etag.clone()), true).await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(unchanged.headers()["etag"].to_str().unwrap(), etag);
    assert!(unchanged.bytes().await.unwrap().is_empty());
    // The JSON representation has an ETag of its own: the JWS's tag does not match it.
    assert_eq!(
        fetch(Some(etag.clone()), false).await.status(),
        StatusCode::OK
    );

    expect_json::<AliasView>(set_alias(&app, "production", "2").await, StatusCode::OK).await;
    let moved = fetch(Some(etag.clone()), true).await;
    assert_eq!(moved.status(), StatusCode::OK);
    assert_ne!(moved.headers()["etag"].to_str().unwrap(), etag);
}

crate::on_every_backend!(
    an_alias_manifest_is_polled_with_conditional_requests,
    aliases_move_with_history_and_each_move_signs_a_new_manifest,
    an_alias_names_only_a_ready_version,
    manifests_nearing_expiry_are_reissued_with_the_next_sequence,
);
