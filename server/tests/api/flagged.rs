//! Safety stays fail-closed: a pickle that could run code is refused, unless the namespace's admins chose
//! "store only, never load"; then it is stored, flagged on the version and in the manifest, and never
//! opened again.

use kiln_core::api::{JobState, ManifestResponse, NamespaceSettings, VersionStatus};
use reqwest::{Method, StatusCode};

use crate::harness::{TestApp, expect_json, job};
use crate::manifests::HOSTILE_PICKLE;

async fn a_flagged_pickle_is_stored_only_when_the_namespace_allows_it(app: TestApp) {
    let pushed = app
        .push("acme/evil:1", &[("model.pkl", HOSTILE_PICKLE)])
        .await;
    assert_eq!(pushed.status(), StatusCode::CREATED);
    assert_eq!(
        app.settled_version("acme/evil:1").await.status,
        VersionStatus::Failed,
        "refused by default"
    );

    let allow = app
        .request(Method::PUT, "/api/v1/namespaces/acme/settings")
        .json(&NamespaceSettings {
            store_unsafe_pickles: true,
        });
    let settings: NamespaceSettings =
        expect_json(allow.send().await.unwrap(), StatusCode::OK).await;
    assert!(settings.store_unsafe_pickles);

    // A BERT config beside the hostile weights: were the flagged file handed to conversion, it would be
    // read as the checkpoint's weights.
    let config = br#"{"model_type": "bert", "hidden_size": 8, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 16, "vocab_size": 10}"#;
    let pushed = app
        .push(
            "acme/evil:2",
            &[
                ("config.json", config.as_slice()),
                ("pytorch_model.bin", HOSTILE_PICKLE),
            ],
        )
        .await;
    assert_eq!(pushed.status(), StatusCode::CREATED);
    let detail = app.settled_version("acme/evil:2").await;
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    assert_eq!(detail.flagged.len(), 1, "{detail:#?}");
    assert_eq!(detail.flagged[0].path, "pytorch_model.bin");
    assert!(
        detail.flagged[0]
            .reason
            .starts_with("the pickle is refused"),
        "{:?}",
        detail.flagged[0]
    );
    // Never opened again: conversion does not even see it, so the config has no weights beside it.
    let convert = job(&detail, "convert");
    assert_eq!(convert.state, JobState::Skipped, "{convert:#?}");
    let message = convert.message.as_deref().unwrap();
    assert!(message.contains("has no weights beside it"), "{message}");

    let manifest: ManifestResponse = expect_json(
        app.get("/api/v1/models/acme/evil/versions/2/manifest")
            .await,
        StatusCode::OK,
    )
    .await;
    let source = manifest
        .payload
        .sources
        .iter()
        .find(|s| s.path.as_str() == "pytorch_model.bin")
        .unwrap();
    assert!(
        source.flagged.as_deref().is_some_and(
            |f| f.starts_with("stored only, never loaded by kiln: the pickle is refused")
        ),
        "{source:?}"
    );
}

crate::on_every_backend!(a_flagged_pickle_is_stored_only_when_the_namespace_allows_it);
