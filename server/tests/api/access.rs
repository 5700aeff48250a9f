//! Every API route, called by every kind of caller, answers with exactly the status the access rules
//! promise (OWASP API Top 10: broken object-level, function-level authorization and authentication).
//!
//! A new route joins [`cases`] with one line; a test fails while any route is missing from it.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kiln_core::Sha256Digest;
use kiln_server::auth::jwt::{AUDIENCE, Claims, ISSUER};
use kiln_server::db::repos::jwt_keys;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{TestApp, expect_json};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    Anonymous,
    Expired,
    OtherKey,
    AlgNone,
    WrongAudience,
    Revoked,
    /// Reader of another namespace, nothing in `acme`.
    Outsider,
    /// Writer in `acme`.
    Writer,
    Admin,
    Runner,
}

const CALLERS: [Caller; 10] = [
    Caller::Anonymous,
    Caller::Expired,
    Caller::OtherKey,
    Caller::AlgNone,
    Caller::WrongAudience,
    Caller::Revoked,
    Caller::Outsider,
    Caller::Writer,
    Caller::Admin,
    Caller::Runner,
];

impl Caller {
    fn slug(self) -> &'static str {
        match self {
            Caller::Anonymous => "anonymous",
            Caller::Expired => "expired",
            Caller::OtherKey => "other-key",
            Caller::AlgNone => "alg-none",
            Caller::WrongAudience => "wrong-aud",
            Caller::Revoked => "revoked",
            Caller::Outsider => "outsider",
            Caller::Writer => "writer",
            Caller::Admin => "admin",
            Caller::Runner => "runner",
        }
    }
}

/// What a route needs, which fixes the answer for each caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    Browse,
    ReadPrivateModel,
    ReadPublicModel,
    WritePrivateModel,
    WritePublicModel,
    AdminOfNamespace,
    /// Any member of `acme` (its usage, quota and retention rules).
    MemberOfNamespace,
    Upload,
    SignedIn,
    Administrator,
    /// A runner-scoped token, and nobody else.
    RunnerOnly,
    /// Any valid credential (`/v2/`'s base endpoint, where clients learn to authenticate).
    Credential,
    /// Pull from a private repository through `/v2/`: as a private model's read, except that a caller
    /// without credentials is challenged (401), as registry clients send credentials only then.
    PullPrivate,
}

/// The status `caller` must get from a route that needs `needs` and answers `ok` when allowed.
fn expected(needs: Needs, caller: Caller, ok: u16) -> u16 {
    use Caller::*;
    use Needs::*;
    match caller {
        Expired | OtherKey | AlgNone | WrongAudience | Revoked => 401,
        Runner => {
            if needs == Nothing || needs == RunnerOnly || needs == Credential {
                ok
            } else {
                403
            }
        }
        Anonymous if needs == RunnerOnly || needs == Credential || needs == PullPrivate => 401,
        _ if needs == Credential => ok,
        _ if needs == RunnerOnly => 403,
        // A private model reads as absent (404); changes to it answer as for an absent model (401/403).
        Anonymous => match needs {
            Nothing | Browse | ReadPublicModel => ok,
            ReadPrivateModel => 404,
            _ => 401,
        },
        // The outsider owns a personal namespace, so may upload blobs (to push there).
        Outsider => match needs {
            Nothing | Browse | ReadPublicModel | SignedIn | Upload => ok,
            ReadPrivateModel | PullPrivate => 404,
            _ => 403,
        },
        Writer => match needs {
            AdminOfNamespace | Administrator => 403,
            _ => ok,
        },
        Admin => ok,
    }
}

struct Case {
    method: Method,
    /// The route as the OpenAPI document names it.
    route: &'static str,
    /// The request; `{who}` becomes the caller's slug, `{digest}`/`{size}` a blob unique to the caller.
    path: &'static str,
    body: Option<&'static str>,
    needs: Needs,
    ok: u16,
}

fn case(
    method: Method,
    route: &'static str,
    path: &'static str,
    body: Option<&'static str>,
    needs: Needs,
    ok: u16,
) -> Case {
    Case {
        method,
        route,
        path,
        body,
        needs,
        ok,
    }
}

/// A ModelPack-style manifest over the fixture's one file, pushed under a tag through `/v2/`.
const OCI_MANIFEST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{weights}","size":7},"layers":[{"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":"{weights}","size":7,"annotations":{"org.cncf.model.filepath":"w.bin"}}]}"#;

/// Every route: method, the route as the OpenAPI document names it, a concrete request, what it needs, and
/// the status when allowed.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Method as M;
    use Needs::*;
    vec![
        case(M::POST, "/api/v1/auth/token", "/api/v1/auth/token", Some("{}"), Nothing, 400),
        case(M::GET, "/api/v1/me", "/api/v1/me", None, SignedIn, 200),
        case(M::GET, "/api/v1/tokens", "/api/v1/tokens", None, SignedIn, 200),
        case(M::POST, "/api/v1/tokens", "/api/v1/tokens", Some(r#"{"name":"t-{who}"}"#), SignedIn, 201),
        case(M::DELETE, "/api/v1/tokens/{id}", "/api/v1/tokens/no-such-token", None, SignedIn, 404),
        case(M::GET, "/api/v1/users", "/api/v1/users", None, Administrator, 200),
        case(M::POST, "/api/v1/users", "/api/v1/users", Some(r#"{"name":"new-{who}"}"#), Administrator, 201),
        case(M::GET, "/api/v1/audit", "/api/v1/audit", None, Administrator, 200),
        case(M::POST, "/api/v1/admin/jwt-keys/rotate", "/api/v1/admin/jwt-keys/rotate", None, Administrator, 200),
        case(M::GET, "/api/v1/namespaces", "/api/v1/namespaces", None, Browse, 200),
        case(M::POST, "/api/v1/namespaces", "/api/v1/namespaces", Some(r#"{"name":"ns-{who}"}"#), Administrator, 201),
        case(M::GET, "/api/v1/namespaces/{namespace}/models", "/api/v1/namespaces/acme/models", None, Browse, 200),
        case(M::GET, "/api/v1/namespaces/{namespace}/members", "/api/v1/namespaces/acme/members", None, AdminOfNamespace, 200),
        case(M::PUT, "/api/v1/namespaces/{namespace}/members/{user}", "/api/v1/namespaces/acme/members/temp-{who}", Some(r#"{"role":"writer"}"#), AdminOfNamespace, 200),
        case(M::DELETE, "/api/v1/namespaces/{namespace}/members/{user}", "/api/v1/namespaces/acme/members/gone-{who}", None, AdminOfNamespace, 204),
        case(M::GET, "/api/v1/namespaces/{namespace}/settings", "/api/v1/namespaces/acme/settings", None, AdminOfNamespace, 200),
        case(M::PUT, "/api/v1/namespaces/{namespace}/settings", "/api/v1/namespaces/acme/settings", Some(r#"{"store_unsafe_pickles":false}"#), AdminOfNamespace, 200),
        case(M::POST, "/api/v1/admin/gc", "/api/v1/admin/gc", Some(r#"{"dry_run":true}"#), Administrator, 200),
        case(M::POST, "/api/v1/admin/fsck", "/api/v1/admin/fsck", Some("{}"), Administrator, 200),
        case(M::GET, "/api/v1/namespaces/{namespace}/usage", "/api/v1/namespaces/acme/usage", None, MemberOfNamespace, 200),
        case(M::PUT, "/api/v1/namespaces/{namespace}/quota", "/api/v1/namespaces/acme/quota", Some("{}"), Administrator, 200),
        case(M::GET, "/api/v1/namespaces/{namespace}/retention", "/api/v1/namespaces/acme/retention", None, MemberOfNamespace, 200),
        case(M::PUT, "/api/v1/namespaces/{namespace}/retention", "/api/v1/namespaces/acme/retention", Some("{}"), AdminOfNamespace, 200),
        case(M::DELETE, "/api/v1/namespaces/{namespace}/retention", "/api/v1/namespaces/acme/retention", None, AdminOfNamespace, 204),
        case(M::POST, "/api/v1/namespaces/{namespace}/retention/apply", "/api/v1/namespaces/acme/retention/apply", Some(r#"{"dry_run":true}"#), AdminOfNamespace, 200),
        case(M::POST, "/api/v1/namespaces/{namespace}/webhooks", "/api/v1/namespaces/acme/webhooks", Some(r#"{"url":"http://127.0.0.1:9/{who}","events":["version.ready"]}"#), AdminOfNamespace, 201),
        case(M::GET, "/api/v1/namespaces/{namespace}/webhooks", "/api/v1/namespaces/acme/webhooks", None, AdminOfNamespace, 200),
        // No such subscription: whoever may ask learns that (404); whoever may not is refused first.
        case(M::GET, "/api/v1/namespaces/{namespace}/webhooks/{id}", "/api/v1/namespaces/acme/webhooks/none", None, AdminOfNamespace, 404),
        case(M::PATCH, "/api/v1/namespaces/{namespace}/webhooks/{id}", "/api/v1/namespaces/acme/webhooks/none", Some("{}"), AdminOfNamespace, 404),
        case(M::DELETE, "/api/v1/namespaces/{namespace}/webhooks/{id}", "/api/v1/namespaces/acme/webhooks/none", None, AdminOfNamespace, 404),
        case(M::GET, "/api/v1/namespaces/{namespace}/webhooks/{id}/deliveries", "/api/v1/namespaces/acme/webhooks/none/deliveries", None, AdminOfNamespace, 404),
        case(M::POST, "/api/v1/namespaces/{namespace}/webhooks/{id}/deliveries/{delivery}/redeliver", "/api/v1/namespaces/acme/webhooks/none/deliveries/none/redeliver", None, AdminOfNamespace, 404),
        case(M::PUT, "/api/v1/models/{namespace}/{model}/retention", "/api/v1/models/acme/secret/retention", Some("{}"), AdminOfNamespace, 200),
        case(M::DELETE, "/api/v1/models/{namespace}/{model}/retention", "/api/v1/models/acme/secret/retention", None, AdminOfNamespace, 204),
        case(M::POST, "/api/v1/models/{namespace}/{model}/quota-check", "/api/v1/models/acme/secret/quota-check", Some(r#"{"files":[]}"#), WritePrivateModel, 200),
        case(M::GET, "/api/v1/models", "/api/v1/models", None, Browse, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}", "/api/v1/models/acme/secret", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}", "/api/v1/models/acme/open", None, ReadPublicModel, 200),
        // Percent-encoding must not change whose rule applies: these are acme/secret too.
        case(M::GET, "/api/v1/models/{namespace}/{model}", "/api/v1/models/%61cme/s%65cret", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}", "/api/v1/%6Dodels/acme/secret", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions/{version}/files/{path}", "/api/v1/models/%61cme/secret/versions/1/files/w%2Ebin", None, ReadPrivateModel, 200),
        case(M::PATCH, "/api/v1/models/{namespace}/{model}", "/api/v1/models/ac%6De/secret", Some(r#"{"description":"by {who}"}"#), WritePrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}", "/api/%761/models/acme/secret", None, ReadPrivateModel, 200),
        case(M::POST, "/api/v1/users", "/%61pi/v1/users", Some(r#"{"name":"sneaky-{who}"}"#), Administrator, 201),
        // An absent model answers writes exactly as a private one does.
        case(M::PATCH, "/api/v1/models/{namespace}/{model}", "/api/v1/models/acme/absent", Some(r#"{"description":"x"}"#), WritePrivateModel, 404),
        case(M::PATCH, "/api/v1/models/{namespace}/{model}", "/api/v1/models/acme/secret", Some(r#"{"description":"by {who}"}"#), WritePrivateModel, 200),
        case(M::PATCH, "/api/v1/models/{namespace}/{model}", "/api/v1/models/acme/open", Some(r#"{"description":"by {who}"}"#), WritePublicModel, 200),
        case(M::PUT, "/api/v1/models/{namespace}/{model}/visibility", "/api/v1/models/acme/open/visibility", Some(r#"{"visibility":"public"}"#), AdminOfNamespace, 200),
        case(M::DELETE, "/api/v1/models/{namespace}/{model}", "/api/v1/models/acme/doomed-{who}", None, AdminOfNamespace, 204),
        case(M::POST, "/api/v1/models/{namespace}/{model}/versions", "/api/v1/models/acme/open/versions", Some(r#"{"version":"{who}","files":[{"path":"w.bin","digest":"{shared}","size":6}]}"#), WritePublicModel, 201),
        case(M::POST, "/api/v1/models/{namespace}/{model}/versions", "/api/v1/models/acme/secret/versions", Some(r#"{"version":"{who}","files":[{"path":"w.bin","digest":"{shared}","size":6}]}"#), WritePrivateModel, 201),
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions", "/api/v1/models/acme/secret/versions", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions", "/api/v1/models/acme/open/versions", None, ReadPublicModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions/{version}", "/api/v1/models/acme/secret/versions/1", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions/{version}", "/api/v1/models/acme/open/versions/1", None, ReadPublicModel, 200),
        case(M::DELETE, "/api/v1/models/{namespace}/{model}/versions/{version}", "/api/v1/models/acme/secret/versions/doomed-{who}", None, WritePrivateModel, 204),
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions/{version}/files/{path}", "/api/v1/models/acme/secret/versions/1/files/w.bin", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions/{version}/files/{path}", "/api/v1/models/acme/open/versions/1/files/w.bin", None, ReadPublicModel, 200),
        // The fixture's version is no model, so it has no variant: allowed callers learn just that.
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions/{version}/variants/{variant}/files/{path}", "/api/v1/models/acme/secret/versions/1/variants/onnx/files/model.onnx", None, ReadPrivateModel, 404),
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions/{version}/variants/{variant}/files/{path}", "/api/v1/models/acme/open/versions/1/variants/onnx/files/model.onnx", None, ReadPublicModel, 404),
        // Its manifest, signing the files as pushed (setup waits for the version to be ready).
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions/{version}/manifest", "/api/v1/models/acme/secret/versions/1/manifest", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions/{version}/manifest", "/api/v1/models/acme/open/versions/1/manifest", None, ReadPublicModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions/{version}/manifests/{sequence}", "/api/v1/models/acme/secret/versions/1/manifests/1", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions/{version}/manifests/{sequence}", "/api/v1/models/acme/open/versions/1/manifests/1", None, ReadPublicModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/aliases", "/api/v1/models/acme/secret/aliases", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/aliases", "/api/v1/models/acme/open/aliases", None, ReadPublicModel, 200),
        // Version 1 is ready (scanned): the alias is set, then read back by the routes below.
        case(M::PUT, "/api/v1/models/{namespace}/{model}/aliases/{alias}", "/api/v1/models/acme/secret/aliases/production", Some(r#"{"version":"1"}"#), WritePrivateModel, 200),
        case(M::PUT, "/api/v1/models/{namespace}/{model}/aliases/{alias}", "/api/v1/models/acme/open/aliases/production", Some(r#"{"version":"1"}"#), WritePublicModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/aliases/{alias}/history", "/api/v1/models/acme/secret/aliases/production/history", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/aliases/{alias}/history", "/api/v1/models/acme/open/aliases/production/history", None, ReadPublicModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/aliases/{alias}/manifest", "/api/v1/models/acme/secret/aliases/production/manifest", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/aliases/{alias}/manifest", "/api/v1/models/acme/open/aliases/production/manifest", None, ReadPublicModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/aliases/{alias}/manifests/{sequence}", "/api/v1/models/acme/secret/aliases/production/manifests/1", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/aliases/{alias}/manifests/{sequence}", "/api/v1/models/acme/open/aliases/production/manifests/1", None, ReadPublicModel, 200),
        case(M::POST, "/api/v1/runners", "/api/v1/runners", Some(r#"{"name":"r-{who}","device":"cpu","device_name":"cpu","memory_bytes":null,"driver":null,"engine":"e","kiln_version":"0","capabilities":[],"threads":1}"#), RunnerOnly, 201),
        case(M::GET, "/api/v1/runners", "/api/v1/runners", None, SignedIn, 200),
        // Allowed callers learn that no such runner was registered by their credential.
        case(M::POST, "/api/v1/runners/{runner}/heartbeat", "/api/v1/runners/no-such-runner/heartbeat", Some(r#"{"job_id":null}"#), RunnerOnly, 404),
        case(M::POST, "/api/v1/runners/{runner}/claim", "/api/v1/runners/no-such-runner/claim", None, RunnerOnly, 404),
        case(M::GET, "/api/v1/runners/{runner}/jobs/{job}/files/{path}", "/api/v1/runners/no-such-runner/jobs/j/files/model.onnx", None, RunnerOnly, 404),
        case(M::POST, "/api/v1/runners/{runner}/jobs/{job}/result", "/api/v1/runners/no-such-runner/jobs/j/result", Some(r#"{"outcome":"failed","message":"x"}"#), RunnerOnly, 404),
        case(M::POST, "/api/v1/runners/{runner}/distillations/claim", "/api/v1/runners/no-such-runner/distillations/claim", None, RunnerOnly, 404),
        case(M::GET, "/api/v1/runners/{runner}/distillations/{job}/teacher/{path}", "/api/v1/runners/no-such-runner/distillations/j/teacher/config.json", None, RunnerOnly, 404),
        case(M::GET, "/api/v1/runners/{runner}/distillations/{job}/data/{path}", "/api/v1/runners/no-such-runner/distillations/j/data/ids.npy", None, RunnerOnly, 404),
        case(M::PUT, "/api/v1/runners/{runner}/distillations/{job}/checkpoint", "/api/v1/runners/no-such-runner/distillations/j/checkpoint?step=1", None, RunnerOnly, 404),
        case(M::GET, "/api/v1/runners/{runner}/distillations/{job}/checkpoint", "/api/v1/runners/no-such-runner/distillations/j/checkpoint", None, RunnerOnly, 404),
        case(M::PUT, "/api/v1/runners/{runner}/distillations/{job}/files/{path}", "/api/v1/runners/no-such-runner/distillations/j/files/model.safetensors", None, RunnerOnly, 404),
        case(M::POST, "/api/v1/runners/{runner}/distillations/{job}/result", "/api/v1/runners/no-such-runner/distillations/j/result", Some(r#"{"outcome":"failed","message":"x"}"#), RunnerOnly, 404),
        // Reading the teacher is the route's rule; writing the student's namespace (acme) the service's.
        case(M::POST, "/api/v1/models/{namespace}/{model}/versions/{version}/distillations", "/api/v1/models/acme/secret/versions/1/distillations", Some(r#"{"into":"acme/secret:d-{who}"}"#), ReadPrivateModel, 201),
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions/{version}/distillations", "/api/v1/models/acme/secret/versions/1/distillations", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/versions/{version}/distillations", "/api/v1/models/acme/open/versions/1/distillations", None, ReadPublicModel, 200),
        case(M::GET, "/api/v1/distillations/{id}", "/api/v1/distillations/no-such-job", None, Browse, 404),
        case(M::POST, "/api/v1/distillations/{id}/cancel", "/api/v1/distillations/no-such-job/cancel", None, SignedIn, 404),
        case(M::POST, "/api/v1/blobs/missing", "/api/v1/blobs/missing", Some(r#"{"digests":["{digest}"]}"#), Upload, 200),
        case(M::POST, "/api/v1/uploads", "/api/v1/uploads", Some(r#"{"digest":"{digest}","size":{size}}"#), Upload, 201),
        case(M::GET, "/api/v1/uploads/{id}", "/api/v1/uploads/no-such-upload", None, Upload, 404),
        // Without Content-Range the chunk is refused before the session is looked up.
        case(M::PATCH, "/api/v1/uploads/{id}", "/api/v1/uploads/no-such-upload", None, Upload, 400),
        case(M::DELETE, "/api/v1/uploads/{id}", "/api/v1/uploads/no-such-upload", None, Upload, 404),
        case(M::POST, "/api/v1/uploads/{id}/commit", "/api/v1/uploads/no-such-upload/commit", None, Upload, 404),
        // The OCI distribution endpoint: the same rules, in the registry protocol's answers.
        case(M::GET, "/v2/", "/v2/", None, Credential, 200),
        case(M::GET, "/v2/token", "/v2/token?scope=repository:acme/secret:pull", None, Nothing, 200),
        case(M::GET, "/v2/{namespace}/{model}/tags/list", "/v2/acme/secret/tags/list", None, PullPrivate, 200),
        case(M::GET, "/v2/{namespace}/{model}/tags/list", "/v2/acme/open/tags/list", None, ReadPublicModel, 200),
        case(M::GET, "/v2/{namespace}/{model}/manifests/{reference}", "/v2/acme/secret/manifests/1", None, PullPrivate, 200),
        case(M::GET, "/v2/{namespace}/{model}/manifests/{reference}", "/v2/acme/open/manifests/1", None, ReadPublicModel, 200),
        case(M::GET, "/v2/{namespace}/{model}/blobs/{digest}", "/v2/acme/secret/blobs/{weights}", None, PullPrivate, 200),
        case(M::GET, "/v2/{namespace}/{model}/blobs/{digest}", "/v2/acme/open/blobs/{weights}", None, ReadPublicModel, 200),
        case(M::GET, "/v2/{namespace}/{model}/referrers/{digest}", "/v2/acme/secret/referrers/{weights}", None, PullPrivate, 200),
        case(M::POST, "/v2/{namespace}/{model}/blobs/uploads/", "/v2/acme/secret/blobs/uploads/", None, WritePrivateModel, 202),
        case(M::POST, "/v2/{namespace}/{model}/blobs/uploads/", "/v2/acme/open/blobs/uploads/", None, WritePublicModel, 202),
        case(M::POST, "/v2/{namespace}/{model}/blobs/uploads/", "/v2/acme/absent-{who}/blobs/uploads/", None, WritePrivateModel, 202),
        case(M::GET, "/v2/{namespace}/{model}/blobs/uploads/{id}", "/v2/acme/secret/blobs/uploads/no-such-upload", None, WritePrivateModel, 404),
        case(M::PATCH, "/v2/{namespace}/{model}/blobs/uploads/{id}", "/v2/acme/secret/blobs/uploads/no-such-upload", None, WritePrivateModel, 404),
        case(M::PUT, "/v2/{namespace}/{model}/blobs/uploads/{id}", "/v2/acme/secret/blobs/uploads/no-such-upload?digest={digest}", None, WritePrivateModel, 404),
        case(M::DELETE, "/v2/{namespace}/{model}/blobs/uploads/{id}", "/v2/acme/secret/blobs/uploads/no-such-upload", None, WritePrivateModel, 404),
        case(M::PUT, "/v2/{namespace}/{model}/manifests/{reference}", "/v2/acme/secret/manifests/oci-{who}", Some(OCI_MANIFEST), WritePrivateModel, 201),
        case(M::PUT, "/v2/{namespace}/{model}/manifests/{reference}", "/v2/acme/open/manifests/oci-{who}", Some(OCI_MANIFEST), WritePublicModel, 201),
        case(M::DELETE, "/v2/{namespace}/{model}/manifests/{reference}", "/v2/acme/secret/manifests/ocidoomed-{who}", None, WritePrivateModel, 202),
        case(M::DELETE, "/v2/{namespace}/{model}/blobs/{digest}", "/v2/acme/secret/blobs/{digest}", None, WritePrivateModel, 404),
    ]
}

/// The callers' credentials (None for anonymous), and the fixtures every case relies on.
async fn setup(app: &TestApp) -> Vec<(Caller, Option<String>)> {
    let post = |path: &'static str, body: Value| async move { app.post_json(path, &body).await };
    expect_json::<Value>(
        post("/api/v1/namespaces", json!({ "name": "acme" })).await,
        StatusCode::CREATED,
    )
    .await;
    expect_json::<Value>(
        post("/api/v1/namespaces", json!({ "name": "other" })).await,
        StatusCode::CREATED,
    )
    .await;
    for caller in CALLERS {
        for prefix in ["temp", "gone"] {
            let user = format!("{prefix}-{}", caller.slug());
            expect_json::<Value>(
                post("/api/v1/users", json!({ "name": user })).await,
                StatusCode::CREATED,
            )
            .await;
            let member = app.request(
                Method::PUT,
                &format!("/api/v1/namespaces/acme/members/{user}"),
            );
            let member = member.json(&json!({ "role": "reader" }));
            expect_json::<Value>(member.send().await.unwrap(), StatusCode::OK).await;
        }
    }
    for (name, namespace, role) in [
        ("outsider", "other", "reader"),
        ("writer", "acme", "writer"),
    ] {
        let body = json!({ "name": name, "password": "a long enough password" });
        expect_json::<Value>(post("/api/v1/users", body).await, StatusCode::CREATED).await;
        let member = app
            .request(
                Method::PUT,
                &format!("/api/v1/namespaces/{namespace}/members/{name}"),
            )
            .json(&json!({ "role": role }));
        expect_json::<Value>(member.send().await.unwrap(), StatusCode::OK).await;
    }
    for model in ["secret", "open"] {
        expect_json::<Value>(
            app.push(&format!("acme/{model}:1"), &[("w.bin", b"weights")])
                .await,
            StatusCode::CREATED,
        )
        .await;
        app.settled_version(&format!("acme/{model}:1")).await;
        for caller in CALLERS {
            let doomed = format!("acme/{model}:ocidoomed-{}", caller.slug());
            expect_json::<Value>(
                app.push(&doomed, &[("w.bin", b"weights")]).await,
                StatusCode::CREATED,
            )
            .await;
            let doomed = format!("acme/{model}:doomed-{}", caller.slug());
            expect_json::<Value>(
                app.push(&doomed, &[("w.bin", b"weights")]).await,
                StatusCode::CREATED,
            )
            .await;
        }
    }
    // A public model per caller for the model deletion case.
    for caller in CALLERS {
        let doomed = format!("acme/doomed-{}", caller.slug());
        expect_json::<Value>(
            app.push(&format!("{doomed}:1"), &[("w.bin", b"weights")])
                .await,
            StatusCode::CREATED,
        )
        .await;
        let public = app
            .request(Method::PUT, &format!("/api/v1/models/{doomed}/visibility"))
            .json(&json!({ "visibility": "public" }));
        expect_json::<Value>(public.send().await.unwrap(), StatusCode::OK).await;
    }
    // The blob every caller commits: held by a public version, so anyone who may write can use it.
    expect_json::<Value>(
        app.push("acme/open:shared-source", &[("w.bin", b"shared")])
            .await,
        StatusCode::CREATED,
    )
    .await;
    let visibility = app
        .request(Method::PUT, "/api/v1/models/acme/open/visibility")
        .json(&json!({ "visibility": "public" }));
    expect_json::<Value>(visibility.send().await.unwrap(), StatusCode::OK).await;

    let token_of = |user: &'static str, scopes: Value| async move {
        let login = app.anonymous(Method::POST, "/api/v1/auth/token");
        let access: Value = expect_json(
            login
                .json(&json!({ "username": user, "password": "a long enough password" }))
                .send()
                .await
                .unwrap(),
            StatusCode::OK,
        )
        .await;
        let create = app
            .anonymous(Method::POST, "/api/v1/tokens")
            .bearer_auth(access["access_token"].as_str().unwrap());
        let created: Value = expect_json(
            create
                .json(&json!({ "name": "matrix", "scopes": scopes }))
                .send()
                .await
                .unwrap(),
            StatusCode::CREATED,
        )
        .await;
        (
            created["token"].as_str().unwrap().to_owned(),
            created["id"].as_str().unwrap().to_owned(),
        )
    };
    let (outsider, _) = token_of("outsider", json!(["admin"])).await;
    let (writer, _) = token_of("writer", json!(["write"])).await;
    let (revoked, revoked_id) = token_of("writer", json!(["write"])).await;
    let response = app
        .request(Method::DELETE, &format!("/api/v1/tokens/{revoked_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let runner: Value = expect_json(
        app.post_json(
            "/api/v1/tokens",
            &json!({ "name": "runner", "scopes": ["runner"] }),
        )
        .await,
        StatusCode::CREATED,
    )
    .await;

    let (forged_expired, forged_other_key, forged_none, forged_audience) = forged_tokens(app).await;
    vec![
        (Caller::Anonymous, None),
        (Caller::Expired, Some(forged_expired)),
        (Caller::OtherKey, Some(forged_other_key)),
        (Caller::AlgNone, Some(forged_none)),
        (Caller::WrongAudience, Some(forged_audience)),
        (Caller::Revoked, Some(revoked)),
        (Caller::Outsider, Some(outsider)),
        (Caller::Writer, Some(writer)),
        (Caller::Admin, Some(crate::harness::ADMIN_TOKEN.to_owned())),
        (
            Caller::Runner,
            Some(runner["token"].as_str().unwrap().to_owned()),
        ),
    ]
}

/// Access tokens for the administrator that must all be refused: expired, signed by a key the server does
/// not have (under the server's key id), unsigned (`alg: none`), and meant for another audience.
async fn forged_tokens(app: &TestApp) -> (String, String, String, String) {
    let keys = app
        .db
        .run(|conn| Ok(jwt_keys::usable(conn, chrono::Utc::now().naive_utc())?))
        .await
        .unwrap();
    let key = &keys[0];
    let me: Value = expect_json(app.get("/api/v1/me").await, StatusCode::OK).await;
    assert_eq!(me["name"], "admin");
    let admin_id = app
        .db
        .run(|conn| Ok(kiln_server::db::repos::users::find_by_name(conn, "admin")?))
        .await
        .unwrap()
        .unwrap()
        .id;
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str, issued: i64| Claims {
        iss: ISSUER.to_owned(),
        aud: aud.to_owned(),
        sub: admin_id.clone(),
        iat: issued,
        nbf: issued,
        exp: issued + 900,
        scope: "admin".to_owned(),
        tid: None,
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(key.kid.clone());
    let server_key = EncodingKey::from_ed_der(&key.private_key);
    let sign =
        |claims: &Claims, key: &EncodingKey| jsonwebtoken::encode(&header, claims, key).unwrap();

    // Sanity: a token made this way with the right claims is accepted, so the refusals below are real.
    let good = sign(&claims(AUDIENCE, now), &server_key);
    let accepted = app
        .anonymous(Method::GET, "/api/v1/me")
        .bearer_auth(&good)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);

    let expired = sign(&claims(AUDIENCE, now - 7200), &server_key);
    let other = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let other_key = sign(
        &claims(AUDIENCE, now),
        &EncodingKey::from_ed_der(other.as_ref()),
    );
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none_header =
        b64.encode(json!({ "alg": "none", "typ": "JWT", "kid": key.kid }).to_string());
    let none_claims = b64.encode(serde_json::to_vec(&claims(AUDIENCE, now)).unwrap());
    let unsigned = format!("{none_header}.{none_claims}.");
    let audience = sign(&claims("another-service", now), &server_key);
    (expired, other_key, unsigned, audience)
}

fn fill(template: &str, caller: Caller) -> String {
    let own = format!("blob for {}", caller.slug());
    template
        .replace("{who}", caller.slug())
        .replace("{digest}", &Sha256Digest::of(own.as_bytes()).to_string())
        .replace("{size}", &own.len().to_string())
        .replace("{shared}", &Sha256Digest::of(b"shared").to_string())
        .replace("{weights}", &Sha256Digest::of(b"weights").to_string())
}

async fn every_route_answers_every_caller_as_the_rules_say(app: TestApp) {
    let callers = setup(&app).await;
    let mut wrong = Vec::new();
    for case in cases() {
        for (caller, credential) in &callers {
            let mut request = app.anonymous(case.method.clone(), &fill(case.path, *caller));
            if let Some(credential) = credential {
                request = request.bearer_auth(credential);
            }
            if let Some(body) = case.body {
                let content_type = if case.path.contains("/manifests/") {
                    "application/vnd.oci.image.manifest.v1+json"
                } else {
                    "application/json"
                };
                request = request
                    .header("content-type", content_type)
                    .body(fill(body, *caller));
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let want = expected(case.needs, *caller, case.ok);
            if status != want {
                let body = response.text().await.unwrap_or_default();
                wrong.push(format!(
                    "{} {} as {:?}: got {status}, want {want}: {body}",
                    case.method, case.path, caller
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} wrong answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// Every operation of the OpenAPI document is in the access table above, and in the server's policy table.
#[test]
fn every_route_is_in_the_access_tables() {
    let spec: Value = serde_json::from_str(include_str!("../../../openapi/openapi.json")).unwrap();
    let tested: std::collections::BTreeSet<(String, String)> = cases()
        .iter()
        .map(|c| (c.method.to_string(), c.route.to_owned()))
        .collect();
    let mut missing = Vec::new();
    for (path, operations) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for method in operations.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            if !tested.contains(&(method.clone(), path.clone())) {
                missing.push(format!("{method} {path} (access test)"));
            }
            let has_rule = kiln_server::auth::policy::ROUTES
                .iter()
                .any(|(m, pattern, _)| *m == method && pattern.replace(":.+", "") == *path);
            if !has_rule {
                missing.push(format!("{method} {path} (server policy table)"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes without access rules or tests:\n{}",
        missing.join("\n")
    );
}

/// Every `/v2/` route is in the access table too.
#[test]
fn every_oci_route_is_in_the_access_table() {
    let tested: std::collections::BTreeSet<(String, String)> = cases()
        .iter()
        .map(|c| (c.method.to_string(), c.route.to_owned()))
        .collect();
    let missing: Vec<String> = kiln_server::http::oci::ROUTES
        .iter()
        .filter(|(m, route)| !tested.contains(&((*m).to_owned(), (*route).to_owned())))
        .map(|(m, route)| format!("{m} {route}"))
        .collect();
    assert!(
        missing.is_empty(),
        "/v2/ routes without access tests: {missing:?}"
    );
}

crate::on_every_backend!(every_route_answers_every_caller_as_the_rules_say);
