//! The suite's Pull and Push workflows.

use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::harness::TestApp;

/// The Pull workflow: what its setup pushes (a config, a layer, a manifest by tag and another by
/// digest), then manifests and blobs by HEAD and GET, by tag and by digest, and the unknown ones.
async fn pull_workflow(app: TestApp) {
    let client = Client::new(&app, "conformance/pull");
    let (config_0, config_1, layer) = (config("pull-zero"), config("pull-one"), layer());
    for blob in [&config_0, &config_1, &layer] {
        client.upload(blob).await;
    }
    let (manifest_0, manifest_1) = (
        image_manifest(&config_0, &layer),
        image_manifest(&config_1, &layer),
    );
    let tagged = client.put_manifest("tagtest0", MANIFEST, &manifest_0).await;
    assert_eq!(tagged.status(), StatusCode::CREATED);
    let pinned = client
        .put_manifest(&digest(&manifest_1), MANIFEST, &manifest_1)
        .await;
    assert_eq!(pinned.status(), StatusCode::CREATED);

    for (reference, body) in [
        ("tagtest0".to_owned(), &manifest_0),
        (digest(&manifest_0), &manifest_0),
        (digest(&manifest_1), &manifest_1),
    ] {
        let path = format!("/manifests/{reference}");
        let head = client
            .send(Method::HEAD, &path, &[("accept", MANIFEST)], vec![])
            .await;
        assert_eq!(head.status(), StatusCode::OK, "HEAD {reference}");
        assert_eq!(
            head.headers()["docker-content-digest"],
            digest(body).as_str()
        );
        assert_eq!(
            head.headers()[CONTENT_LENGTH],
            body.len().to_string().as_str()
        );
        let get = client
            .send(Method::GET, &path, &[("accept", MANIFEST)], vec![])
            .await;
        assert_eq!(get.status(), StatusCode::OK, "GET {reference}");
        assert_eq!(get.headers()[CONTENT_TYPE], MANIFEST);
        assert_eq!(
            get.headers()["docker-content-digest"],
            digest(body).as_str()
        );
        assert!(get.bytes().await.unwrap() == **body, "the bytes pushed");
    }
    let unknown_digest = format!("/manifests/{}", digest(b"no such manifest"));
    for path in [
        "/manifests/.INVALID_MANIFEST_NAME",
        "/manifests/nosuchtag",
        &unknown_digest,
    ] {
        let head = client.send(Method::HEAD, path, &[], vec![]).await;
        assert_eq!(head.status(), StatusCode::NOT_FOUND, "HEAD {path}");
        let get = client.send(Method::GET, path, &[], vec![]).await;
        assert_eq!(get.status(), StatusCode::NOT_FOUND, "GET {path}");
        let body: Value = get.json().await.unwrap();
        assert!(
            ["MANIFEST_UNKNOWN", "NAME_INVALID", "TAG_INVALID"]
                .contains(&body["errors"][0]["code"].as_str().unwrap()),
            "{body}"
        );
    }
    for blob in [&config_0, &layer] {
        let path = format!("/blobs/{}", digest(blob));
        let head = client.send(Method::HEAD, &path, &[], vec![]).await;
        assert_eq!(head.status(), StatusCode::OK);
        assert_eq!(
            head.headers()[CONTENT_LENGTH],
            blob.len().to_string().as_str()
        );
        assert_eq!(
            head.headers()["docker-content-digest"],
            digest(blob).as_str()
        );
        let get = client.send(Method::GET, &path, &[], vec![]).await;
        assert_eq!(get.status(), StatusCode::OK);
        assert!(get.bytes().await.unwrap() == **blob);
    }
    let unknown_blob = format!("/blobs/{}", digest(b"no such blob"));
    let head = client.send(Method::HEAD, &unknown_blob, &[], vec![]).await;
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    let get = client.send(Method::GET, &unknown_blob, &[], vec![]).await;
    let body: Value = get.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "BLOB_UNKNOWN");

    // Teardown: the manifests by digest (the tagged one deletes its version), then the blobs.
    for body in [&manifest_0, &manifest_1] {
        let deleted = client
            .send(
                Method::DELETE,
                &format!("/manifests/{}", digest(body)),
                &[],
                vec![],
            )
            .await;
        assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    }
    assert!(client.tags("").await.is_empty());
    for blob in [&config_0, &config_1, &layer] {
        let deleted = client
            .send(
                Method::DELETE,
                &format!("/blobs/{}", digest(blob)),
                &[],
                vec![],
            )
            .await;
        assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    }
}

async fn push_workflow(app: TestApp) {
    let client = Client::new(&app, "conformance/repo");
    let layer = layer();

    // Streamed upload: POST, PATCH without Content-Range (202), PUT ?digest= (201).
    let blob_a: Vec<u8> = (0..42u8).map(|i| i.wrapping_mul(13)).collect();
    let started = client
        .send(Method::POST, "/blobs/uploads/", &[], vec![])
        .await;
    assert_eq!(started.status(), StatusCode::ACCEPTED);
    let streamed = client
        .send(
            Method::PATCH,
            &location(&started),
            &[(CONTENT_TYPE.as_str(), OCTET)],
            blob_a.clone(),
        )
        .await;
    assert_eq!(streamed.status(), StatusCode::ACCEPTED);
    let done = client
        .send(
            Method::PUT,
            &with_digest(&location(&streamed), &digest(&blob_a)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(done.status(), StatusCode::CREATED);
    assert!(!location(&done).is_empty());

    // Monolithic: an unknown blob is 404; POST ?digest= with the body is 201 and then readable.
    let dummy = digest(b"hello world");
    let unknown = client
        .send(Method::GET, &format!("/blobs/{dummy}"), &[], vec![])
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let config_1 = config("push-config-one");
    let monolithic = client
        .send(
            Method::POST,
            &format!("/blobs/uploads/?digest={}", digest(&config_1)),
            &[(CONTENT_TYPE.as_str(), OCTET)],
            config_1.clone(),
        )
        .await;
    assert_eq!(monolithic.status(), StatusCode::CREATED);
    assert!(!location(&monolithic).is_empty());
    let read = client
        .send(
            Method::GET,
            &format!("/blobs/{}", digest(&config_1)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.bytes().await.unwrap(), config_1);
    client.upload(&config_1).await;
    client.upload(&layer).await;
    let read = client
        .send(
            Method::GET,
            &format!("/blobs/{}", digest(&layer)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(read.status(), StatusCode::OK);

    // Chunked: a chunk out of order is 416; in order 202 with `Range: 0-END`; resent, 416; the
    // upload's state by GET (204); the rest; PUT ?digest= with no body. kiln asks for chunks of
    // OCI-Chunk-Min-Length, so (as the suite does) the blob is 2 * min - 2 bytes.
    let first = client
        .send(Method::POST, "/blobs/uploads/", &[], vec![])
        .await;
    let min: usize = first.headers()["oci-chunk-min-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let blob_b: Vec<u8> = (0..2 * min - 2).map(|i| (i % 253) as u8).collect();
    let (chunk_1, chunk_2) = blob_b.split_at(min);
    let range_2 = format!("{}-{}", min, blob_b.len() - 1);
    let early = client
        .send(
            Method::PATCH,
            &location(&first),
            &[
                (CONTENT_TYPE.as_str(), OCTET),
                (CONTENT_RANGE.as_str(), &range_2),
            ],
            chunk_2.to_vec(),
        )
        .await;
    assert_eq!(early.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let started = client
        .send(Method::POST, "/blobs/uploads/", &[], vec![])
        .await;
    let upload = location(&started);
    let range_1 = format!("0-{}", min - 1);
    let sent = client
        .send(
            Method::PATCH,
            &upload,
            &[
                (CONTENT_TYPE.as_str(), OCTET),
                (CONTENT_RANGE.as_str(), &range_1),
            ],
            chunk_1.to_vec(),
        )
        .await;
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    assert_eq!(sent.headers()["range"], range_1.as_str());
    let again = client
        .send(
            Method::PATCH,
            &upload,
            &[
                (CONTENT_TYPE.as_str(), OCTET),
                (CONTENT_RANGE.as_str(), &range_1),
            ],
            chunk_1.to_vec(),
        )
        .await;
    assert_eq!(again.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let state = client.send(Method::GET, &upload, &[], vec![]).await;
    assert_eq!(state.status(), StatusCode::NO_CONTENT);
    assert_eq!(state.headers()["range"], range_1.as_str());
    let rest = client
        .send(
            Method::PATCH,
            &location(&state),
            &[
                (CONTENT_TYPE.as_str(), OCTET),
                (CONTENT_RANGE.as_str(), &range_2),
            ],
            chunk_2.to_vec(),
        )
        .await;
    assert_eq!(rest.status(), StatusCode::ACCEPTED);
    assert_eq!(
        rest.headers()["range"],
        format!("0-{}", blob_b.len() - 1).as_str()
    );
    let done = client
        .send(
            Method::PUT,
            &with_digest(&location(&rest), &digest(&blob_b)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(done.status(), StatusCode::CREATED);
    let read = client
        .send(
            Method::GET,
            &format!("/blobs/{}", digest(&blob_b)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(read.bytes().await.unwrap(), blob_b);

    // Cross-repository mount: an unknown blob starts an upload (202); a known one from another
    // repository is linked (201, Location = the blob) and readable there.
    let other = "/v2/conformance/mounted/blobs/uploads/";
    let unmountable = client
        .send(Method::POST, &format!("{other}?mount={dummy}"), &[], vec![])
        .await;
    assert_eq!(unmountable.status(), StatusCode::ACCEPTED);
    assert!(location(&unmountable).starts_with("/v2/conformance/mounted/blobs/uploads/"));
    let mounted = client
        .send(
            Method::POST,
            &format!("{other}?mount={}&from=conformance/repo", digest(&blob_a)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(mounted.status(), StatusCode::CREATED);
    let at = location(&mounted);
    assert_eq!(
        at,
        format!("/v2/conformance/mounted/blobs/{}", digest(&blob_a))
    );
    assert_eq!(
        client.send(Method::GET, &at, &[], vec![]).await.status(),
        StatusCode::OK
    );

    // Manifests: an unknown reference is 404; four tags of one manifest (four kiln versions);
    // an image without layers is no kiln version (the suite only warns); by digest, 200.
    let missing = client
        .send(
            Method::GET,
            "/manifests/.INVALID_MANIFEST_NAME",
            &[],
            vec![],
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let manifest_1 = image_manifest(&config_1, &layer);
    for tag in ["test0", "test1", "test2", "test3"] {
        let put = client.put_manifest(tag, MANIFEST, &manifest_1).await;
        assert_eq!(put.status(), StatusCode::CREATED, "{tag}");
        assert_eq!(
            location(&put),
            format!("/v2/conformance/repo/manifests/{}", digest(&manifest_1))
        );
        assert_eq!(
            put.headers()["docker-content-digest"],
            digest(&manifest_1).as_str()
        );
    }
    let empty_layers = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config_1),
        "layers": [],
    }))
    .unwrap();
    let refused = client
        .put_manifest("emptylayer", MANIFEST, &empty_layers)
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let by_digest = client
        .send(
            Method::GET,
            &format!("/manifests/{}", digest(&manifest_1)),
            &[("accept", MANIFEST)],
            vec![],
        )
        .await;
    assert_eq!(by_digest.status(), StatusCode::OK);
    assert_eq!(
        by_digest.bytes().await.unwrap(),
        manifest_1,
        "the bytes pushed"
    );
    let by_tag = client
        .send(Method::GET, "/manifests/test2", &[], vec![])
        .await;
    assert_eq!(by_tag.bytes().await.unwrap(), manifest_1);

    // Teardown: deleting the manifest by digest deletes the four versions pushed with it (2xx);
    // the config blob is unlinked (2xx); the layer, held by no version any more, too.
    let deleted = client
        .send(
            Method::DELETE,
            &format!("/manifests/{}", digest(&manifest_1)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    assert!(client.tags("").await.is_empty());
    for blob in [&config_1, &layer] {
        let deleted = client
            .send(
                Method::DELETE,
                &format!("/blobs/{}", digest(blob)),
                &[],
                vec![],
            )
            .await;
        assert!(
            [
                StatusCode::ACCEPTED,
                StatusCode::NOT_FOUND,
                StatusCode::METHOD_NOT_ALLOWED
            ]
            .contains(&deleted.status())
        );
    }
}

crate::on_every_backend!(pull_workflow, push_workflow);
