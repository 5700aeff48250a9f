//! Listing models: cursor pages that neither skip nor repeat models while others are pushed, and filters
//! done by the database (name prefix, tag, text, kind of deployable variant).

use kiln_core::api::ModelSummary;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_error, expect_json};

async fn push_model(app: &TestApp, reference: &str, description: &str, tags: &[&str]) {
    expect_json::<Value>(
        app.push(
            &format!("{reference}:1"),
            &[("w.bin", reference.as_bytes())],
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let update = app
        .request(Method::PATCH, &format!("/api/v1/models/{reference}"))
        .json(&json!({ "description": description, "tags": tags }));
    expect_json::<Value>(update.send().await.unwrap(), StatusCode::OK).await;
}

async fn names(app: &TestApp, path: &str) -> Vec<String> {
    let models: Vec<ModelSummary> = expect_json(app.get(path).await, StatusCode::OK).await;
    models
        .iter()
        .map(|m| format!("{}/{}", m.namespace, m.name))
        .collect()
}

/// The `Link: <...>; rel="next"` target, when the page has one.
fn next_link(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    let target = link.strip_prefix('<')?.split_once('>')?.0;
    assert!(link.ends_with("rel=\"next\""), "{link}");
    Some(target.to_owned())
}

async fn cursor_pages_survive_concurrent_pushes(app: TestApp) {
    for model in ["acme/m-b", "acme/m-d", "acme/m-f", "acme/m-h"] {
        push_model(&app, model, "", &[]).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/models?limit=2&prefix=m-".to_owned();
    let mut pushed_meanwhile = false;
    loop {
        let response = app.get(&path).await;
        let next = next_link(&response);
        let page: Vec<ModelSummary> = expect_json(response, StatusCode::OK).await;
        seen.extend(page.iter().map(|m| m.name.to_string()));
        if !pushed_meanwhile {
            // One before the cursor and one after it: the first must not shift the pages, the second
            // shows up in its place.
            push_model(&app, "acme/m-a", "", &[]).await;
            push_model(&app, "acme/m-g", "", &[]).await;
            pushed_meanwhile = true;
        }
        match next {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(seen, ["m-b", "m-d", "m-f", "m-g", "m-h"]);

    let bad = app.get("/api/v1/models?cursor=not-a-cursor").await;
    expect_error(bad, StatusCode::BAD_REQUEST, "invalid_page").await;
    let both = app.get("/api/v1/models?cursor=YQ&offset=2").await;
    expect_error(both, StatusCode::BAD_REQUEST, "invalid_page").await;
    let long = format!("/api/v1/models?q={}", "x".repeat(300));
    expect_error(
        app.get(&long).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
}

async fn filters_run_in_the_database(app: TestApp) {
    push_model(
        &app,
        "acme/bert-sentiment",
        "An encoder for SENTIMENT",
        &["nlp", "bert"],
    )
    .await;
    push_model(&app, "acme/gpt-small", "Generates text", &["nlp"]).await;
    push_model(&app, "acme/vit", "Images, 100% of them_", &["vision"]).await;
    push_model(&app, "other/bert-base", "", &["nlp"]).await;

    assert_eq!(
        names(&app, "/api/v1/models?tag=nlp").await,
        ["acme/bert-sentiment", "acme/gpt-small", "other/bert-base"]
    );
    assert_eq!(
        names(&app, "/api/v1/models?prefix=bert").await,
        ["acme/bert-sentiment", "other/bert-base"]
    );
    assert_eq!(
        names(&app, "/api/v1/namespaces/acme/models?prefix=bert").await,
        ["acme/bert-sentiment"]
    );
    assert_eq!(
        names(&app, "/api/v1/models?q=sentiment").await,
        ["acme/bert-sentiment"]
    );
    // LIKE's wildcards are text here.
    assert_eq!(names(&app, "/api/v1/models?q=100%25").await, ["acme/vit"]);
    assert_eq!(names(&app, "/api/v1/models?q=m_").await, ["acme/vit"]);
    assert!(names(&app, "/api/v1/models?prefix=%25").await.is_empty());
    assert_eq!(
        names(&app, "/api/v1/models?tag=nlp&q=generates").await,
        ["acme/gpt-small"]
    );
    // Retagging replaces what the tag filter finds.
    let retag = app
        .request(Method::PATCH, "/api/v1/models/acme/gpt-small")
        .json(&json!({ "tags": ["text"] }));
    expect_json::<Value>(retag.send().await.unwrap(), StatusCode::OK).await;
    assert_eq!(
        names(&app, "/api/v1/models?tag=nlp").await,
        ["acme/bert-sentiment", "other/bert-base"]
    );

    // An ONNX model gets a deployable `onnx` variant; the others are no models at all.
    let model = onnx_relu();
    expect_json::<Value>(
        app.push("acme/relu:1", &[("model.onnx", model.as_slice())])
            .await,
        StatusCode::CREATED,
    )
    .await;
    app.settled_version("acme/relu:1").await;
    assert_eq!(
        names(&app, "/api/v1/models?has_variant=onnx").await,
        ["acme/relu"]
    );
    assert!(
        names(&app, "/api/v1/models?has_variant=no-such-kind")
            .await
            .is_empty()
    );
}

fn onnx_relu() -> Vec<u8> {
    use kiln_onnx::graph_builder::{DimSpec, GraphBuilder};
    use kiln_onnx::proto::tensor_proto::DataType;
    use prost::Message;
    let mut g = GraphBuilder::new();
    let x = g.input(
        "x",
        DataType::Float,
        &[DimSpec::Named("batch"), DimSpec::Fixed(4)],
    );
    g.op_into("Relu", &[&x], vec![], "y");
    g.output(
        "y",
        DataType::Float,
        &[DimSpec::Named("batch"), DimSpec::Fixed(4)],
    );
    g.finish("relu", 17, vec![]).encode_to_vec()
}

/// `sort=updated`: the model changed last comes first, and cursor pages keep that order.
async fn most_recently_updated_first(app: TestApp) {
    for model in ["acme/u-a", "acme/u-b", "acme/u-c"] {
        push_model(&app, model, "", &[]).await;
    }
    let touch = app
        .request(Method::PATCH, "/api/v1/models/acme/u-a")
        .json(&json!({ "description": "touched last" }));
    expect_json::<Value>(touch.send().await.unwrap(), StatusCode::OK).await;
    let mut seen = Vec::new();
    let mut path = "/api/v1/models?prefix=u-&sort=updated&limit=2".to_owned();
    loop {
        let response = app.get(&path).await;
        let next = next_link(&response);
        let page: Vec<ModelSummary> = expect_json(response, StatusCode::OK).await;
        seen.extend(page.iter().map(|m| m.name.to_string()));
        match next {
            Some(next) => path = next,
            None => break,
        }
    }
    assert_eq!(seen[0], "u-a", "{seen:?}");
    assert_eq!(seen.len(), 3, "{seen:?}");
    let bad = app.get("/api/v1/models?sort=size").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

crate::on_every_backend!(
    cursor_pages_survive_concurrent_pushes,
    filters_run_in_the_database,
    most_recently_updated_first,
);
