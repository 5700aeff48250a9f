//! Downloading files: whole, by range, with awkward names.

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{TestApp, expect_error, expect_json};

async fn files_download_whole_and_by_range(app: TestApp) {
    let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    expect_json::<Value>(
        app.push("acme/m:1", &[("weights/w.bin", &data)]).await,
        StatusCode::CREATED,
    )
    .await;
    let path = "/api/v1/models/acme/m/versions/1/files/weights/w.bin";

    let whole = app.get(path).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["content-length"], "100000");
    let etag = whole.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", kiln_core::Sha256Digest::of(&data)));
    assert!(whole.bytes().await.unwrap() == data);

    for (range, expected, content_range) in [
        ("bytes=10-19", 10..20, "bytes 10-19/100000"),
        ("bytes=99990-", 99_990..100_000, "bytes 99990-99999/100000"),
        ("bytes=-5", 99_995..100_000, "bytes 99995-99999/100000"),
    ] {
        let response = app
            .request(reqwest::Method::GET, path)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(response.headers()["content-range"], content_range);
        assert_eq!(&response.bytes().await.unwrap()[..], &data[expected]);
    }
    let response = app
        .request(reqwest::Method::GET, path)
        .header("range", "bytes=100000-")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-range"], "bytes */100000");
    expect_error(
        response,
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range_not_satisfiable",
    )
    .await;

    expect_error(
        app.get("/api/v1/models/acme/m/versions/1/files/nope.bin")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.get("/api/v1/models/acme/m/versions/2/files/weights/w.bin")
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    expect_error(
        app.get("/api/v1/models/acme/m/versions/1/files/weights/..%2F..%2Fetc")
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
}

async fn file_names_with_spaces_and_symbols_round_trip(app: TestApp) {
    let name = "my files/weights #1 (final) 100%.bin";
    expect_json::<Value>(
        app.push("acme/odd:1", &[(name, b"odd")]).await,
        StatusCode::CREATED,
    )
    .await;
    let mut url = reqwest::Url::parse(&app.url("/")).unwrap();
    url.path_segments_mut()
        .unwrap()
        .pop_if_empty()
        .extend([
            "api", "v1", "models", "acme", "odd", "versions", "1", "files",
        ])
        .extend(name.split('/'));
    let response = app
        .http
        .get(url)
        .bearer_auth(crate::harness::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(&response.bytes().await.unwrap()[..], b"odd");
}

crate::on_every_backend!(
    files_download_whole_and_by_range,
    file_names_with_spaces_and_symbols_round_trip
);
