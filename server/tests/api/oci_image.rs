//! The image form of a version (`TAG-image`): a container image whose uncompressed tar layers put the
//! files under `models/`, read through from the files' own blobs, for image volumes and modelcars.

use std::collections::BTreeMap;
use std::io::Read;

use base64::Engine;
use reqwest::header::{AUTHORIZATION, CONTENT_RANGE, RANGE};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, expect_json};

fn digest(bytes: &[u8]) -> String {
    kiln_core::Sha256Digest::of(bytes).to_string()
}

async fn get(app: &TestApp, path: &str, range: Option<&str>) -> Response {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_TOKEN}"));
    let mut request = app
        .http
        .request(Method::GET, app.url(path))
        .header(AUTHORIZATION, format!("Basic {encoded}"));
    if let Some(range) = range {
        request = request.header(RANGE, range);
    }
    request.send().await.unwrap()
}

/// The files a list of tar layers puts on disk, in order (a later layer's file wins).
fn unpack(layers: &[Vec<u8>]) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for layer in layers {
        let mut archive = tar::Archive::new(layer.as_slice());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            assert!(path.starts_with("models/"), "{path} is outside models/");
            assert_eq!(entry.header().uid().unwrap(), 0);
            assert_eq!(entry.header().mtime().unwrap(), 0, "reproducible");
            if entry.header().entry_type().is_file() {
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                files.insert(path, bytes);
            }
        }
    }
    files
}

async fn a_version_is_an_image_with_its_files_under_models(app: TestApp) {
    let long = format!("{}/weights.bin", "nested-folder".repeat(10));
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("weights.dat", vec![3u8; 70_000]),
        ("tokenizer/vocab.txt", b"a\nb\n".to_vec()),
        (&long, (0..2000u32).map(|i| i as u8).collect()),
        ("empty.txt", vec![]),
    ];
    let borrowed: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (*p, b.as_slice())).collect();
    expect_json::<Value>(
        app.push("acme/m:1.0.0", &borrowed).await,
        StatusCode::CREATED,
    )
    .await;
    app.settled_version("acme/m:1.0.0").await;
    let alias = app
        .request(Method::PUT, "/api/v1/models/acme/m/aliases/production")
        .json(&json!({ "version": "1.0.0" }));
    expect_json::<Value>(alias.send().await.unwrap(), StatusCode::OK).await;

    let response = get(&app, "/v2/acme/m/manifests/1.0.0-image", None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let pinned = response.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.bytes().await.unwrap();
    assert_eq!(digest(&body), pinned);
    let manifest: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );

    let mut layers = Vec::new();
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar");
        let at = format!("/v2/acme/m/blobs/{}", layer["digest"].as_str().unwrap());
        let bytes = get(&app, &at, None).await.bytes().await.unwrap().to_vec();
        assert_eq!(
            digest(&bytes),
            layer["digest"],
            "a layer is what its digest says"
        );
        assert_eq!(bytes.len() as u64, layer["size"].as_u64().unwrap());
        // A range across the headers, the file's bytes and the zeros comes back exactly.
        let (start, end) = (100, bytes.len() - 700);
        let part = get(&app, &at, Some(&format!("bytes={start}-{end}"))).await;
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(
            part.headers()[CONTENT_RANGE],
            format!("bytes {start}-{end}/{}", bytes.len()).as_str()
        );
        assert!(part.bytes().await.unwrap() == bytes[start..=end]);
        layers.push(bytes);
    }
    let unpacked = unpack(&layers);
    let expected: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(p, b)| (format!("models/{p}"), b.clone()))
        .collect();
    assert_eq!(
        unpacked, expected,
        "every file under models/, byte for byte"
    );

    let config: Value = get(
        &app,
        &format!(
            "/v2/acme/m/blobs/{}",
            manifest["config"]["digest"].as_str().unwrap()
        ),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let diff_ids: Vec<&Value> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["digest"])
        .collect();
    assert_eq!(
        config["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        diff_ids
    );
    assert_eq!(
        (config["os"].as_str(), config["architecture"].as_str()),
        (Some("linux"), Some("amd64"))
    );

    // The same bytes every time; the alias's image is its version's; image tags are not listed.
    let again = get(&app, "/v2/acme/m/manifests/1.0.0-image", None).await;
    assert_eq!(again.headers()["docker-content-digest"], pinned.as_str());
    let by_alias = get(&app, "/v2/acme/m/manifests/production-image", None).await;
    let by_alias: Value = by_alias.json().await.unwrap();
    assert_eq!(by_alias["layers"], manifest["layers"]);
    let tags: Value = get(&app, "/v2/acme/m/tags/list", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        tags["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| !t.as_str().unwrap().ends_with("-image")),
        "{tags}"
    );
    let unknown = get(&app, "/v2/acme/m/manifests/9.9.9-image", None).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    // A layer belongs to the repositories holding its file, no other.
    expect_json::<Value>(
        app.push("acme/other:1", &[("x.bin", b"x")]).await,
        StatusCode::CREATED,
    )
    .await;
    let elsewhere = get(
        &app,
        &format!(
            "/v2/acme/other/blobs/{}",
            manifest["layers"][0]["digest"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(elsewhere.status(), StatusCode::NOT_FOUND);
}

crate::on_every_backend!(a_version_is_an_image_with_its_files_under_models);
