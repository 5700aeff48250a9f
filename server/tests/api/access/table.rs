//! The access matrix's table: what each route needs, the status each caller must get for it, and one
//! concrete request per route.

use reqwest::Method;

use super::Caller;

/// What a route needs, which fixes the answer for each caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Needs {
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
pub(super) fn expected(needs: Needs, caller: Caller, ok: u16) -> u16 {
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

pub(super) struct Case {
    pub(super) method: Method,
    /// The route as the OpenAPI document names it.
    pub(super) route: &'static str,
    /// The request; `{who}` becomes the caller's slug, `{digest}`/`{size}` a blob unique to the caller.
    pub(super) path: &'static str,
    pub(super) body: Option<&'static str>,
    pub(super) needs: Needs,
    pub(super) ok: u16,
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
pub(super) fn cases() -> Vec<Case> {
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
        case(M::PUT, "/api/v1/servings/{serving}", "/api/v1/servings/s-{who}", Some(r#"{"namespace":"acme","model":"secret","version":"1","variant":"fp32","sha256":"{weights}","sequence":1,"engine":"onnxruntime","device":"cpu","name":"n-{who}","endpoints":["http://serve:8080"]}"#), RunnerOnly, 200),
        case(M::DELETE, "/api/v1/servings/{serving}", "/api/v1/servings/s-{who}", None, RunnerOnly, 204),
        case(M::GET, "/api/v1/models/{namespace}/{model}/servings", "/api/v1/models/acme/secret/servings", None, ReadPrivateModel, 200),
        case(M::GET, "/api/v1/models/{namespace}/{model}/servings", "/api/v1/models/acme/open/servings", None, ReadPublicModel, 200),
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
