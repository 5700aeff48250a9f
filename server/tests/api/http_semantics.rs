//! HTTP semantics that clients, caches and proxies rely on, beyond each operation's own body.

use reqwest::{Method, StatusCode};

use crate::harness::{TestApp, expect_error};

/// A method a route does not answer is 405 with the `Allow` header RFC 9110 requires, naming what it does.
async fn a_wrong_method_is_405_with_allow(app: TestApp) {
    let response = app
        .request(Method::PUT, "/api/v1/models")
        .send()
        .await
        .unwrap();
    let allow = response
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = expect_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    assert_eq!(allow.as_deref(), Some("GET"), "{body}");
    let response = app
        .request(Method::DELETE, "/api/v1/uploads")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
}

crate::on_every_backend!(a_wrong_method_is_405_with_allow);
