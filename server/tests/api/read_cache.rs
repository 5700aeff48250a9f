//! Hot reads are kept for the cache's TTL: what another replica changes is seen within it, what this
//! replica changes at once.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, expect_json};
use crate::storage_collection::bytes;

const TTL: Duration = Duration::from_millis(1000);

async fn set_alias(app: &TestApp, version: &str) {
    let response = app
        .request(Method::PUT, "/api/v1/models/acme/m/aliases/production")
        .json(&json!({ "version": version }))
        .send()
        .await
        .unwrap();
    expect_json::<Value>(response, StatusCode::OK).await;
}

async fn alias_version(app: &TestApp, token: &str) -> String {
    let response = app
        .anonymous(
            Method::GET,
            "/api/v1/models/acme/m/aliases/production/manifest",
        )
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let manifest: Value = expect_json(response, StatusCode::OK).await;
    manifest["payload"]["version"].as_str().unwrap().to_owned()
}

/// How long until `read` gives `want`, polling every 20 ms for at most 10 s.
async fn time_until<F, Fut>(want: &str, read: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if read().await == want {
            return started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("never saw {want}");
}

#[actix_web::test]
async fn an_alias_move_and_a_revoked_token_reach_every_replica_within_the_ttl() {
    let one = TestApp::spawn_with(Backend::PostgresS3, |s| s.cache_ttl = TTL).await;
    let two = one.replica().await;
    for n in 1..=2u8 {
        expect_json::<Value>(
            one.push(&format!("acme/m:{n}"), &[("w.bin", &bytes(2048, n))])
                .await,
            StatusCode::CREATED,
        )
        .await;
        one.settled_version(&format!("acme/m:{n}")).await;
    }
    let created: Value = expect_json(
        one.post_json(
            "/api/v1/tokens",
            &json!({ "name": "fleet", "scopes": ["read:acme"] }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let fleet = created["token"].as_str().unwrap().to_owned();
    set_alias(&one, "1").await;
    // Both replicas keep the alias (and the fleet's credential).
    assert_eq!(alias_version(&one, &fleet).await, "1");
    assert_eq!(alias_version(&two, &fleet).await, "1");

    let moved = Instant::now();
    set_alias(&one, "2").await;
    // The replica that moved it forgets at once; the other within the TTL.
    assert_eq!(alias_version(&one, &fleet).await, "2");
    let seen = time_until("2", || alias_version(&two, &fleet)).await;
    assert!(
        moved.elapsed() < TTL + Duration::from_millis(700),
        "seen after {seen:?}"
    );

    let id = created["id"].as_str().unwrap();
    let response = one
        .request(Method::DELETE, &format!("/api/v1/tokens/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let revoked = Instant::now();
    let refused_by = |app: &TestApp| {
        let request = app
            .anonymous(Method::GET, "/api/v1/models/acme/m/versions/1")
            .bearer_auth(&fleet);
        async move { request.send().await.unwrap().status().as_u16().to_string() }
    };
    assert_eq!(
        refused_by(&one).await,
        "401",
        "refused at once where it was revoked"
    );
    time_until("401", || refused_by(&two)).await;
    assert!(
        revoked.elapsed() < TTL + Duration::from_millis(700),
        "{:?}",
        revoked.elapsed()
    );
}

#[actix_web::test]
async fn replicas_share_one_rate_limit() {
    let one = TestApp::spawn_with(Backend::PostgresS3, |s| s.rate_limit_per_minute = 60).await;
    let two = one.replica().await;
    // The first replica counts the second at its next heartbeat (every 2 s).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let started = Instant::now();
    let mut allowed = 0;
    for n in 0..120 {
        let app = if n % 2 == 0 { &one } else { &two };
        if app.get("/api/v1/me").await.status() == StatusCode::OK {
            allowed += 1;
        }
    }
    // Each replica lets a caller 30 a minute: 60 in all, and what refills while the loop runs.
    let refill = (started.elapsed().as_secs_f64() + 1.0).ceil() as i32;
    assert!(
        (60..=60 + refill).contains(&allowed),
        "{allowed} of 120 allowed across two replicas with a limit of 60 a minute"
    );
}

#[actix_web::test]
async fn one_replica_at_a_time_takes_a_scheduled_tasks_turn() {
    let one = TestApp::spawn(Backend::PostgresS3).await;
    let two = one.replica().await;
    let period = Duration::from_secs(2);
    let turn = |app: &TestApp, holder: &'static str| {
        let schedule = app.services.schedule.clone();
        async move { schedule.take_turn("drill", holder, period).await.unwrap() }
    };
    assert!(turn(&one, "one").await);
    assert!(
        !turn(&two, "two").await,
        "the other replica waits while the lease lives"
    );
    assert!(turn(&one, "one").await, "its holder renews it");
    tokio::time::sleep(period + Duration::from_millis(200)).await;
    assert!(
        turn(&two, "two").await,
        "a holder that stopped renewing loses it"
    );
    assert!(!turn(&one, "one").await);
}
