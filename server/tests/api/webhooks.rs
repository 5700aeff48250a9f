//! Webhooks as a receiver meets them: Standard Webhooks signatures it can check with the secret alone, one
//! model's events in the order they happened, retries after it was down, nothing lost when the server
//! stops between the commit and the send, a failing subscription disabled, redelivery on demand, and no
//! deliveries into the server's own network.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use kiln_core::api::{
    CreatedWebhook, WebhookDeliveries, WebhookDeliveryState, WebhookSubscription,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, expect_error, expect_json};
use crate::storage_collection::bytes;

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: i64,
    signature: String,
    raw: String,
    body: Value,
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Answer this status instead of 204 (a receiver that is broken).
    status: Mutex<Option<u16>>,
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let raw = String::from_utf8(body.to_vec()).unwrap();
    state.received.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
        signature: header("webhook-signature"),
        body: serde_json::from_str(&raw).unwrap_or(Value::Null),
        raw,
    });
    match *state.status.lock().unwrap() {
        Some(status) => HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .body("broken on purpose"),
        None => HttpResponse::NoContent().finish(),
    }
}

/// A receiver on `address` (port 0: any).
fn start_receiver(address: std::net::SocketAddr) -> (std::net::SocketAddr, Arc<ReceiverState>) {
    let state = web::Data::new(ReceiverState::default());
    let shared = state.clone().into_inner();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/hook", web::post().to(receive))
    })
    .workers(1)
    .bind(address)
    .unwrap();
    let bound = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    (bound, shared)
}

fn free_address() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Checks a delivery the way a receiver does (Standard Webhooks), with nothing but the secret.
fn verify(secret: &str, received: &Received) {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", received.id, received.timestamp, received.raw).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert!(
        received.signature.split(' ').any(|s| s == expected),
        "signature {} does not verify (want {expected})",
        received.signature
    );
    let age = chrono::Utc::now().timestamp() - received.timestamp;
    assert!((0..300).contains(&age), "timestamp {age} s old");
    assert!(received.id.starts_with("msg_"), "{}", received.id);
}

async fn subscribe(app: &TestApp, url: &str, events: Value) -> CreatedWebhook {
    expect_json(
        app.post_json(
            "/api/v1/namespaces/acme/webhooks",
            &json!({ "url": url, "events": events, "description": "CI" }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await
}

async fn push_settled(app: &TestApp, reference: &str, seed: u8) {
    expect_json::<Value>(
        app.push(reference, &[("w.bin", &bytes(4096, seed))]).await,
        StatusCode::CREATED,
    )
    .await;
    app.settled_version(reference).await;
}

async fn set_alias(app: &TestApp, alias: &str, version: &str) {
    let response = app
        .request(
            Method::PUT,
            &format!("/api/v1/models/acme/m/aliases/{alias}"),
        )
        .json(&json!({ "version": version }))
        .send()
        .await
        .unwrap();
    expect_json::<Value>(response, StatusCode::OK).await;
}

async fn wait_for(
    state: &ReceiverState,
    what: &str,
    done: impl Fn(&[Received]) -> bool,
) -> Vec<Received> {
    for _ in 0..300 {
        let received = state.received.lock().unwrap().clone();
        if done(&received) {
            return received;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "timed out waiting for {what}: {:#?}",
        state.received.lock().unwrap()
    );
}

async fn deliveries(app: &TestApp, id: &str) -> WebhookDeliveries {
    expect_json(
        app.get(&format!(
            "/api/v1/namespaces/acme/webhooks/{id}/deliveries?limit=200"
        ))
        .await,
        StatusCode::OK,
    )
    .await
}

fn kind_and_version(r: &Received) -> (String, String) {
    (
        r.body["type"].as_str().unwrap().to_owned(),
        r.body["data"]["version"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn signed_in_order_and_retried_after_the_receiver_was_down(app: TestApp) {
    push_settled(&app, "acme/seed:1", 1).await;
    // Nothing listens there yet: the first try cannot connect.
    let address = free_address();
    let url = format!("http://{address}/hook");
    let created = subscribe(
        &app,
        &url,
        json!([
            "version.ready",
            "alias.moved",
            "version.deleted",
            "manifest.published"
        ]),
    )
    .await;
    assert!(created.secret.starts_with("whsec_"));
    let id = created.subscription.id.clone();
    push_settled(&app, "acme/m:1", 2).await;
    set_alias(&app, "production", "1").await;
    push_settled(&app, "acme/m:2", 3).await;
    set_alias(&app, "production", "2").await;
    let response = app
        .request(Method::DELETE, "/api/v1/models/acme/m/versions/1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    let first_try_failed = async {
        for _ in 0..100 {
            let log = deliveries(&app, &id).await;
            if let Some(oldest) = log.deliveries.last()
                && let Some(attempt) = oldest.log.first()
            {
                return attempt.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no attempt was made");
    }
    .await;
    assert_eq!(first_try_failed.status, None);
    assert!(
        first_try_failed
            .error
            .as_deref()
            .unwrap()
            .contains("could not connect"),
        "{first_try_failed:?}"
    );

    let (_, receiver) = start_receiver(address);
    let received = wait_for(&receiver, "the deletion, the last event", |r| {
        r.iter().any(|r| r.body["type"] == "version.deleted")
    })
    .await;
    for r in &received {
        verify(&created.secret, r);
    }
    // Every event of the model, each once (at least once: none was lost while the receiver was down).
    let log = deliveries(&app, &id).await;
    assert!(
        log.deliveries
            .iter()
            .all(|d| d.state == WebhookDeliveryState::Delivered),
        "{log:#?}"
    );
    let sent_order: Vec<String> = log
        .deliveries
        .iter()
        .rev()
        .map(|d| d.event_id.clone())
        .collect();
    let received_order: Vec<String> = received.iter().map(|r| r.id.clone()).collect();
    assert_eq!(
        received_order, sent_order,
        "one model's events arrive in the order they were recorded"
    );
    let oldest = log.deliveries.last().unwrap();
    assert_eq!(oldest.attempts, 2, "{oldest:#?}");
    assert_eq!(oldest.log[0].status, Some(204));
    // The order they happened in.
    let kinds: Vec<(String, String)> = received.iter().map(kind_and_version).collect();
    let position = |kind: &str, version: &str| {
        kinds
            .iter()
            .position(|(k, v)| k == kind && v == version)
            .unwrap_or_else(|| panic!("no {kind} of {version} in {kinds:?}"))
    };
    assert!(position("version.ready", "1") < position("alias.moved", "1"));
    assert!(position("alias.moved", "1") < position("version.ready", "2"));
    assert!(position("version.ready", "2") < position("alias.moved", "2"));
    assert!(position("alias.moved", "2") < position("version.deleted", "1"));
    let moved = &received[position("alias.moved", "2")].body["data"];
    assert_eq!(
        (
            moved["namespace"].as_str(),
            moved["model"].as_str(),
            moved["alias"].as_str()
        ),
        (Some("acme"), Some("m"), Some("production"))
    );
    assert_eq!(moved["from_version"], "1");
    assert!(
        received
            .iter()
            .any(|r| r.body["type"] == "manifest.published"
                && r.body["data"]["alias"] == "production")
    );
    assert!(
        received.iter().all(|r| r.body["data"]["model"] != "seed"),
        "seed was pushed before the subscription"
    );

    // Redelivery sends the same event again, under its id.
    let again = &log.deliveries[0];
    let redelivered: Value = expect_json(
        app.post_json(
            &format!(
                "/api/v1/namespaces/acme/webhooks/{id}/deliveries/{}/redeliver",
                again.id
            ),
            &json!({}),
        )
        .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(redelivered["state"], "pending");
    let count = received.len();
    let received = wait_for(&receiver, "the redelivery", |r| r.len() > count).await;
    assert_eq!(received.last().unwrap().id, again.event_id);
    verify(&created.secret, received.last().unwrap());
}

async fn a_failing_subscription_is_disabled_and_can_be_enabled(app: TestApp) {
    push_settled(&app, "acme/seed:1", 1).await;
    let (address, receiver) = start_receiver("127.0.0.1:0".parse().unwrap());
    *receiver.status.lock().unwrap() = Some(500);
    let created = subscribe(
        &app,
        &format!("http://{address}/hook"),
        json!(["version.ready"]),
    )
    .await;
    let id = created.subscription.id;
    // Three models, three subjects: three first tries, each failing.
    for (n, model) in ["a", "b", "c"].iter().enumerate() {
        push_settled(&app, &format!("acme/{model}:1"), 10 + n as u8).await;
    }
    let mut subscription: WebhookSubscription;
    let mut waited = 0;
    loop {
        subscription = expect_json(
            app.get(&format!("/api/v1/namespaces/acme/webhooks/{id}"))
                .await,
            StatusCode::OK,
        )
        .await;
        if !subscription.enabled || waited > 100 {
            break;
        }
        waited += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!subscription.enabled, "{subscription:?}");
    assert_eq!(subscription.consecutive_failures, 3);
    assert!(
        subscription
            .disabled_reason
            .as_deref()
            .unwrap()
            .contains("3 failed deliveries")
    );
    let log = deliveries(&app, &id).await;
    let attempt = &log.deliveries.last().unwrap().log[0];
    assert_eq!(attempt.status, Some(500));
    assert_eq!(attempt.response.as_deref(), Some("broken on purpose"));
    let audit: Value = expect_json(
        app.get("/api/v1/audit?action=webhook.disable").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(audit.as_array().unwrap().len(), 1, "{audit}");
    // Fixed and enabled again: what waited is sent.
    *receiver.status.lock().unwrap() = None;
    let response = app
        .request(
            Method::PATCH,
            &format!("/api/v1/namespaces/acme/webhooks/{id}"),
        )
        .json(&json!({ "enabled": true }))
        .send()
        .await
        .unwrap();
    let enabled: WebhookSubscription = expect_json(response, StatusCode::OK).await;
    assert!(enabled.enabled && enabled.consecutive_failures == 0);
    for model in ["a", "b", "c"] {
        let response = app
            .request(
                Method::POST,
                &format!(
                    "/api/v1/namespaces/acme/webhooks/{id}/deliveries/{}/redeliver",
                    deliveries(&app, &id)
                        .await
                        .deliveries
                        .iter()
                        .find(|d| d.subject == format!("acme/{model}"))
                        .unwrap()
                        .id
                ),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    wait_for(&receiver, "the three events after the fix", |r| {
        r.iter()
            .filter(|r| r.body["type"] == "version.ready")
            .count()
            >= 6
    })
    .await;
}

fn disable_after_three(settings: &mut kiln_server::config::Settings) {
    settings.webhooks.disable_after_failures = 3;
}

async fn spawn_disabling(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, disable_after_three).await
}

#[actix_web::test]
async fn an_event_committed_before_the_server_stopped_is_delivered_after_it_restarts() {
    // A server that records events but never sends them: what a crash between commit and send leaves.
    let app = TestApp::spawn_with(Backend::Embedded, |s| s.webhooks.deliver = false).await;
    push_settled(&app, "acme/seed:1", 1).await;
    let (address, receiver) = start_receiver("127.0.0.1:0".parse().unwrap());
    let created = subscribe(
        &app,
        &format!("http://{address}/hook"),
        json!(["version.ready"]),
    )
    .await;
    push_settled(&app, "acme/m:1", 2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(receiver.received.lock().unwrap().is_empty());
    let app = app.restart_with(|s| s.webhooks.deliver = true).await;
    let received = wait_for(&receiver, "the event recorded before the restart", |r| {
        !r.is_empty()
    })
    .await;
    assert_eq!(received.len(), 1, "{received:#?}");
    assert_eq!(
        kind_and_version(&received[0]),
        ("version.ready".to_owned(), "1".to_owned())
    );
    verify(&created.secret, &received[0]);
    drop(app);
}

#[actix_web::test]
async fn deliveries_into_the_servers_network_are_refused() {
    let app = TestApp::spawn_with(Backend::Embedded, |s| {
        s.webhooks.allow_private_targets = false
    })
    .await;
    push_settled(&app, "acme/seed:1", 1).await;
    for url in [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://127.0.0.1:5432/",
        "http://localhost:8080/hook",
        "http://[::ffff:10.0.0.1]/hook",
        "http://[fd00::1]/hook",
    ] {
        let body = expect_error(
            app.post_json(
                "/api/v1/namespaces/acme/webhooks",
                &json!({ "url": url, "events": ["version.ready"] }),
            )
            .await,
            StatusCode::BAD_REQUEST,
            "invalid_webhook_url",
        )
        .await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("KILN_WEBHOOK_ALLOW_PRIVATE_TARGETS"),
            "{body}"
        );
    }
    expect_error(
        app.post_json(
            "/api/v1/namespaces/acme/webhooks",
            &json!({ "url": "file:///etc/passwd", "events": ["version.ready"] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_webhook_url",
    )
    .await;
    expect_error(
        app.post_json(
            "/api/v1/namespaces/acme/webhooks",
            &json!({ "url": "https://example.com/", "events": [] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_webhook",
    )
    .await;
    expect_error(
        app.post_json(
            "/api/v1/namespaces/acme/webhooks",
            &json!({ "url": "https://example.com/", "events": ["version.eaten"] }),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_json",
    )
    .await;
}

// Three failures in a row disable a subscription here; the first scenario fails once at most.
crate::on_every_backend!(
    spawn = super::spawn_disabling;
    signed_in_order_and_retried_after_the_receiver_was_down,
    a_failing_subscription_is_disabled_and_can_be_enabled,
);
