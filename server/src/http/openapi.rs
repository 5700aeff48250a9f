//! The OpenAPI document's frame: info and tags, the bearer scheme, the error answers every operation
//! shares, and the access rules of [`crate::auth::policy`] written into each operation (its security
//! requirement and the refusals the rule can answer), so the document cannot drift from the policy table.
//! Whether a resource exists is each operation's own answer: every route naming a namespace declares
//! its 404 with what it means there.

use kiln_core::api::ErrorResponse;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{OpenApi, PartialSchema, ToResponse, ToSchema};

use crate::auth::policy::{ROUTES, Rule};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "kiln",
        description = "kiln model registry: versioned models in content-addressed storage.\n\n\
            Errors are JSON `{\"error\": {\"code\", \"message\", \"details\"?}}` (the `ErrorResponse` \
            schema) with a 4xx or 5xx status; `code` is a stable machine-readable reason.\n\n\
            Operations that accept a bearer token list the `bearer` scheme; those that also answer \
            anonymous callers (public models, listings) list an empty requirement beside it.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    tags(
        (name = "models", description = "Namespaces, models and versions"),
        (name = "blobs", description = "Content-addressed blob uploads"),
        (name = "files", description = "Downloading a version's files"),
        (name = "health", description = "Liveness and readiness"),
        (name = "manifests", description = "Signed deployment manifests and their public keys"),
        (name = "runners", description = "Benchmark runners: registration, job leases, reports"),
        (name = "servings", description = "Where models are being served: reports of `kiln-runner serve` processes"),
        (name = "aliases", description = "Movable names for versions (production, staging) and their history"),
        (name = "auth", description = "Signing in, the caller, API tokens"),
        (name = "namespaces", description = "Organisation namespaces and their members"),
        (name = "admin", description = "Users, the audit log, signing keys (administrators)"),
        (name = "storage", description = "Garbage collection, the store check, usage, quotas and retention rules"),
        (name = "webhooks", description = "Subscriptions to a namespace's events, delivered signed (Standard Webhooks), and their delivery log"),
    ),
    components(
        schemas(ErrorResponse),
        responses(
            BadRequest, Unauthorized, Forbidden, PayloadTooLarge, RangeNotSatisfiable,
            TooManyRequests, Unavailable, NotModified, PreconditionFailed, RequestTimeout
        )
    ),
    modifiers(&BearerAuth)
)]
pub(super) struct ApiDoc;

/// Declares the bearer scheme: API tokens (`kiln_...`) or access tokens (JWT) from `/auth/token`.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`kiln_...`, from `POST /api/v1/tokens`) or an access token \
                         (a JWT from `POST /api/v1/auth/token`)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The request was refused before anything changed: a name or path parameter that does not parse
/// (`invalid_name`, `invalid_path`, `invalid_path_parameter`), a bad query (`invalid_query`,
/// `invalid_page`) or a JSON body that is not JSON or not this operation's schema (`invalid_json`,
/// `invalid_content_type`). `error.message` names the field.
#[derive(ToResponse)]
#[allow(dead_code)] // only its schema is used
pub(super) struct BadRequest(ErrorResponse);

/// No usable credential: the operation needs one and none was sent, or the `Authorization` header is
/// not `Bearer TOKEN`, or the token is unknown, expired or revoked (`unauthorized`).
#[derive(ToResponse)]
#[response(headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"kiln\"`")))]
#[allow(dead_code)]
pub(super) struct Unauthorized(ErrorResponse);

/// The credential is valid but may not do this (`forbidden`): the user's role in the namespace or the
/// token's scopes are too low, the operation is for administrators, or a runner token was used outside
/// the runner routes (or a user's token on them).
#[derive(ToResponse)]
#[allow(dead_code)]
pub(super) struct Forbidden(ErrorResponse);

/// The JSON body is larger than the server's configured limit (`payload_too_large`).
#[derive(ToResponse)]
#[allow(dead_code)]
pub(super) struct PayloadTooLarge(ErrorResponse);

/// The caller's request budget is spent (`rate_limited`): per credential, or per address for anonymous
/// callers and failed sign-ins. Retry after the `Retry-After` seconds.
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds until a request will be accepted")))]
#[allow(dead_code)]
pub(super) struct TooManyRequests(ErrorResponse);

/// The database did not answer in time (`unavailable`); nothing was changed. Retry after `Retry-After`.
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds to wait before retrying")))]
#[allow(dead_code)]
pub(super) struct Unavailable(ErrorResponse);

/// The `Range` asked for starts past the end of the file (`range_not_satisfiable`); `details.size` and
/// `Content-Range: bytes */SIZE` give the file's size.
#[derive(ToResponse)]
#[response(headers(("Content-Range" = String, description = "`bytes */SIZE`")))]
#[allow(dead_code)]
pub(super) struct RangeNotSatisfiable(ErrorResponse);

/// The client's copy is current: `If-None-Match` named the file's ETag (or `*`). No body.
#[derive(ToResponse)]
#[response(headers(
    ("ETag" = String, description = "The file's sha256 digest, quoted"),
    ("Cache-Control" = String, description = "As the 200 would say")
))]
#[allow(dead_code)]
pub(super) struct NotModified;

/// `If-Match` did not name the file's ETag (`precondition_failed`): it is not the file the client meant.
#[derive(ToResponse)]
#[allow(dead_code)]
pub(super) struct PreconditionFailed(ErrorResponse);

/// The request body arrived slower than the server's minimum rate (`request_timeout`,
/// `min_body_bytes_per_sec`); the connection is closed. Send it again, faster or in smaller chunks.
#[derive(ToResponse)]
#[allow(dead_code)]
pub(super) struct RequestTimeout(ErrorResponse);

/// Raw bytes on the wire (`application/octet-stream`): a file's content or an upload chunk.
pub(super) struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// A compact JWS (RFC 7515): three base64url parts joined by dots.
pub(super) struct CompactJws;

impl PartialSchema for CompactJws {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"))
            .description(Some("Compact JWS (EdDSA) over the manifest document"))
            .into()
    }
}

impl ToSchema for CompactJws {}

/// Writes each `/api/v1` operation's access rule into it: who may call (its security requirement) and
/// the refusals the middleware can answer before the handler runs. Runs on the assembled document,
/// after the routes added their paths.
pub(super) fn apply_access_rules(openapi: &mut utoipa::openapi::OpenApi) {
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [
            ("GET", &mut item.get),
            ("PUT", &mut item.put),
            ("POST", &mut item.post),
            ("DELETE", &mut item.delete),
            ("PATCH", &mut item.patch),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            if !path.starts_with("/api/v1/") {
                // Health and the JWKS are outside the access rules: anyone may call them.
                operation.security = Some(Vec::new());
                continue;
            }
            let rule = ROUTES
                .iter()
                .find(|(m, pattern, _)| *m == method && pattern.replace(":.+", "") == *path)
                .map(|(_, _, rule)| *rule)
                .unwrap_or_else(|| panic!("{method} {path} has no rule in auth::policy::ROUTES"));
            apply_rule(operation, rule);
        }
    }
}

fn apply_rule(operation: &mut Operation, rule: Rule) {
    let bearer = || SecurityRequirement::new("bearer", Vec::<String>::new());
    operation.security = match rule {
        Rule::Public => Some(Vec::new()),
        // An empty requirement beside the bearer one: anonymous callers are answered too.
        Rule::Browse | Rule::ReadModel => Some(vec![SecurityRequirement::default(), bearer()]),
        _ => Some(vec![bearer()]),
    };
    // A bad credential is refused on every route, the public ones too; every caller has a budget; every
    // route but the token exchange refuses some callers.
    let mut shared = vec![
        ("401", "Unauthorized"),
        ("429", "TooManyRequests"),
        ("503", "Unavailable"),
    ];
    if rule != Rule::Public {
        shared.push(("403", "Forbidden"));
    }
    let has_input = operation.parameters.as_ref().is_some_and(|p| !p.is_empty())
        || operation.request_body.is_some();
    if has_input {
        shared.push(("400", "BadRequest"));
    }
    let json_body = operation
        .request_body
        .as_ref()
        .is_some_and(|body| match body {
            RefOr::T(body) => body.content.contains_key("application/json"),
            RefOr::Ref(_) => false,
        });
    if json_body {
        shared.push(("413", "PayloadTooLarge"));
    }
    // Any body, JSON or bytes, may arrive too slowly (http::body_rate).
    if operation.request_body.is_some() {
        shared.push(("408", "RequestTimeout"));
    }
    let responses = &mut operation.responses.responses;
    for (status, name) in shared {
        // An operation that says what this status means for it keeps its own words.
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
}
