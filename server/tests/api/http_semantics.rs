//! HTTP semantics that clients, caches and proxies rely on, beyond each operation's own body.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, expect_json};

/// A file's digest is its strong ETag: a client or cache that has it revalidates for a 304, `If-Match`
/// guards against a different file, `HEAD` tells the size without the bytes, and content-addressed bytes
/// are cacheable for a year, by shared caches only when the model is public.
async fn files_answer_head_conditional_requests_and_cache_control(app: TestApp) {
    let data = b"content-addressed bytes never change".to_vec();
    expect_json::<Value>(
        app.push("acme/cached:1", &[("w.bin", &data)]).await,
        StatusCode::CREATED,
    )
    .await;
    let path = "/api/v1/models/acme/cached/versions/1/files/w.bin";
    let etag = format!("\"{}\"", kiln_core::Sha256Digest::of(&data));

    let head = app.request(Method::HEAD, path).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(head.headers()["content-length"], data.len().to_string());
    assert_eq!(head.headers()["etag"], etag.as_str());
    assert_eq!(
        head.headers()["cache-control"],
        "private, max-age=31536000, immutable"
    );
    assert!(head.bytes().await.unwrap().is_empty());

    let revalidated = app
        .request(Method::GET, path)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(revalidated.headers()["etag"], etag.as_str());
    assert!(revalidated.bytes().await.unwrap().is_empty());
    let other = app
        .request(Method::GET, path)
        .header("if-none-match", "\"sha256:other\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(&other.bytes().await.unwrap()[..], &data[..]);

    let guarded = app
        .request(Method::GET, path)
        .header("if-match", "\"sha256:other\"")
        .send()
        .await
        .unwrap();
    expect_error(
        guarded,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    )
    .await;
    let matched = app
        .request(Method::GET, path)
        .header("if-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(matched.status(), StatusCode::OK);

    let public = app
        .request(Method::PUT, "/api/v1/models/acme/cached/visibility")
        .json(&json!({ "visibility": "public" }))
        .send()
        .await
        .unwrap();
    assert_eq!(public.status(), StatusCode::OK);
    let anonymous = app.anonymous(Method::GET, path).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK);
    assert_eq!(
        anonymous.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let missing = app
        .request(
            Method::HEAD,
            "/api/v1/models/acme/cached/versions/1/files/none.bin",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

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
    assert_eq!(allow.as_deref(), Some("GET, HEAD"), "{body}");
    let response = app
        .request(Method::DELETE, "/api/v1/uploads")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");
    // The service routes outside /api/v1 too (Schemathesis sent TRACE and got 404).
    for path in ["/healthz", "/.well-known/jwks.json"] {
        let response = app.anonymous(Method::TRACE, path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
        assert_eq!(response.headers()["allow"], "GET, HEAD", "{path}");
    }
    let unknown = app
        .anonymous(Method::TRACE, "/nowhere")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

crate::on_every_backend!(
    a_wrong_method_is_405_with_allow,
    files_answer_head_conditional_requests_and_cache_control,
    cors_is_off_by_default,
    json_bodies_must_be_objects,
);

/// With an allowlist, a browser page of a listed origin gets its preflight answered (before any
/// credentials, as the Fetch standard sends none) and may read the answers; other origins get no CORS
/// headers, so the browser keeps their pages from reading anything.
async fn cors_answers_listed_origins_only(app: TestApp) {
    let path = "/api/v1/models/acme/cors/versions/1/files/w.bin";
    let preflight = app
        .anonymous(Method::OPTIONS, path)
        .header("origin", "https://ui.example.com")
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization, if-none-match",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://ui.example.com"
    );
    let allowed_headers = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );

    let data = b"bytes".to_vec();
    expect_json::<Value>(
        app.push("acme/cors:1", &[("w.bin", &data)]).await,
        StatusCode::CREATED,
    )
    .await;
    let read = app
        .request(Method::GET, path)
        .header("origin", "https://ui.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(
        read.headers()["access-control-allow-origin"],
        "https://ui.example.com"
    );
    let exposed = read.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(exposed.contains("etag"), "{exposed}");

    let elsewhere = app
        .request(Method::GET, path)
        .header("origin", "https://evil.example.net")
        .send()
        .await
        .unwrap();
    assert!(
        elsewhere
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "{:?}",
        elsewhere.headers()
    );
}

/// CORS is off by default: no origin gets the headers a browser needs to let its page read an answer.
async fn cors_is_off_by_default(app: TestApp) {
    let response = app
        .request(Method::GET, "/api/v1/models")
        .header("origin", "https://ui.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

async fn with_cors(backend: crate::harness::Backend) -> TestApp {
    TestApp::spawn_with(backend, |settings| {
        settings.cors_allowed_origins = vec!["https://ui.example.com".to_owned()];
    })
    .await
}

mod cors {
    use super::*;
    crate::on_every_backend!(spawn = super::with_cors; cors_answers_listed_origins_only);
}

/// A body trickling in at 100 bytes a second is cut off with 408 once the grace period is over, instead
/// of holding a connection and a worker for as long as the client likes (the default minimum is 1024 B/s).
#[actix_web::test]
async fn a_body_slower_than_the_minimum_rate_is_cut_off_with_408() {
    let app = TestApp::spawn(crate::harness::Backend::Embedded).await;
    let chunks = futures_util::stream::unfold(0u32, |sent| async move {
        if sent >= 60 {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
        Some((Ok::<_, std::io::Error>(vec![b' '; 100]), sent + 1))
    });
    let started = std::time::Instant::now();
    let response = app
        .request(Method::POST, "/api/v1/tokens")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    let elapsed = started.elapsed();
    // The server answers 408 and closes; a client still sending may see the close as an error instead.
    match response {
        Ok(response) => {
            expect_error(response, StatusCode::REQUEST_TIMEOUT, "request_timeout").await;
        }
        Err(e) => assert!(e.is_request() || e.is_body(), "{e}"),
    }
    assert!(elapsed < std::time::Duration::from_secs(30), "{elapsed:?}");
}

/// A JSON body must be an object: serde would read a struct from an array by position, which the schemas
/// do not allow (Schemathesis found `[null, null]` accepted as an edit that changes nothing).
async fn json_bodies_must_be_objects(app: TestApp) {
    expect_json::<Value>(
        app.push("acme/shape:1", &[("w.bin", b"w")]).await,
        StatusCode::CREATED,
    )
    .await;
    for (method, path, body) in [
        (
            Method::PATCH,
            "/api/v1/models/acme/shape",
            json!([null, null]),
        ),
        (Method::POST, "/api/v1/tokens", json!(["ci", ["read"]])),
        (Method::POST, "/api/v1/uploads", json!("sha256:x")),
    ] {
        let response = app.request(method, path).json(&body).send().await.unwrap();
        let error = expect_error(response, StatusCode::BAD_REQUEST, "invalid_json").await;
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("must be an object"),
            "{error}"
        );
    }
}
