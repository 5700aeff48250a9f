//! Safety stays fail-closed: a pickle that could run code is refused, unless the namespace's admins chose
//! "store only, never load"; then it is stored, flagged on the version and in the manifest, and never
//! opened again.

use kiln_core::api::{JobState, ManifestResponse, NamespaceSettings, VersionStatus};
use reqwest::{Method, StatusCode};

use crate::harness::{TestApp, expect_json};
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

    let pushed = app
        .push("acme/evil:2", &[("model.pkl", HOSTILE_PICKLE)])
        .await;
    assert_eq!(pushed.status(), StatusCode::CREATED);
    let detail = app.settled_version("acme/evil:2").await;
    assert_eq!(detail.status, VersionStatus::Ready, "{detail:#?}");
    assert_eq!(detail.flagged.len(), 1, "{detail:#?}");
    assert_eq!(detail.flagged[0].path, "model.pkl");
    assert!(
        detail.flagged[0]
            .reason
            .starts_with("the pickle is refused"),
        "{:?}",
        detail.flagged[0]
    );
    // Never opened again: conversion does not even see it.
    let convert = detail
        .pipeline
        .iter()
        .find(|j| j.kind == "convert")
        .unwrap();
    assert_eq!(convert.state, JobState::Skipped);

    let manifest: ManifestResponse = expect_json(
        app.get("/api/v1/models/acme/evil/versions/2/manifest")
            .await,
        StatusCode::OK,
    )
    .await;
    let source = &manifest.payload.sources[0];
    assert_eq!(source.path.as_str(), "model.pkl");
    assert!(
        source.flagged.as_deref().is_some_and(
            |f| f.starts_with("stored only, never loaded by kiln: the pickle is refused")
        ),
        "{source:?}"
    );
}

crate::on_every_backend!(a_flagged_pickle_is_stored_only_when_the_namespace_allows_it);
