//! Every API route, called by every kind of caller, answers with exactly the status the access rules
//! promise (OWASP API Top 10: broken object-level, function-level authorization and authentication).
//!
//! A new route joins [`cases`] with one line; a test fails while any route is missing from it.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kiln_core::Sha256Digest;
use kiln_server::auth::jwt::{AUDIENCE, Claims, ISSUER};
use kiln_server::db::repos::jwt_keys;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Expired,
    OtherKey,
    AlgNone,
    WrongAudience,
    Revoked,
    /// Reader of another namespace, nothing in `acme`.
    Outsider,
    /// Writer in `acme`.
    Writer,
    Admin,
    Runner,
}

const CALLERS: [Caller; 10] = [
    Caller::Anonymous,
    Caller::Expired,
    Caller::OtherKey,
    Caller::AlgNone,
    Caller::WrongAudience,
    Caller::Revoked,
    Caller::Outsider,
    Caller::Writer,
    Caller::Admin,
    Caller::Runner,
];

impl Caller {
    fn slug(self) -> &'static str {
        match self {
            Caller::Anonymous => "anonymous",
            Caller::Expired => "expired",
            Caller::OtherKey => "other-key",
            Caller::AlgNone => "alg-none",
            Caller::WrongAudience => "wrong-aud",
            Caller::Revoked => "revoked",
            Caller::Outsider => "outsider",
            Caller::Writer => "writer",
            Caller::Admin => "admin",
            Caller::Runner => "runner",
        }
    }
}

mod table;

use table::{cases, expected};

/// The callers' credentials (None for anonymous), and the fixtures every case relies on.
async fn setup(app: &TestApp) -> Vec<(Caller, Option<String>)> {
    let post = |path: &'static str, body: Value| async move { app.post_json(path, &body).await };
    expect_json::<Value>(
        post("/api/v1/namespaces", json!({ "name": "acme" })).await,
        StatusCode::CREATED,
    )
    .await;
    expect_json::<Value>(
        post("/api/v1/namespaces", json!({ "name": "other" })).await,
        StatusCode::CREATED,
    )
    .await;
    for caller in CALLERS {
        for prefix in ["temp", "gone"] {
            let user = format!("{prefix}-{}", caller.slug());
            expect_json::<Value>(
                post("/api/v1/users", json!({ "name": user })).await,
                StatusCode::CREATED,
            )
            .await;
            let member = app.request(
                Method::PUT,
                &format!("/api/v1/namespaces/acme/members/{user}"),
            );
            let member = member.json(&json!({ "role": "reader" }));
            expect_json::<Value>(member.send().await.unwrap(), StatusCode::OK).await;
        }
    }
    for (name, namespace, role) in [
        ("outsider", "other", "reader"),
        ("writer", "acme", "writer"),
    ] {
        let body = json!({ "name": name, "password": "a long enough password" });
        expect_json::<Value>(post("/api/v1/users", body).await, StatusCode::CREATED).await;
        let member = app
            .request(
                Method::PUT,
                &format!("/api/v1/namespaces/{namespace}/members/{name}"),
            )
            .json(&json!({ "role": role }));
        expect_json::<Value>(member.send().await.unwrap(), StatusCode::OK).await;
    }
    for model in ["secret", "open"] {
        expect_json::<Value>(
            app.push(&format!("acme/{model}:1"), &[("w.bin", b"weights")])
                .await,
            StatusCode::CREATED,
        )
        .await;
        app.settled_version(&format!("acme/{model}:1")).await;
        for caller in CALLERS {
            let doomed = format!("acme/{model}:ocidoomed-{}", caller.slug());
            expect_json::<Value>(
                app.push(&doomed, &[("w.bin", b"weights")]).await,
                StatusCode::CREATED,
            )
            .await;
            let doomed = format!("acme/{model}:doomed-{}", caller.slug());
            expect_json::<Value>(
                app.push(&doomed, &[("w.bin", b"weights")]).await,
                StatusCode::CREATED,
            )
            .await;
        }
    }
    // A public model per caller for the model deletion case.
    for caller in CALLERS {
        let doomed = format!("acme/doomed-{}", caller.slug());
        expect_json::<Value>(
            app.push(&format!("{doomed}:1"), &[("w.bin", b"weights")])
                .await,
            StatusCode::CREATED,
        )
        .await;
        let public = app
            .request(Method::PUT, &format!("/api/v1/models/{doomed}/visibility"))
            .json(&json!({ "visibility": "public" }));
        expect_json::<Value>(public.send().await.unwrap(), StatusCode::OK).await;
    }
    // The blob every caller commits: held by a public version, so anyone who may write can use it.
    expect_json::<Value>(
        app.push("acme/open:shared-source", &[("w.bin", b"shared")])
            .await,
        StatusCode::CREATED,
    )
    .await;
    let visibility = app
        .request(Method::PUT, "/api/v1/models/acme/open/visibility")
        .json(&json!({ "visibility": "public" }));
    expect_json::<Value>(visibility.send().await.unwrap(), StatusCode::OK).await;

    let token_of = |user: &'static str, scopes: Value| async move {
        let login = app.anonymous(Method::POST, "/api/v1/auth/token");
        let access: Value = expect_json(
            login
                .json(&json!({ "username": user, "password": "a long enough password" }))
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        let create = app
            .anonymous(Method::POST, "/api/v1/tokens")
            .bearer_auth(access["access_token"].as_str().unwrap());
        let created: Value = expect_json(
            create
                .json(&json!({ "name": "matrix", "scopes": scopes }))
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        (
            created["token"].as_str().unwrap().to_owned(),
            created["id"].as_str().unwrap().to_owned(),
        )
    };
    let (outsider, _) = token_of("outsider", json!(["admin"])).await;
    let (writer, _) = token_of("writer", json!(["write"])).await;
    let (revoked, revoked_id) = token_of("writer", json!(["write"])).await;
    let response = app
        .request(Method::DELETE, &format!("/api/v1/tokens/{revoked_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let runner: Value = expect_json(
        app.post_json(
            "/api/v1/tokens",
            &json!({ "name": "runner", "scopes": ["runner"] }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;

    let (forged_expired, forged_other_key, forged_none, forged_audience) = forged_tokens(app).await;
    vec![
        (Caller::Anonymous, None),
        (Caller::Expired, Some(forged_expired)),
        (Caller::OtherKey, Some(forged_other_key)),
        (Caller::AlgNone, Some(forged_none)),
        (Caller::WrongAudience, Some(forged_audience)),
        (Caller::Revoked, Some(revoked)),
        (Caller::Outsider, Some(outsider)),
        (Caller::Writer, Some(writer)),
        (Caller::Admin, Some(crate::harness::ADMIN_TOKEN.to_owned())),
        (
            Caller::Runner,
            Some(runner["token"].as_str().unwrap().to_owned()),
        ),
    ]
}

/// Access tokens for the administrator that must all be refused: expired, signed by a key the server does
/// not have (under the server's key id), unsigned (`alg: none`), and meant for another audience.
async fn forged_tokens(app: &TestApp) -> (String, String, String, String) {
    let keys = app
        .db
        .run(|conn| Ok(jwt_keys::usable(conn, chrono::Utc::now().naive_utc())?))
        .await
        .unwrap();
    let key = &keys[0];
    let me: Value = expect_json(app.get("/api/v1/me").await, StatusCode::OK).await;
    assert_eq!(me["name"], "admin");
    let admin_id = app
        .db
        .run(|conn| Ok(kiln_server::db::repos::users::find_by_name(conn, "admin")?))
        .await
        .unwrap()
        .unwrap()
        .id;
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str, issued: i64| Claims {
        iss: ISSUER.to_owned(),
        aud: aud.to_owned(),
        sub: admin_id.clone(),
        iat: issued,
        nbf: issued,
        exp: issued + 900,
        scope: "admin".to_owned(),
        tid: None,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    let server_key = EncodingKey::from_ed_der(&key.private_key);
    let sign =
        |claims: &Claims, key: &EncodingKey| jsonwebtoken::encode(&header, claims, key).unwrap();

    // Sanity: a token made this way with the right claims is accepted, so the refusals below are real.
    let good = sign(&claims(AUDIENCE, now), &server_key);
    let accepted = app
        .anonymous(Method::GET, "/api/v1/me")
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);

    let expired = sign(&claims(AUDIENCE, now - 7200), &server_key);
    let other = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let other_key = sign(
        &claims(AUDIENCE, now),
        &EncodingKey::from_ed_der(other.as_ref()),
    );
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none_header =
        b64.encode(json!({ "alg": "none", "typ": "JWT", "kid": key.kid }).to_string());
    let none_claims = b64.encode(serde_json::to_vec(&claims(AUDIENCE, now)).unwrap());
    let unsigned = format!("{none_header}.{none_claims}.");
    let audience = sign(&claims("another-service", now), &server_key);
    (expired, other_key, unsigned, audience)
}

fn fill(template: &str, caller: Caller) -> String {
    let own = format!("blob for {}", caller.slug());
    template
        .replace("{who}", caller.slug())
        .replace("{digest}", &Sha256Digest::of(own.as_bytes()).to_string())
        .replace("{size}", &own.len().to_string())
        .replace("{shared}", &Sha256Digest::of(b"shared").to_string())
        .replace("{weights}", &Sha256Digest::of(b"weights").to_string())
}

async fn every_route_answers_every_caller_as_the_rules_say(app: TestApp) {
    let callers = setup(&app).await;
    let mut wrong = Vec::new();
    for case in cases() {
        for (caller, credential) in &callers {
            let mut request = app.anonymous(case.method.clone(), &fill(case.path, *caller));
            if let Some(credential) = credential {
                request = request.bearer_auth(credential);
            }
            if let Some(body) = case.body {
                let content_type = if case.path.contains("/manifests/") {
                    "application/vnd.oci.image.manifest.v1+json"
                } else {
                    "application/json"
                };
                request = request
                    .header("content-type", content_type)
                    .body(fill(body, *caller));
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let want = expected(case.needs, *caller, case.ok);
            if status != want {
                let body = response.text().await.unwrap_or_default();
                wrong.push(format!(
                    "{} {} as {:?}: got {status}, want {want}: {body}",
                    case.method, case.path, caller
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Every operation of the OpenAPI document is in the access table above, and in the server's policy table.
#[test]
fn every_route_is_in_the_access_tables() {
    let spec: Value = serde_json::from_str(include_str!("../../../openapi/openapi.json")).unwrap();
    let tested: std::collections::BTreeSet<(String, String)> = cases()
        .iter()
        .map(|c| (c.method.to_string(), c.route.to_owned()))
        .collect();
    let mut missing = Vec::new();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for method in operations.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            if !tested.contains(&(method.clone(), path.clone())) {
                missing.push(format!("{method} {path} (access test)"));
            }
            let has_rule = kiln_server::auth::policy::ROUTES
                .iter()
                .any(|(m, pattern, _)| *m == method && pattern.replace(":.+", "") == *path);
            if !has_rule {
                missing.push(format!("{method} {path} (server policy table)"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes without access rules or tests:\n{}",
        missing.join("\n")
    );
}

/// Every `/v2/` route is in the access table too.
#[test]
fn every_oci_route_is_in_the_access_table() {
    let tested: std::collections::BTreeSet<(String, String)> = cases()
        .iter()
        .map(|c| (c.method.to_string(), c.route.to_owned()))
        .collect();
    let missing: Vec<String> = kiln_server::http::oci::ROUTES
        .iter()
        .filter(|(m, route)| !tested.contains(&((*m).to_owned(), (*route).to_owned())))
        .map(|(m, route)| format!("{m} {route}"))
        .collect();
    assert!(
        missing.is_empty(),
        "/v2/ routes without access tests: {missing:?}"
    );
}

crate::on_every_backend!(every_route_answers_every_caller_as_the_rules_say);
