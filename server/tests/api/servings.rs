//! Where models are being served: a serving process reports with a runner token, its report is listed to
//! the model's readers (API, web UI) while it is refreshed, and only its own token refreshes or withdraws
//! it; reports out of bounds are refused naming the field.

use diesel::prelude::*;
use kiln_core::api::ServingView;
use kiln_server::db::schema::servings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, expect_json};
use crate::runners::{push_mlp, runner_token};

fn report(version: &str, endpoints: Value) -> Value {
    json!({
        "namespace": "acme", "model": "m", "alias": "production", "version": version,
        "variant": "onnx", "sha256": format!("sha256:{}", "ab".repeat(32)), "sequence": 3,
        "engine": "onnxruntime", "device": "cpu", "name": "serve-1", "endpoints": endpoints,
    })
}

async fn put(app: &TestApp, token: &str, id: &str, body: &Value) -> reqwest::Response {
    app.anonymous(Method::PUT, &format!("/api/v1/servings/{id}"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn listed(app: &TestApp) -> Vec<ServingView> {
    expect_json(
        app.get("/api/v1/models/acme/m/servings").await,
        StatusCode::OK,
    )
    .await
}

async fn a_serving_process_reports_and_is_listed_until_it_withdraws(app: TestApp) {
    push_mlp(&app, "acme/m:1", &[]).await;
    let token = runner_token(&app, "serve-a").await;
    let endpoints = json!(["http://10.0.0.5:8080", "grpc://10.0.0.5:8081"]);
    let first: ServingView = expect_json(
        put(&app, &token, "s-1", &report("1", endpoints.clone())).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(first.report.version.as_str(), "1");
    assert!(first.reported_by.contains("admin"), "{}", first.reported_by);

    // The alias moved: the next report names the new version, and keeps when the process started.
    push_mlp(&app, "acme/m:2", &[]).await;
    expect_json::<ServingView>(
        put(&app, &token, "s-1", &report("2", endpoints.clone())).await,
        StatusCode::OK,
    )
    .await;
    let now = listed(&app).await;
    assert_eq!(now.len(), 1);
    assert_eq!(
        (now[0].id.as_str(), now[0].report.version.as_str()),
        ("s-1", "2")
    );
    assert_eq!(now[0].started_at, first.started_at);
    assert_eq!(
        now[0].report.endpoints,
        ["http://10.0.0.5:8080", "grpc://10.0.0.5:8081"]
    );

    // The web UI's model page lists it.
    expect_json::<Value>(
        app.request(Method::PUT, "/api/v1/models/acme/m/visibility")
            .json(&json!({ "visibility": "public" }))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let page = reqwest::get(app.url("/models/acme/m"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Served at") && page.contains("grpc://10.0.0.5:8081"),
        "{page}"
    );

    // Another runner token can neither refresh nor withdraw it.
    let other = runner_token(&app, "serve-b").await;
    expect_error(
        put(&app, &other, "s-1", &report("1", endpoints.clone())).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let withdraw = |token: String| {
        app.anonymous(Method::DELETE, "/api/v1/servings/s-1")
            .bearer_auth(token)
            .send()
    };
    assert_eq!(
        withdraw(other).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        withdraw(token.clone()).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert!(listed(&app).await.is_empty());
    assert_eq!(
        withdraw(token).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

async fn a_report_silent_for_90_seconds_is_not_listed(app: TestApp) {
    push_mlp(&app, "acme/m:1", &[]).await;
    let token = runner_token(&app, "serve-a").await;
    expect_json::<ServingView>(
        put(&app, &token, "s-old", &report("1", json!(["http://a:1"]))).await,
        StatusCode::OK,
    )
    .await;
    app.db
        .run(|conn| {
            let past = kiln_server::db::now() - chrono::Duration::seconds(91);
            diesel::update(servings::table)
                .set(servings::last_seen_at.eq(past))
                .execute(conn)?;
            Ok::<_, kiln_server::error::Error>(())
        })
        .await
        .unwrap();
    assert!(listed(&app).await.is_empty());
    // The next report of any process removes it for good.
    expect_json::<ServingView>(
        put(&app, &token, "s-new", &report("1", json!(["http://b:1"]))).await,
        StatusCode::OK,
    )
    .await;
    let now = listed(&app).await;
    assert_eq!(
        now.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["s-new"]
    );
    let rows: i64 = app
        .db
        .run(|conn| Ok::<_, kiln_server::error::Error>(servings::table.count().get_result(conn)?))
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

async fn a_report_out_of_bounds_is_refused_naming_what(app: TestApp) {
    push_mlp(&app, "acme/m:1", &[]).await;
    let token = runner_token(&app, "serve-a").await;
    let cases = [
        ("s-1", report("1", json!([])), "endpoints"),
        ("s-1", report("1", json!(["http://a b"])), "endpoint"),
        ("s-1", report("1", json!(["x".repeat(201)])), "endpoint"),
        ("bad id!", report("1", json!(["http://a:1"])), "serving id"),
    ];
    for (id, body, what) in cases {
        let id = id.replace(' ', "%20").replace('!', "%21");
        let error = expect_error(
            put(&app, &token, &id, &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_serving",
        )
        .await;
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(what), "{what}: {message}");
    }
    let mut unknown = report("1", json!(["http://a:1"]));
    unknown["model"] = json!("nope");
    expect_error(
        put(&app, &token, "s-1", &unknown).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let mut extra = report("1", json!(["http://a:1"]));
    extra["extra"] = json!(1);
    expect_error(
        put(&app, &token, "s-1", &extra).await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    )
    .await;
}

crate::on_every_backend!(
    a_serving_process_reports_and_is_listed_until_it_withdraws,
    a_report_silent_for_90_seconds_is_not_listed,
    a_report_out_of_bounds_is_refused_naming_what,
);
