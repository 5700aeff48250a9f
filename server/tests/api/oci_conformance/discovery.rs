//! The suite's Content Discovery (tags, referrers) and Content Management workflows.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::*;
use crate::harness::TestApp;

async fn discovery_and_management_workflows(app: TestApp) {
    let client = Client::new(&app, "conformance/discovery");
    let layer = layer();
    let (config_2, config_3, config_4) = (
        config("discovery-two"),
        config("management-three"),
        config("discovery-four"),
    );
    for blob in [&config_2, &layer] {
        client.upload(blob).await;
    }
    let manifest_2 = image_manifest(&config_2, &layer);
    for tag in ["test0", "test1", "test2", "test3"] {
        let put = client.put_manifest(tag, MANIFEST, &manifest_2).await;
        assert_eq!(put.status(), StatusCode::CREATED);
    }

    // Referrers by digest, before their subject exists: 201 with OCI-Subject.
    let manifest_4 = image_manifest(&config_4, &layer);
    let manifest_3 = image_manifest(&config_3, &layer);
    assert_eq!(
        digest(b"{}"),
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    let (blob_ref_a, blob_ref_b) = (
        b"NHL Peanut Butter on my NHL bagel".to_vec(),
        b"NBA Strawberry Jam on my NBA croissant".to_vec(),
    );
    client.upload(b"{}").await;
    client.upload(&blob_ref_a).await;
    let a_config = referrer(NHL, &blob_ref_a, &manifest_4, false, Some("a-config"));
    let a_layer = referrer(NHL, &blob_ref_a, &manifest_4, true, Some("a-layer"));
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": INDEX, "artifactType": "application/vnd.food.stand",
        "manifests": [descriptor(MANIFEST, &a_config), descriptor(MANIFEST, &a_layer)],
        "subject": descriptor(MANIFEST, &manifest_4),
        "annotations": { "org.opencontainers.conformance.test": "index" },
    }))
    .unwrap();
    for (body, media_type) in [(&a_config, MANIFEST), (&a_layer, MANIFEST), (&index, INDEX)] {
        let put = client.put_manifest(&digest(body), media_type, body).await;
        assert_eq!(put.status(), StatusCode::CREATED);
        assert_eq!(put.headers()["oci-subject"], digest(&manifest_4).as_str());
    }
    for blob in [&config_4, &layer] {
        client.upload(blob).await;
    }
    let tagged = client.put_manifest("tagtest0", MANIFEST, &manifest_4).await;
    assert_eq!(tagged.status(), StatusCode::CREATED);
    client.upload(&blob_ref_b).await;
    let b_config = referrer(NBA, &blob_ref_b, &manifest_4, false, Some("b-config"));
    let b_layer = referrer(NBA, &blob_ref_b, &manifest_4, true, Some("b-layer"));
    let c_layer = referrer(NBA, &blob_ref_b, &manifest_3, true, None);
    for body in [&b_config, &b_layer, &c_layer] {
        let put = client.put_manifest(&digest(body), MANIFEST, body).await;
        assert_eq!(put.status(), StatusCode::CREATED);
    }

    // Tags: the whole list, then pages of n.
    let all = client.tags("").await;
    assert_eq!(all, ["tagtest0", "test0", "test1", "test2", "test3"]);
    let half = all.len() / 2;
    let page = client.tags(&format!("?n={half}")).await;
    assert_eq!(page.len(), half);
    let next = client
        .tags(&format!("?n={half}&last={}", page.last().unwrap()))
        .await;
    assert_eq!(next, all[half..2 * half]);

    // Referrers: none for an unknown digest; the five pushed for manifests[4], each with its one
    // annotation (kiln adds the version's signed deployment manifest as a sixth, with its own
    // artifactType, once the version is signed); filtered by artifactType; and the one whose
    // subject was never pushed.
    let (_, none) = client.referrers(&digest(b"hello world"), "").await;
    assert!(none.is_empty());
    app.settled_version("conformance/discovery:tagtest0").await;
    let (_, listed) = client.referrers(&digest(&manifest_4), "").await;
    let pushed: Vec<&Value> = listed
        .iter()
        .filter(|e| e["artifactType"] != "application/vnd.kiln.deployment-manifest.v1+jws")
        .collect();
    assert_eq!(pushed.len(), 5, "{listed:?}");
    for entry in &pushed {
        assert_eq!(
            entry["annotations"].as_object().unwrap().len(),
            1,
            "{entry}"
        );
    }
    let expected: std::collections::BTreeSet<String> =
        [&a_config, &a_layer, &index, &b_config, &b_layer]
            .iter()
            .map(|b| digest(b))
            .collect();
    let got: std::collections::BTreeSet<String> = pushed
        .iter()
        .map(|e| e["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(got, expected);
    let (filtered, nhl) = client
        .referrers(&digest(&manifest_4), &format!("?artifactType={NHL}"))
        .await;
    assert_eq!(filtered.as_deref(), Some("artifactType"));
    let nhl: std::collections::BTreeSet<String> = nhl
        .iter()
        .map(|e| e["digest"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        nhl,
        [digest(&a_config), digest(&a_layer)].into_iter().collect()
    );
    let (_, orphan) = client.referrers(&digest(&manifest_3), "").await;
    assert_eq!(orphan.len(), 1);
    assert_eq!(orphan[0]["digest"], digest(&c_layer).as_str());
    assert!(
        orphan[0].get("annotations").is_none(),
        "none listed, not null"
    );

    // Management: push tagtest... under a new tag, as tagtest0 is a version kiln keeps (its bytes
    // never change: pushing other bytes under it is refused with 409 DENIED).
    client.upload(&config_3).await;
    let changed = client.put_manifest("tagtest0", MANIFEST, &manifest_3).await;
    assert_eq!(changed.status(), StatusCode::CONFLICT);
    let body: Value = changed.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED");
    let put = client.put_manifest("tagtest1", MANIFEST, &manifest_3).await;
    assert_eq!(put.status(), StatusCode::CREATED);
    let before = client.tags("").await.len();
    // Deleting by tag deletes that version (202); its manifest by digest then (202); gone (404).
    let by_tag = client
        .send(Method::DELETE, "/manifests/tagtest1", &[], vec![])
        .await;
    assert_eq!(by_tag.status(), StatusCode::ACCEPTED);
    let by_digest = client
        .send(
            Method::DELETE,
            &format!("/manifests/{}", digest(&manifest_3)),
            &[],
            vec![],
        )
        .await;
    assert!([StatusCode::ACCEPTED, StatusCode::NOT_FOUND].contains(&by_digest.status()));
    let gone = client
        .send(
            Method::GET,
            &format!("/manifests/{}", digest(&manifest_3)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);
    assert_eq!(client.tags("").await.len(), before - 1);
    // The config, linked only, is unlinked; the layer, a file of versions, is kiln's to delete (405).
    let config_gone = client
        .send(
            Method::DELETE,
            &format!("/blobs/{}", digest(&config_3)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(config_gone.status(), StatusCode::ACCEPTED);
    let read = client
        .send(
            Method::GET,
            &format!("/blobs/{}", digest(&config_3)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(read.status(), StatusCode::NOT_FOUND);
    let layer_kept = client
        .send(
            Method::DELETE,
            &format!("/blobs/{}", digest(&layer)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(layer_kept.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = layer_kept.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNSUPPORTED");
}

crate::on_every_backend!(discovery_and_management_workflows);
