//! Every listing pages by cursor: walked two at a time through its `Link: <...>; rel="next"` headers it
//! gives exactly what one big page gives, in the same order, and items added while it is walked neither
//! shift nor repeat the pages.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, expect_json};

/// The `Link: <...>; rel="next"` target, when the page has one.
fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    assert!(link.ends_with("rel=\"next\""), "{link}");
    let target = link.strip_prefix('<')?.split_once('>')?.0;
    Some(target.to_owned())
}

/// Every item of a listing, following the next links from `path` (which sets a small limit), and how
/// many pages that took.
async fn walk(app: &TestApp, path: &str) -> (Vec<Value>, usize) {
    let (mut items, mut pages, mut path) = (Vec::new(), 0, path.to_owned());
    loop {
        let response = app.get(&path).await;
        let next = next_link(&response);
        let page: Vec<Value> = expect_json(response, StatusCode::OK).await;
        assert!(page.len() <= 2, "{path}: a page longer than its limit");
        items.extend(page);
        pages += 1;
        match next {
            Some(next) => path = next,
            None => return (items, pages),
        }
    }
}

/// The listing at `path` walked two at a time equals it in one page of up to 1000, and takes several pages.
async fn pages_equal_one_page(app: &TestApp, path: &str, at_least: usize) {
    let join = if path.contains('?') { '&' } else { '?' };
    let whole: Vec<Value> = expect_json(
        app.get(&format!("{path}{join}limit=1000")).await,
        StatusCode::OK,
    )
    .await;
    assert!(whole.len() >= at_least, "{path}: {whole:?}");
    let (walked, pages) = walk(app, &format!("{path}{join}limit=2")).await;
    assert_eq!(walked, whole, "{path}: pages differ from one page");
    assert!(pages >= whole.len().div_ceil(2), "{path}");
    for bad in [
        "cursor=not-a-cursor",
        "cursor=WzFd",
        "limit=0",
        "limit=1001",
    ] {
        let response = app.get(&format!("{path}{join}{bad}")).await;
        expect_error(response, StatusCode::BAD_REQUEST, "invalid_page").await;
    }
}

async fn push(app: &TestApp, reference: &str) {
    expect_json::<Value>(
        app.push(reference, &[("w.bin", reference.as_bytes())])
            .await,
        StatusCode::CREATED,
    )
    .await;
}

async fn put_json(app: &TestApp, path: &str, body: Value) {
    let request = app.request(Method::PUT, path).json(&body);
    expect_json::<Value>(request.send().await.unwrap(), StatusCode::OK).await;
}

async fn create(app: &TestApp, path: &str, body: Value) -> Value {
    expect_json(app.post_json(path, &body).await, StatusCode::CREATED).await
}

async fn every_listing_pages_by_cursor(app: TestApp) {
    for version in ["1", "2", "3", "4", "5"] {
        push(&app, &format!("acme/m:{version}")).await;
    }
    for version in ["1", "2", "3"] {
        app.settled_version(&format!("acme/m:{version}")).await;
    }
    for (alias, version) in [("a", "1"), ("b", "2"), ("c", "3"), ("a", "2"), ("a", "3")] {
        let path = format!("/api/v1/models/acme/m/aliases/{alias}");
        put_json(&app, &path, json!({ "version": version })).await;
    }
    for name in ["ns-b", "ns-c", "ns-d"] {
        create(&app, "/api/v1/namespaces", json!({ "name": name })).await;
    }
    for user in ["ursula", "victor", "wendy"] {
        let body = json!({ "name": user, "password": "a long enough password" });
        create(&app, "/api/v1/users", body).await;
        let path = format!("/api/v1/namespaces/acme/members/{user}");
        put_json(&app, &path, json!({ "role": "reader" })).await;
    }
    for token in ["t1", "t2", "t3"] {
        create(&app, "/api/v1/tokens", json!({ "name": token })).await;
    }
    for runner in ["r1", "r2", "r1"] {
        let created = create(
            &app,
            "/api/v1/tokens",
            json!({ "name": runner, "scopes": ["runner"] }),
        )
        .await;
        let registration = json!({
            "name": runner, "device": "cpu", "device_name": "test CPU", "memory_bytes": null,
            "driver": null, "engine": "test", "kiln_version": "0", "capabilities": ["benchmark"],
            "threads": 1
        });
        let register = app
            .anonymous(Method::POST, "/api/v1/runners")
            .bearer_auth(created["token"].as_str().unwrap())
            .json(&registration);
        expect_json::<Value>(register.send().await.unwrap(), StatusCode::CREATED).await;
    }

    for (path, at_least) in [
        ("/api/v1/models/acme/m/versions", 5),
        ("/api/v1/models/acme/m/aliases", 3),
        ("/api/v1/models/acme/m/aliases/a/history", 3),
        ("/api/v1/namespaces", 4),
        ("/api/v1/namespaces/acme/members", 4),
        ("/api/v1/users", 4),
        ("/api/v1/tokens", 6),
        ("/api/v1/runners", 3),
        ("/api/v1/audit", 20),
        ("/api/v1/audit?target=acme/m@a", 3),
        ("/api/v1/audit?action=alias.set", 5),
    ] {
        pages_equal_one_page(&app, path, at_least).await;
    }
    // The audit log's filters hold together: who, what, about what.
    let entries: Vec<Value> = expect_json(
        app.get("/api/v1/audit?action=alias.set&actor=admin&target=acme/m@a&limit=1000")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(entries.len(), 3, "{entries:?}");
    assert!(
        entries.iter().all(|e| e["action"] == "alias.set"
            && e["actor"] == "admin"
            && e["target"] == "acme/m@a")
    );
}

async fn versions_pushed_while_paging_neither_shift_nor_repeat_pages(app: TestApp) {
    for version in ["1", "2", "3", "4"] {
        push(&app, &format!("acme/m:{version}")).await;
    }
    let first = app.get("/api/v1/models/acme/m/versions?limit=2").await;
    let next = next_link(&first).expect("a full page links the next");
    let first: Vec<Value> = expect_json(first, StatusCode::OK).await;
    push(&app, "acme/m:5").await;
    let (rest, _) = walk(&app, &next).await;
    let seen: Vec<&str> = first
        .iter()
        .chain(&rest)
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(
        seen,
        ["4", "3", "2", "1"],
        "newest first, from where it was"
    );

    let detail: Value = expect_json(app.get("/api/v1/models/acme/m").await, StatusCode::OK).await;
    assert_eq!(detail["version_count"], 5);
    assert_eq!(detail["versions"].as_array().unwrap().len(), 5);
}

crate::on_every_backend!(
    every_listing_pages_by_cursor,
    versions_pushed_while_paging_neither_shift_nor_repeat_pages,
);
