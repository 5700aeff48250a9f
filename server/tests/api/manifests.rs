//! Signed deployment manifests: published when a version's pipeline is ready, verifiable with nothing but
//! the JWK Set at /.well-known/jwks.json.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use kiln_core::api::{ManifestResponse, VersionStatus};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{TestApp, expect_json};

/// The manifest's claims when its JWS verifies with a key of the JWK Set.
pub(crate) fn verify(jws: &str, jwks: &Value) -> Result<Value, jsonwebtoken::errors::Error> {
    let kid = jsonwebtoken::decode_header(jws)?.kid.expect("a kid");
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid published");
    let decoding = DecodingKey::from_ed_components(key["x"].as_str().unwrap())?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp"]);
    Ok(jsonwebtoken::decode::<Value>(jws, &decoding, &validation)?.claims)
}

async fn a_ready_version_publishes_a_signed_manifest(app: TestApp) {
    let dir = tempfile::tempdir().unwrap();
    kiln_onnx::sample_models::gpt2(40, 16, 1, 2)
        .unwrap()
        .write_safetensors(dir.path())
        .unwrap();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        files.push((
            path.file_name().unwrap().to_str().unwrap().to_owned(),
            std::fs::read(&path).unwrap(),
        ));
    }
    let borrowed: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, d)| (p.as_str(), d.as_slice()))
        .collect();
    expect_json::<Value>(
        app.push("acme/signed:1", &borrowed).await,
        StatusCode::CREATED,
    )
    .await;
    let detail = app.settled_version("acme/signed:1").await;
    assert_eq!(detail.status, VersionStatus::Ready);

    let jwks: Value = app
        .anonymous(reqwest::Method::GET, "/.well-known/jwks.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let manifest: ManifestResponse = expect_json(
        app.get("/api/v1/models/acme/signed/versions/1/manifest")
            .await,
        StatusCode::OK,
    )
    .await;
    let claims = verify(&manifest.jws, &jwks).unwrap();
    assert_eq!(claims, serde_json::to_value(&manifest.payload).unwrap());
    assert_eq!(
        (
            claims["model"].as_str(),
            claims["version"].as_str(),
            claims["sequence"].as_i64()
        ),
        (Some("acme/signed"), Some("1"), Some(2)),
        "published when the scan passed, again with the variants when the pipeline ended"
    );
    let names: Vec<&str> = claims["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["fp16", "fp32", "int4", "int8-b128", "onnx"]);
    for variant in &detail.variants {
        let signed = claims["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == variant.name.as_str())
            .unwrap();
        assert_eq!(signed["sha256"], variant.digest.to_string());
        assert_eq!(signed["size"], variant.size);
    }

    let jose = app
        .request(
            reqwest::Method::GET,
            "/api/v1/models/acme/signed/versions/1/manifest",
        )
        .header("accept", "application/jose")
        .send()
        .await
        .unwrap();
    assert_eq!(jose.headers()["content-type"], "application/jose");
    // The newest manifest changes (re-signed, or its alias moves): caches keep it a minute, per client;
    // one by sequence never changes; the keys, public, five minutes (docs/manifest.md).
    assert_eq!(jose.headers()["cache-control"], "private, max-age=60");
    assert_eq!(jose.headers()["vary"], "Accept");
    assert_eq!(jose.text().await.unwrap(), manifest.jws);
    let first = app
        .get("/api/v1/models/acme/signed/versions/1/manifests/1")
        .await;
    assert_eq!(
        first.headers()["cache-control"],
        "private, max-age=31536000, immutable"
    );
    let keys = app
        .anonymous(reqwest::Method::GET, "/.well-known/jwks.json")
        .send()
        .await
        .unwrap();
    assert_eq!(keys.headers()["cache-control"], "public, max-age=300");

    // One changed byte of the payload, or of the signature, and verification fails.
    let parts: Vec<&str> = manifest.jws.split('.').collect();
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: Value = serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
    payload["variants"][0]["sha256"] = Value::String(format!("sha256:{}", "0".repeat(64)));
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        engine.encode(serde_json::to_vec(&payload).unwrap()),
        parts[2]
    );
    assert!(verify(&forged, &jwks).is_err());
    let mut signature = engine.decode(parts[2]).unwrap();
    signature[0] ^= 1;
    let forged = format!("{}.{}.{}", parts[0], parts[1], engine.encode(signature));
    assert!(verify(&forged, &jwks).is_err());
}

async fn a_version_refused_by_its_scan_has_no_manifest(app: TestApp) {
    expect_json::<Value>(
        app.push("acme/unsigned:1", &[("model.pkl", HOSTILE_PICKLE)])
            .await,
        StatusCode::CREATED,
    )
    .await;
    let detail = app.settled_version("acme/unsigned:1").await;
    assert_eq!(detail.status, VersionStatus::Failed);
    let response = app
        .get("/api/v1/models/acme/unsigned/versions/1/manifest")
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

/// `cos\nsystem\n` is `os.system`: a pickle the scan refuses.
pub const HOSTILE_PICKLE: &[u8] = b"\x80\x02cos\nsystem\nX\x05\x00\x00\x00touch\x85R.";

/// A version that is no model at all (a tokenizer folder, a config bundle) is ready once scanned, and its
/// manifest signs its files as pushed.
async fn a_version_that_is_no_model_is_signed_as_pushed(app: TestApp) {
    let files: [(&str, &[u8]); 2] = [
        (
            "tokenizer.json",
            br#"{"version":"1.0","model":{"type":"BPE"}}"#,
        ),
        ("special_tokens_map.json", br#"{"eos_token":"</s>"}"#),
    ];
    expect_json::<Value>(
        app.push("acme/tokenizer:1", &files).await,
        StatusCode::CREATED,
    )
    .await;
    let detail = app.settled_version("acme/tokenizer:1").await;
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    let manifest: Value = expect_json(
        app.get("/api/v1/models/acme/tokenizer/versions/1/manifest")
            .await,
        StatusCode::OK,
    )
    .await;
    let payload = &manifest["payload"];
    let mut sources: Vec<&str> = payload["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    sources.sort();
    assert_eq!(sources, ["special_tokens_map.json", "tokenizer.json"]);
    assert_eq!(payload["variants"], serde_json::json!([]));
}

crate::on_every_backend!(
    a_version_that_is_no_model_is_signed_as_pushed,
    a_ready_version_publishes_a_signed_manifest,
    a_version_refused_by_its_scan_has_no_manifest,
);

/// The embedded default creates its signing key on first start, readable by the owner only, and keeps it.
#[actix_web::test]
async fn the_signing_key_is_created_once_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn(crate::harness::Backend::Embedded).await;
    let dir = app.settings.manifest_keys_dir.clone();
    let keys: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        std::fs::metadata(&keys[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let jwks: Value = app
        .anonymous(reqwest::Method::GET, "/.well-known/jwks.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let app = app.restart().await;
    let again: Value = app
        .anonymous(reqwest::Method::GET, "/.well-known/jwks.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks, again);
}
