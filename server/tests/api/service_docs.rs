//! Health endpoints, the OpenAPI document (checked in and served) and the offline Swagger UI.

use kiln_core::api::HealthResponse;
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{Backend, TestApp, expect_json};

const CHECKED_IN: &str = include_str!("../../../openapi/openapi.json");

#[test]
fn the_checked_in_openapi_document_is_current() {
    let generated = kiln_server::http::openapi().to_pretty_json().unwrap() + "\n";
    if std::env::var_os("KILN_UPDATE_OPENAPI").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
        std::fs::write(path, &generated).unwrap();
        return;
    }
    assert!(
        generated == CHECKED_IN,
        "openapi/openapi.json is stale: regenerate it with `KILN_UPDATE_OPENAPI=1 cargo test -p kiln-server --test api openapi` \
         (or `kiln-server openapi > openapi/openapi.json`) and commit it"
    );
}

#[test]
fn the_openapi_document_is_3_1_and_describes_every_route() {
    let spec: Value = serde_json::from_str(CHECKED_IN).unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/readyz",
        "/api/v1/models",
        "/api/v1/namespaces",
        "/api/v1/namespaces/{namespace}/models",
        "/api/v1/models/{namespace}/{model}",
        "/api/v1/models/{namespace}/{model}/versions",
        "/api/v1/models/{namespace}/{model}/versions/{version}",
        "/api/v1/models/{namespace}/{model}/versions/{version}/files/{path}",
        "/api/v1/blobs/missing",
        "/api/v1/uploads",
        "/api/v1/uploads/{id}",
        "/api/v1/uploads/{id}/commit",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(spec["components"]["schemas"]["ErrorResponse"].is_object());
}

/// Operation ids are what generated clients name their functions: unique and snake_case. Every operation
/// has a summary, and every route that names a namespace says what its 404 means there (the access rules
/// add the shared refusals, not that one).
#[test]
fn operations_are_named_summarised_and_declare_their_404() {
    let spec: Value = serde_json::from_str(CHECKED_IN).unwrap();
    let mut ids = std::collections::BTreeSet::new();
    let mut wrong = Vec::new();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            let snake = !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !snake || !ids.insert(id.to_owned()) {
                wrong.push(format!("{method} {path}: operationId {id:?}"));
            }
            if operation["summary"].as_str().is_none_or(str::is_empty) {
                wrong.push(format!("{method} {path}: no summary"));
            }
            if path.contains("{namespace}") && operation["responses"].get("404").is_none() {
                wrong.push(format!("{method} {path}: no 404"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[actix_web::test]
async fn health_docs_and_swagger_ui_are_served() {
    let app = TestApp::spawn(Backend::Embedded).await;
    let live: HealthResponse = expect_json(app.get("/healthz").await, StatusCode::OK).await;
    assert_eq!(live.status, "ok");
    let ready: HealthResponse = expect_json(app.get("/readyz").await, StatusCode::OK).await;
    assert_eq!(ready.status, "ready");
    assert!(ready.checks.iter().all(|c| c.ok) && ready.checks.len() == 2);

    let served: Value = expect_json(app.get("/api-docs/openapi.json").await, StatusCode::OK).await;
    assert_eq!(served, serde_json::from_str::<Value>(CHECKED_IN).unwrap());

    let ui = app.get("/swagger-ui/").await;
    assert_eq!(ui.status(), StatusCode::OK);
    assert!(ui.text().await.unwrap().contains("swagger-ui"));
    let bundle = app.get("/swagger-ui/swagger-ui-bundle.js").await;
    assert_eq!(
        bundle.status(),
        StatusCode::OK,
        "Swagger UI assets are served from the binary (offline)"
    );

    let response = app.get("/healthz").await;
    assert!(
        response.headers().contains_key("x-request-id"),
        "every response carries its request id"
    );
}
