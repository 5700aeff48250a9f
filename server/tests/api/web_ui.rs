//! The web UI over HTTP, on both backends: pages answer as the API's access rules say, a session cookie
//! signs a browser in and out, forms need the session's CSRF token, and every page carries the security
//! headers. (scripts/ui-test.sh drives the same pages in a real Chromium.)

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::harness::{ADMIN_TOKEN, TestApp, expect_json};

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `name=value` of the Set-Cookie for `name`.
fn cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// The value of the first hidden `csrf` input of a page.
fn csrf_of(html: &str) -> String {
    let start = html
        .find(r#"name="csrf" value=""#)
        .expect("a form with a CSRF token")
        + 19;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> Response {
    let mut request = browser().get(app.url(path));
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.unwrap()
}

async fn post_form(app: &TestApp, path: &str, cookies: &str, form: &[(&str, &str)]) -> Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    browser()
        .post(app.url(path))
        .header(COOKIE, cookies)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Signs in with the administrator's API token through the form; the session cookie.
async fn sign_in(app: &TestApp) -> String {
    let form = get(app, "/sign-in", None).await;
    let sign_in_cookie = cookie(&form, "kiln_sign_in").expect("the form sets its CSRF cookie");
    let csrf = csrf_of(&form.text().await.unwrap());
    let signed_in = post_form(
        app,
        "/sign-in",
        &sign_in_cookie,
        &[("csrf", &csrf), ("token", ADMIN_TOKEN), ("next", "/")],
    )
    .await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let set = signed_in
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    cookie(&signed_in, "kiln_session").expect("a session cookie")
}

async fn pages_follow_the_access_rules_and_sessions(app: TestApp) {
    expect_json::<Value>(
        app.push("acme/hidden:1", &[("w.bin", b"private bytes")])
            .await,
        StatusCode::CREATED,
    )
    .await;

    let home = get(&app, "/", None).await;
    assert_eq!(home.status(), StatusCode::OK);
    let csp = home.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(home.headers()["x-content-type-options"], "nosniff");
    assert!(
        home.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(!home.text().await.unwrap().contains("acme/hidden"));
    for path in ["/models/acme/hidden", "/models/acme/hidden/versions/1"] {
        assert_eq!(
            get(&app, path, None).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    let tokens = get(&app, "/tokens", None).await;
    assert_eq!(
        tokens.status(),
        StatusCode::SEE_OTHER,
        "signing in is asked for"
    );
    assert_eq!(tokens.headers()[LOCATION], "/sign-in");

    let anonymous_usage = get(&app, "/namespaces/acme/usage", None).await;
    assert_ne!(
        anonymous_usage.status(),
        StatusCode::OK,
        "usage is for members"
    );

    let session = sign_in(&app).await;
    let page = get(&app, "/models/acme/hidden", Some(&session)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("acme/hidden"));
    assert!(
        html.contains("/namespaces/acme/usage"),
        "the model page links its namespace's storage"
    );
    let usage = get(&app, "/namespaces/acme/usage", Some(&session)).await;
    assert_eq!(usage.status(), StatusCode::OK);
    let usage = usage.text().await.unwrap();
    assert!(
        usage.contains("Storage of acme") && usage.contains(">hidden</a>"),
        "{usage}"
    );
    assert!(usage.contains("13 B"), "the model's bytes: {usage}");
    let csrf = csrf_of(&html);
    // A page's download link: the API reads the session cookie on GET.
    let file = get(
        &app,
        "/api/v1/models/acme/hidden/versions/1/files/w.bin",
        Some(&session),
    )
    .await;
    assert_eq!(file.status(), StatusCode::OK);
    assert_eq!(file.bytes().await.unwrap().as_ref(), b"private bytes");
    // ... but never for a change: only a bearer credential changes anything through the API.
    let change = browser()
        .patch(app.url("/api/v1/models/acme/hidden"))
        .header(COOKIE, &session)
        .json(&serde_json::json!({ "description": "from a cookie" }))
        .send()
        .await
        .unwrap();
    assert!(!change.status().is_success(), "{}", change.status());

    for forged in [&[][..], &[("csrf", "forged")][..]] {
        let mut form = vec![("visibility", "public")];
        form.extend_from_slice(forged);
        let refused = post_form(&app, "/models/acme/hidden/visibility", &session, &form).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(
        get(&app, "/models/acme/hidden", None).await.status(),
        StatusCode::NOT_FOUND,
        "a refused form changed nothing"
    );

    // An alias's own page has its whole history.
    app.settled_version("acme/hidden:1").await;
    let admin = app.request(
        reqwest::Method::PUT,
        "/api/v1/models/acme/hidden/aliases/prod",
    );
    let moved = admin.json(&serde_json::json!({ "version": "1" }));
    expect_json::<Value>(moved.send().await.unwrap(), StatusCode::OK).await;
    let alias = get(&app, "/models/acme/hidden/aliases/prod", Some(&session)).await;
    assert_eq!(alias.status(), StatusCode::OK);
    assert!(alias.text().await.unwrap().contains("alias-history"));
    assert_eq!(
        get(&app, "/models/acme/hidden/aliases/prod", None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let audit = get(&app, "/audit?action=model.visibility", Some(&session)).await;
    assert_eq!(audit.status(), StatusCode::OK);

    let out = post_form(&app, "/sign-out", &session, &[("csrf", &csrf)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        get(&app, "/models/acme/hidden", Some(&session))
            .await
            .status(),
        StatusCode::NOT_FOUND,
        "the signed-out cookie names no session"
    );
}

async fn a_sign_in_without_the_forms_csrf_cookie_is_refused(app: TestApp) {
    let refused = post_form(
        &app,
        "/sign-in",
        "",
        &[("csrf", "guess"), ("token", ADMIN_TOKEN)],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(cookie(&refused, "kiln_session").is_none());
}

crate::on_every_backend!(
    pages_follow_the_access_rules_and_sessions,
    a_sign_in_without_the_forms_csrf_cookie_is_refused,
);
