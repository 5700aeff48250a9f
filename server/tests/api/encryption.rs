//! Encryption in transit (HTTPS served by kiln itself) and at rest (S3 server-side encryption, SSE-C on
//! Garage).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use kiln_server::config::{ServerSideEncryption, StorageSettings, TlsSettings};
use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{ADMIN_TOKEN, Backend, TestApp, expect_json};

#[actix_web::test]
async fn the_server_speaks_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let tls = TlsSettings { cert, key };
    let app = TestApp::spawn_with(Backend::Embedded, |s| s.tls = Some(tls)).await;

    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", app.address.port());
    let me: Value = expect_json(
        client
            .get(format!("{base}/api/v1/me"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
        StatusCode::OK,
    )
    .await;
    assert_eq!(me["name"], "admin");
    let plain = reqwest::get(format!("http://localhost:{}/healthz", app.address.port())).await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "plain HTTP is not served on a TLS port"
    );
}

#[actix_web::test]
async fn blobs_round_trip_through_sse_c_encryption_on_s3() {
    let mut key = [0u8; 32];
    SystemRandom::new().fill(&mut key).unwrap();
    let key_base64 = base64::engine::general_purpose::STANDARD.encode(key);
    let app = TestApp::spawn_with(Backend::PostgresS3, |s| {
        if let StorageSettings::S3 { encryption, .. } = &mut s.storage {
            *encryption = Some(ServerSideEncryption::CustomerKey { key_base64 });
        }
    })
    .await;
    let data: Vec<u8> = (0..20 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    expect_json::<Value>(
        app.push("acme/sealed:1", &[("w.bin", &data), ("empty", b"")])
            .await,
        StatusCode::CREATED,
    )
    .await;
    let body = app
        .get("/api/v1/models/acme/sealed/versions/1/files/w.bin")
        .await
        .bytes()
        .await
        .unwrap();
    assert!(body == data, "bytes read back through SSE-C differ");

    // Without the customer key the store refuses to hand the object out: it is really encrypted.
    let StorageSettings::S3 {
        bucket,
        prefix,
        endpoint,
        access_key_id,
        secret_access_key,
        ..
    } = &app.settings.storage
    else {
        unreachable!("an S3 backend")
    };
    let plain = object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_endpoint(endpoint.clone().unwrap())
        .with_allow_http(true)
        .with_region("garage")
        .with_access_key_id(access_key_id.clone().unwrap())
        .with_secret_access_key(secret_access_key.clone().unwrap())
        .build()
        .unwrap();
    let hex = kiln_core::Sha256Digest::of(&data).hex();
    let key = object_store::path::Path::from(format!("{prefix}/blobs/sha256/{}/{hex}", &hex[..2]));
    match object_store::ObjectStoreExt::get(&plain, &key).await {
        Ok(_) => panic!("an SSE-C object must not be readable without its key"),
        Err(object_store::Error::NotFound { .. }) => {
            panic!("no object at {key}: the check looked in the wrong place")
        }
        Err(_) => {}
    }
}
