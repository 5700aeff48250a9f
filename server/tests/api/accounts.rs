//! Accounts beyond the access matrix: what listings reveal, key rotation, who may create namespaces by
//! pushing, and the rate limit.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_json};

async fn listings_show_only_what_the_caller_may_read(app: TestApp) {
    expect_json::<Value>(
        app.push("acme/hidden:1", &[("w.bin", b"h")]).await,
        StatusCode::CREATED,
    )
    .await;
    expect_json::<Value>(
        app.push("acme/shown:1", &[("w.bin", b"s")]).await,
        StatusCode::CREATED,
    )
    .await;
    let public = app
        .request(Method::PUT, "/api/v1/models/acme/shown/visibility")
        .json(&json!({ "visibility": "public" }));
    expect_json::<Value>(public.send().await.unwrap(), StatusCode::OK).await;

    let names = |models: Vec<Value>| {
        models
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let anonymous: Vec<Value> = expect_json(
        app.anonymous(Method::GET, "/api/v1/models")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(anonymous), ["shown"]);
    let in_acme: Vec<Value> = expect_json(
        app.anonymous(Method::GET, "/api/v1/namespaces/acme/models")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(names(in_acme), ["shown"]);
    let counts: Vec<Value> = expect_json(
        app.anonymous(Method::GET, "/api/v1/namespaces")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let acme = counts.iter().find(|n| n["name"] == "acme").unwrap();
    assert_eq!(acme["model_count"], 1, "counts include only visible models");
    let admin: Vec<Value> = expect_json(app.get("/api/v1/models").await, StatusCode::OK).await;
    assert_eq!(names(admin), ["hidden", "shown"]);
}

#[actix_web::test]
async fn a_caller_over_the_rate_limit_gets_429_with_retry_after() {
    let app = TestApp::spawn_with(crate::harness::Backend::Embedded, |s| {
        s.rate_limit_per_minute = 5
    })
    .await;
    for _ in 0..5 {
        assert_eq!(app.get("/api/v1/me").await.status(), StatusCode::OK);
    }
    let limited = app.get("/api/v1/me").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another caller has its own budget.
    assert_eq!(
        app.anonymous(Method::GET, "/api/v1/models")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

async fn rotating_the_signing_key_keeps_issued_tokens_valid(app: TestApp) {
    let exchange = |app: &TestApp| {
        let request = app
            .anonymous(Method::POST, "/api/v1/auth/token")
            .json(&json!({ "token": crate::harness::ADMIN_TOKEN }));
        async move { expect_json::<Value>(request.send().await.unwrap(), StatusCode::OK).await }
    };
    let kid_of = |jwt: &str| jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap();
    let before = exchange(&app).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated: Value = expect_json(
        app.request(Method::POST, "/api/v1/admin/jwt-keys/rotate")
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    let after = exchange(&app).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        kid_of(&before),
        kid_of(&after),
        "new tokens are signed with the new key"
    );
    assert_eq!(
        rotated["kid"],
        kid_of(&after),
        "the answer names the key that signs from now on"
    );
    for jwt in [&before, &after] {
        let me = app
            .anonymous(Method::GET, "/api/v1/me")
            .bearer_auth(jwt)
            .send()
            .await
            .unwrap();
        assert_eq!(
            me.status(),
            StatusCode::OK,
            "tokens signed before and after rotation both verify"
        );
    }
}

async fn a_push_creates_a_namespace_only_for_administrators(app: TestApp) {
    let user = json!({ "name": "carol", "password": "carol's long password" });
    expect_json::<Value>(
        app.post_json("/api/v1/users", &user).await,
        StatusCode::CREATED,
    )
    .await;
    let login = app.anonymous(Method::POST, "/api/v1/auth/token");
    let login = login.json(&json!({ "username": "carol", "password": "carol's long password" }));
    let jwt =
        expect_json::<Value>(login.send().await.unwrap(), StatusCode::OK).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
    let digest = app.upload_blob_as(&jwt, b"model").await;
    let commit =
        json!({ "version": "1", "files": [{ "path": "m.bin", "digest": digest, "size": 5 }] });
    let refused = app
        .anonymous(Method::POST, "/api/v1/models/newco/m/versions")
        .bearer_auth(&jwt)
        .json(&commit);
    let body = crate::harness::expect_error(
        refused.send().await.unwrap(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("kiln namespace create newco"),
        "{body}"
    );
    let own = app
        .anonymous(Method::POST, "/api/v1/models/carol/m/versions")
        .bearer_auth(&jwt)
        .json(&commit);
    expect_json::<Value>(own.send().await.unwrap(), StatusCode::CREATED).await;

    expect_json::<Value>(
        app.post_json("/api/v1/models/newco/m/versions", &commit)
            .await,
        StatusCode::CREATED,
    )
    .await;
    let members: Value = expect_json(
        app.get("/api/v1/namespaces/newco/members").await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        members,
        json!([{ "name": "admin", "role": "admin" }]),
        "the pusher owns the namespace it created"
    );
}

async fn a_token_cannot_mint_or_revoke_a_broader_token(app: TestApp) {
    let create = |token: String, scopes: Value| {
        let request = app
            .anonymous(Method::POST, "/api/v1/tokens")
            .bearer_auth(token);
        request
            .json(&json!({ "name": "x", "scopes": scopes }))
            .send()
    };
    let admin = crate::harness::ADMIN_TOKEN.to_owned();
    let read: Value = expect_json(
        create(admin.clone(), json!(["read"])).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let read_token = read["token"].as_str().unwrap().to_owned();
    let widened = create(read_token.clone(), json!(["admin"])).await.unwrap();
    crate::harness::expect_error(widened, StatusCode::FORBIDDEN, "forbidden").await;
    let scoped = create(read_token.clone(), json!(["write:admin"]))
        .await
        .unwrap();
    crate::harness::expect_error(scoped, StatusCode::FORBIDDEN, "forbidden").await;
    expect_json::<Value>(
        create(read_token.clone(), json!(["read:admin"]))
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;

    let broad: Value = expect_json(
        create(admin, json!(["admin"])).await.unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let revoke = app
        .anonymous(
            Method::DELETE,
            &format!("/api/v1/tokens/{}", broad["id"].as_str().unwrap()),
        )
        .bearer_auth(&read_token);
    crate::harness::expect_error(
        revoke.send().await.unwrap(),
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

/// An outside probe made the handler panic with 100000000 days (a date past chrono's range) and got a year
/// RFC 3339 cannot write with 3000000: lifetimes are 1 day to 10 years, and every expiry is RFC 3339.
async fn token_lifetimes_are_bounded_and_expiries_are_rfc3339(app: TestApp) {
    for days in [0u64, 3651, 3_000_000, 100_000_000, u64::from(u32::MAX)] {
        let response = app
            .request(Method::POST, "/api/v1/tokens")
            .json(&json!({ "name": "long", "expires_in_days": days }))
            .send()
            .await
            .unwrap();
        crate::harness::expect_error(response, StatusCode::BAD_REQUEST, "invalid_expiry").await;
    }
    let longest: Value = expect_json(
        app.request(Method::POST, "/api/v1/tokens")
            .json(&json!({ "name": "longest", "expires_in_days": 3650 }))
            .send()
            .await
            .unwrap(),
        StatusCode::CREATED,
    )
    .await;
    let expires_at = longest["expires_at"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(expires_at)
        .unwrap_or_else(|e| panic!("{expires_at}: {e}"));
}

/// JSON Schema's `integer` is any number without a fraction, so the document promises `2.0` works; a
/// token's scopes are bounded in the document and the server alike.
async fn whole_numbers_in_either_spelling_and_bounded_scopes(app: TestApp) {
    let created: Value = expect_json(
        app.post_json(
            "/api/v1/tokens",
            &json!({ "name": "float-days", "expires_in_days": 2.0 }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    assert!(created["expires_at"].is_string(), "{created}");
    let fraction = app
        .post_json(
            "/api/v1/tokens",
            &json!({ "name": "half", "expires_in_days": 2.5 }),
        )
        .await;
    crate::harness::expect_error(fraction, StatusCode::BAD_REQUEST, "invalid_json").await;
    let scopes = vec!["read"; 17];
    let many = app
        .post_json(
            "/api/v1/tokens",
            &json!({ "name": "many", "scopes": scopes }),
        )
        .await;
    crate::harness::expect_error(many, StatusCode::BAD_REQUEST, "invalid_scope").await;
}

async fn knowing_a_digest_gives_no_access_to_the_bytes(app: TestApp) {
    // The administrator keeps a private model; dave learns the digest of its weights somehow.
    let secret = b"private weights".to_vec();
    expect_json::<Value>(
        app.push("admin/vault:1", &[("w.bin", &secret)]).await,
        StatusCode::CREATED,
    )
    .await;
    let digest = kiln_core::Sha256Digest::of(&secret);
    let user = json!({ "name": "dave", "password": "dave's long password" });
    expect_json::<Value>(
        app.post_json("/api/v1/users", &user).await,
        StatusCode::CREATED,
    )
    .await;
    let login = app.anonymous(Method::POST, "/api/v1/auth/token");
    let login = login.json(&json!({ "username": "dave", "password": "dave's long password" }));
    let jwt =
        expect_json::<Value>(login.send().await.unwrap(), StatusCode::OK).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();

    // To dave the blob is missing, whatever size he claims; the real size is not revealed.
    let missing = app
        .anonymous(Method::POST, "/api/v1/blobs/missing")
        .bearer_auth(&jwt);
    let missing: Value = expect_json(
        missing
            .json(&json!({ "digests": [digest] }))
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(missing["missing"], json!([digest]));
    for size in [1, secret.len()] {
        let steal = json!({ "version": "1", "files": [{ "path": "w.bin", "digest": digest, "size": size }] });
        let commit = app
            .anonymous(Method::POST, "/api/v1/models/dave/loot/versions")
            .bearer_auth(&jwt)
            .json(&steal);
        let body = crate::harness::expect_error(
            commit.send().await.unwrap(),
            StatusCode::BAD_REQUEST,
            "missing_blobs",
        )
        .await;
        assert!(
            !body.to_string().contains(&secret.len().to_string()) || size == secret.len(),
            "{body}"
        );
    }
    // Uploading the bytes proves he has them; then he may use the blob (stored once all the same).
    assert_eq!(app.upload_blob_as(&jwt, &secret).await, digest);
    let own = json!({ "version": "1", "files": [{ "path": "w.bin", "digest": digest, "size": secret.len() }] });
    let commit = app
        .anonymous(Method::POST, "/api/v1/models/dave/mine/versions")
        .bearer_auth(&jwt)
        .json(&own);
    expect_json::<Value>(commit.send().await.unwrap(), StatusCode::CREATED).await;
}

crate::on_every_backend!(
    listings_show_only_what_the_caller_may_read,
    rotating_the_signing_key_keeps_issued_tokens_valid,
    a_push_creates_a_namespace_only_for_administrators,
    a_token_cannot_mint_or_revoke_a_broader_token,
    token_lifetimes_are_bounded_and_expiries_are_rfc3339,
    knowing_a_digest_gives_no_access_to_the_bytes,
    whole_numbers_in_either_spelling_and_bounded_scopes,
);
