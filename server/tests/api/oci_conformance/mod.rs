//! The OCI distribution-spec conformance suite (v1.1.1) reproduced request by request against `/v2/`:
//! its Pull, Push, Content Discovery and Content Management workflows, with their data shapes (image
//! manifests with unknown fields, configs, a tar+gzip layer, referrers by digest whose subject may not
//! exist, an index) and the statuses and headers it accepts. Where kiln answers differently by design
//! it is said at the step: kiln attaches each version's signed deployment manifest as one more referrer.

use base64::Engine;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp};

const OCTET: &str = "application/octet-stream";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const EMPTY: &str = "application/vnd.oci.empty.v1+json";
const NHL: &str = "application/vnd.nhl.peanut.butter.bagel";
const NBA: &str = "application/vnd.nba.strawberry.jam.croissant";

fn digest(bytes: &[u8]) -> String {
    kiln_core::Sha256Digest::of(bytes).to_string()
}

/// A client of one repository, as the suite's is (Basic credentials on every request).
struct Client<'a> {
    app: &'a TestApp,
    auth: String,
    repo: String,
}

impl<'a> Client<'a> {
    fn new(app: &'a TestApp, repo: &str) -> Self {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("admin:{ADMIN_TOKEN}"));
        Self {
            app,
            auth: format!("Basic {encoded}"),
            repo: repo.to_owned(),
        }
    }

    /// `path` is under the repository (`/blobs/...`), or absolute (`/v2/...`) as a `Location` is.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        let url = if path.starts_with("/v2/") {
            self.app.url(path)
        } else {
            self.app.url(&format!("/v2/{}{path}", self.repo))
        };
        let mut request = self
            .app
            .http
            .request(method, url)
            .header(AUTHORIZATION, &self.auth)
            .header(CONTENT_LENGTH, body.len());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(body).send().await.unwrap()
    }

    /// POST, then a monolithic PUT with `?digest=`: 201.
    async fn upload(&self, bytes: &[u8]) {
        let started = self
            .send(Method::POST, "/blobs/uploads/", &[], vec![])
            .await;
        let location = location(&started);
        let put = self
            .send(
                Method::PUT,
                &with_digest(&location, &digest(bytes)),
                &[(CONTENT_TYPE.as_str(), OCTET)],
                bytes.to_vec(),
            )
            .await;
        assert_eq!(put.status(), StatusCode::CREATED);
    }

    async fn put_manifest(&self, reference: &str, media_type: &str, body: &[u8]) -> Response {
        self.send(
            Method::PUT,
            &format!("/manifests/{reference}"),
            &[(CONTENT_TYPE.as_str(), media_type)],
            body.to_vec(),
        )
        .await
    }

    async fn tags(&self, query: &str) -> Vec<String> {
        let response = self
            .send(Method::GET, &format!("/tags/list{query}"), &[], vec![])
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        serde_json::from_value(body["tags"].clone()).unwrap()
    }

    async fn referrers(&self, subject: &str, query: &str) -> (Option<String>, Vec<Value>) {
        let response = self
            .send(
                Method::GET,
                &format!("/referrers/{subject}{query}"),
                &[],
                vec![],
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_TYPE], INDEX);
        let filtered = response
            .headers()
            .get("oci-filters-applied")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        (filtered, body["manifests"].as_array().unwrap().clone())
    }
}

fn location(response: &Response) -> String {
    let value = response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("a Location on {}", response.status()));
    value.to_str().unwrap().to_owned()
}

fn with_digest(location: &str, digest: &str) -> String {
    let joiner = if location.contains('?') { '&' } else { '?' };
    format!("{location}{joiner}digest={digest}")
}

fn config(author: &str) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "author": author,
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [] },
    }))
    .unwrap()
}

/// An image manifest as the suite writes one: with `data` and an unknown field.
fn image_manifest(config: &[u8], layer: &[u8]) -> Vec<u8> {
    let data = base64::engine::general_purpose::STANDARD.encode(config);
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(config), "size": config.len(), "data": data,
            "newUnspecifiedField": null,
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": digest(layer), "size": layer.len(), "newUnspecifiedField": null,
        }],
        "newUnspecifiedField": "aGVsbG8gd29ybGQ=",
    }))
    .unwrap()
}

fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({ "mediaType": media_type, "digest": digest(bytes), "size": bytes.len() })
}

/// A referrer: config-typed (no artifactType) or layer-typed (artifactType), with one annotation.
fn referrer(
    kind: &str,
    blob: &[u8],
    subject: &[u8],
    by_layer: bool,
    note: Option<&str>,
) -> Vec<u8> {
    let empty = descriptor(EMPTY, b"{}");
    let mut manifest = if by_layer {
        json!({ "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": kind,
                "config": empty, "layers": [descriptor(kind, blob)] })
    } else {
        json!({ "schemaVersion": 2, "mediaType": MANIFEST,
                "config": descriptor(kind, blob), "layers": [empty] })
    };
    manifest["subject"] = descriptor(MANIFEST, subject);
    if let Some(note) = note {
        manifest["annotations"] = json!({ "org.opencontainers.conformance.test": note });
    }
    serde_json::to_vec(&manifest).unwrap()
}

/// A layer: any bytes do, kiln keeps a layer as it is.
fn layer() -> Vec<u8> {
    (0..168u32).map(|i| (i * 7 % 251) as u8).collect()
}

mod discovery;
mod pull_push;
