//! `/v2/` as an OCI registry client sees it (pull), on both backends: a version is a ModelPack artifact
//! whose layers are its files by their kiln digests, tags are versions and aliases, the exact bytes come
//! back by digest, and the REST API's access rules hold. (scripts/oci-test.sh runs skopeo and oras.)

use base64::Engine;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, RANGE, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, expect_json};

fn basic(user: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"));
    format!("Basic {encoded}")
}

async fn get(app: &TestApp, path: &str, auth: Option<&str>) -> Response {
    let mut request = app.http.get(app.url(path));
    if let Some(auth) = auth {
        request = request.header(AUTHORIZATION, auth);
    }
    request.send().await.unwrap()
}

/// The spec's error body: the first error's code.
async fn oci_error(response: Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    body["errors"][0]["code"].as_str().unwrap().to_owned()
}

async fn push(app: &TestApp, reference: &str, files: &[(&str, &[u8])]) {
    expect_json::<Value>(app.push(reference, files).await, StatusCode::CREATED).await;
    app.settled_version(reference).await;
}

async fn a_version_is_a_modelpack_artifact_over_its_own_blobs(app: TestApp) {
    let admin = basic("admin", ADMIN_TOKEN);
    push(
        &app,
        "acme/m:1.0.0",
        &[("weights.dat", b"weights"), ("README.md", b"# card")],
    )
    .await;
    push(&app, "acme/m:2.0+rc1", &[("weights.dat", b"weights 2")]).await;

    let base = get(&app, "/v2/", None).await;
    assert_eq!(
        base.status(),
        StatusCode::UNAUTHORIZED,
        "the challenge clients learn from"
    );
    let challenge = base.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer realm=\"http://")
            && challenge.contains("/v2/token\",service=\"kiln\""),
        "{challenge}"
    );
    assert_eq!(
        get(&app, "/v2/", Some(&admin)).await.status(),
        StatusCode::OK
    );

    let tags: Value = get(&app, "/v2/acme/m/tags/list", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        tags,
        json!({ "name": "acme/m", "tags": ["1.0.0", "2.0_rc1"] })
    );
    let first = get(&app, "/v2/acme/m/tags/list?n=1", Some(&admin)).await;
    assert!(
        first.headers()["link"]
            .to_str()
            .unwrap()
            .contains("last=1.0.0")
    );
    let rest: Value = get(&app, "/v2/acme/m/tags/list?n=1&last=1.0.0", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["tags"], json!(["2.0_rc1"]));

    let response = get(&app, "/v2/acme/m/manifests/1.0.0", Some(&admin)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let digest = response.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = response.bytes().await.unwrap();
    assert_eq!(kiln_core::Sha256Digest::of(&bytes).to_string(), digest);
    let manifest: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.cncf.model.manifest.v1+json"
    );
    let version: Value = expect_json(
        app.get("/api/v1/models/acme/m/versions/1.0.0").await,
        StatusCode::OK,
    )
    .await;
    for file in version["files"].as_array().unwrap() {
        let layer = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["annotations"]["org.cncf.model.filepath"] == file["path"])
            .expect("a layer per file");
        assert_eq!(
            layer["digest"], file["digest"],
            "a layer is the file's own blob"
        );
        assert_eq!(layer["size"], file["size"]);
    }
    // The same bytes by digest, and again by tag.
    let by_digest = get(
        &app,
        &format!("/v2/acme/m/manifests/{digest}"),
        Some(&admin),
    )
    .await;
    assert_eq!(by_digest.bytes().await.unwrap(), bytes);
    let again = get(&app, "/v2/acme/m/manifests/1.0.0", Some(&admin)).await;
    assert_eq!(again.bytes().await.unwrap(), bytes);
    // A version name with `+` is tagged with `_`.
    let rc = get(&app, "/v2/acme/m/manifests/2.0_rc1", Some(&admin)).await;
    assert_eq!(rc.status(), StatusCode::OK);

    let config = &manifest["config"];
    let blob = get(
        &app,
        &format!("/v2/acme/m/blobs/{}", config["digest"].as_str().unwrap()),
        Some(&admin),
    )
    .await;
    assert_eq!(blob.status(), StatusCode::OK);
    let config_bytes = blob.bytes().await.unwrap();
    assert_eq!(config_bytes.len() as u64, config["size"].as_u64().unwrap());
    let weights = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["annotations"]["org.cncf.model.filepath"] == "weights.dat")
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let part = app
        .http
        .get(app.url(&format!("/v2/acme/m/blobs/{weights}")))
        .header(AUTHORIZATION, &admin)
        .header(RANGE, "bytes=1-3")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap().as_ref(), b"eig");
    let head = app
        .http
        .request(
            Method::HEAD,
            app.url(&format!("/v2/acme/m/blobs/{weights}")),
        )
        .header(AUTHORIZATION, &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        head.headers()["docker-content-digest"].to_str().unwrap(),
        weights
    );

    let missing = get(&app, "/v2/acme/m/manifests/9.9.9", Some(&admin)).await;
    assert_eq!(
        oci_error(missing, StatusCode::NOT_FOUND).await,
        "MANIFEST_UNKNOWN"
    );
    let zeros = format!("sha256:{}", "0".repeat(64));
    let unknown = get(&app, &format!("/v2/acme/m/blobs/{zeros}"), Some(&admin)).await;
    assert_eq!(
        oci_error(unknown, StatusCode::NOT_FOUND).await,
        "BLOB_UNKNOWN"
    );
    let bad = get(&app, "/v2/acme/m/blobs/sha256:xyz", Some(&admin)).await;
    assert_eq!(
        oci_error(bad, StatusCode::BAD_REQUEST).await,
        "DIGEST_INVALID"
    );
}

async fn aliases_are_tags_and_access_rules_hold(app: TestApp) {
    let admin = basic("admin", ADMIN_TOKEN);
    push(&app, "acme/m:1", &[("w.bin", b"one")]).await;
    push(&app, "acme/m:2", &[("w.bin", b"two")]).await;
    push(&app, "other/x:1", &[("w.bin", b"other model's bytes")]).await;
    let set = |version: &'static str| {
        app.request(Method::PUT, "/api/v1/models/acme/m/aliases/production")
            .json(&json!({ "version": version }))
    };
    expect_json::<Value>(set("1").send().await.unwrap(), StatusCode::OK).await;
    let digest_of = |r: Response| {
        r.headers()["docker-content-digest"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let v1 = digest_of(get(&app, "/v2/acme/m/manifests/1", Some(&admin)).await);
    assert_eq!(
        digest_of(get(&app, "/v2/acme/m/manifests/production", Some(&admin)).await),
        v1
    );
    expect_json::<Value>(set("2").send().await.unwrap(), StatusCode::OK).await;
    let v2 = digest_of(get(&app, "/v2/acme/m/manifests/2", Some(&admin)).await);
    assert_eq!(
        digest_of(get(&app, "/v2/acme/m/manifests/production", Some(&admin)).await),
        v2,
        "moving the alias moves the tag"
    );

    // Private: anonymous callers are challenged (as for a repository that does not exist), another
    // namespace's user sees no such repository, and a blob of another model is not this repository's.
    for path in [
        "/v2/acme/m/tags/list",
        "/v2/acme/m/manifests/1",
        "/v2/acme/nothing/manifests/1",
    ] {
        let anonymous = get(&app, path, None).await;
        assert_eq!(
            oci_error(anonymous, StatusCode::UNAUTHORIZED).await,
            "UNAUTHORIZED",
            "{path}"
        );
    }
    let user = json!({ "name": "mallory", "password": "mallory's long password" });
    expect_json::<Value>(
        app.post_json("/api/v1/users", &user).await,
        StatusCode::CREATED,
    )
    .await;
    let mallory = basic("mallory", "mallory's long password");
    let refused = get(&app, "/v2/acme/m/manifests/1", Some(&mallory)).await;
    assert_eq!(
        oci_error(refused, StatusCode::NOT_FOUND).await,
        "NAME_UNKNOWN"
    );
    let wrong = get(&app, "/v2/", Some(&basic("mallory", "not the password"))).await;
    assert_eq!(
        oci_error(wrong, StatusCode::UNAUTHORIZED).await,
        "UNAUTHORIZED"
    );
    let foreign = kiln_core::Sha256Digest::of(b"other model's bytes");
    let crossed = get(&app, &format!("/v2/acme/m/blobs/{foreign}"), Some(&admin)).await;
    assert_eq!(
        oci_error(crossed, StatusCode::NOT_FOUND).await,
        "BLOB_UNKNOWN"
    );

    // Public: anyone pulls, with or without the empty credentials clients answer a challenge with.
    let public = app
        .request(Method::PUT, "/api/v1/models/acme/m/visibility")
        .json(&json!({ "visibility": "public" }));
    expect_json::<Value>(public.send().await.unwrap(), StatusCode::OK).await;
    for auth in [None, Some(basic("", "").as_str())] {
        let pulled = get(&app, "/v2/acme/m/manifests/production", auth).await;
        assert_eq!(pulled.status(), StatusCode::OK);
    }
}

fn onnx_relu() -> Vec<u8> {
    use kiln_onnx::graph_builder::{DimSpec, GraphBuilder};
    use kiln_onnx::proto::tensor_proto::DataType;
    use prost::Message;
    let mut g = GraphBuilder::new();
    let shape = [DimSpec::Named("batch"), DimSpec::Fixed(4)];
    let x = g.input("x", DataType::Float, &shape);
    g.op_into("Relu", &[&x], vec![], "y");
    g.output("y", DataType::Float, &shape);
    g.finish("relu", 17, vec![]).encode_to_vec()
}

/// Variants are tags of their own over their own files and the version's config.json beside the model
/// (as `kiln pull --variant` lays them out), and the version's signed deployment manifest is a referrer
/// of every manifest served for it: its JWS, fetched as a blob, is the API's.
async fn variants_are_tags_and_the_signature_is_a_referrer(app: TestApp) {
    let admin = basic("admin", ADMIN_TOKEN);
    let model = onnx_relu();
    let config = br#"{"id2label": {"0": "NEGATIVE", "1": "POSITIVE"}}"#;
    push(
        &app,
        "acme/relu:1.0.0",
        &[("model.onnx", model.as_slice()), ("config.json", config)],
    )
    .await;
    let config_digest = Value::from(kiln_core::Sha256Digest::of(config).to_string());
    let tags: Value = get(&app, "/v2/acme/relu/tags/list", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    let tags: Vec<&str> = tags["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"1.0.0") && tags.contains(&"1.0.0-onnx"),
        "{tags:?}"
    );
    let detail: Value = expect_json(
        app.get("/api/v1/models/acme/relu/versions/1.0.0").await,
        StatusCode::OK,
    )
    .await;
    for variant in detail["variants"].as_array().unwrap() {
        let name = variant["name"].as_str().unwrap();
        if variant["status"] != "deployable" {
            continue;
        }
        let response = get(
            &app,
            &format!("/v2/acme/relu/manifests/1.0.0-{name}"),
            Some(&admin),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        let manifest: Value = response.json().await.unwrap();
        let layers: Vec<&Value> = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| &l["digest"])
            .collect();
        let mut files: Vec<&Value> = variant["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| &f["digest"])
            .collect();
        files.push(&config_digest);
        assert_eq!(
            layers, files,
            "{name}: the variant's own files, then the config"
        );
        let config_layer = manifest["layers"].as_array().unwrap().last().unwrap();
        assert_eq!(
            config_layer["annotations"]["org.cncf.model.filepath"], "config.json",
            "{name}"
        );
        let blob = get(
            &app,
            &format!("/v2/acme/relu/blobs/{}", files[0].as_str().unwrap()),
            Some(&admin),
        )
        .await;
        assert_eq!(blob.status(), StatusCode::OK);
    }

    let served = get(&app, "/v2/acme/relu/manifests/1.0.0", Some(&admin)).await;
    let digest = served.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_owned();
    let path = format!(
        "/v2/acme/relu/referrers/{digest}?artifactType=application/vnd.kiln.deployment-manifest.v1%2Bjws"
    );
    let listed = get(&app, &path, Some(&admin)).await;
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(listed.headers()["oci-filters-applied"], "artifactType");
    let index: Value = listed.json().await.unwrap();
    let referrer = &index["manifests"][0];
    assert_eq!(
        referrer["artifactType"],
        "application/vnd.kiln.deployment-manifest.v1+jws"
    );
    let referrer_manifest: Value = get(
        &app,
        &format!(
            "/v2/acme/relu/manifests/{}",
            referrer["digest"].as_str().unwrap()
        ),
        Some(&admin),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(referrer_manifest["subject"]["digest"], digest.as_str());
    let jws = get(
        &app,
        &format!(
            "/v2/acme/relu/blobs/{}",
            referrer_manifest["layers"][0]["digest"].as_str().unwrap()
        ),
        Some(&admin),
    )
    .await
    .text()
    .await
    .unwrap();
    let signed: Value = expect_json(
        app.get("/api/v1/models/acme/relu/versions/1.0.0/manifest")
            .await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(
        jws,
        signed["jws"].as_str().unwrap(),
        "the JWS is the API's own"
    );
    let none = get(
        &app,
        &format!(
            "/v2/acme/relu/referrers/{}",
            "sha256:".to_owned() + &"1".repeat(64)
        ),
        Some(&admin),
    )
    .await;
    assert_eq!(
        none.status(),
        StatusCode::OK,
        "an unknown subject has no referrers, not a 404"
    );
    let other: Value = get(
        &app,
        &format!("{}&x=1", path.replace("v1%2Bjws", "v9%2Bjws")),
        Some(&admin),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(other["manifests"], json!([]));
}

/// The registry token flow: the challenge names the token endpoint and the scope; Basic credentials there
/// give a short-lived token that reads what the credential covers, and nothing more; no credentials give
/// the anonymous token, which reads public models only.
async fn the_token_endpoint_issues_tokens_no_wider_than_the_credential(app: TestApp) {
    push(&app, "acme/m:1", &[("w.bin", b"acme's")]).await;
    push(&app, "other/x:1", &[("w.bin", b"other's")]).await;
    let refused = get(&app, "/v2/acme/m/manifests/1", None).await;
    let challenge = refused.headers()[WWW_AUTHENTICATE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.ends_with(",scope=\"repository:acme/m:pull\""),
        "{challenge}"
    );

    let token_for = |auth: Option<String>| {
        let app = &app;
        async move {
            let path = "/v2/token?service=kiln&scope=repository:acme/m:pull";
            let response = get(app, path, auth.as_deref()).await;
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["token"], body["access_token"]);
            format!("Bearer {}", body["token"].as_str().unwrap())
        }
    };
    let admin = token_for(Some(basic("admin", ADMIN_TOKEN))).await;
    assert_eq!(
        get(&app, "/v2/acme/m/manifests/1", Some(&admin))
            .await
            .status(),
        StatusCode::OK
    );
    // The token reads acme only, though the administrator may read everything.
    let other = get(&app, "/v2/other/x/manifests/1", Some(&admin)).await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);

    // A credential scoped to another namespace gets nothing for acme: the anonymous token.
    let narrow: Value = expect_json(
        app.post_json(
            "/api/v1/tokens",
            &json!({ "name": "narrow", "scopes": ["read:other"] }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;
    let narrow = token_for(Some(basic("admin", narrow["token"].as_str().unwrap()))).await;
    let anonymous = token_for(None).await;
    assert_eq!(narrow, anonymous);
    for bearer in [&narrow, &anonymous] {
        let refused = get(&app, "/v2/acme/m/manifests/1", Some(bearer)).await;
        assert_eq!(
            oci_error(refused, StatusCode::UNAUTHORIZED).await,
            "UNAUTHORIZED"
        );
    }
    let public = app
        .request(Method::PUT, "/api/v1/models/acme/m/visibility")
        .json(&json!({ "visibility": "public" }));
    expect_json::<Value>(public.send().await.unwrap(), StatusCode::OK).await;
    let pulled = get(&app, "/v2/acme/m/manifests/1", Some(&anonymous)).await;
    assert_eq!(pulled.status(), StatusCode::OK);
    let wrong_path = "/v2/token?scope=repository:acme/m:pull";
    let wrong = get(&app, wrong_path, Some(&basic("admin", "wrong"))).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

crate::on_every_backend!(
    the_token_endpoint_issues_tokens_no_wider_than_the_credential,
    a_version_is_a_modelpack_artifact_over_its_own_blobs,
    aliases_are_tags_and_access_rules_hold,
    variants_are_tags_and_the_signature_is_a_referrer,
);
