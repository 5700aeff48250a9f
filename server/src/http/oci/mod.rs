//! `/v2/`: the OCI distribution API (distribution-spec v1.1): pull and discovery (`pull`), push and
//! deletion (`push`), the token endpoint (`token`), and here what they share: the spec's error bodies
//! and codes, who the caller is (Basic with a user name and an API token or password, or Bearer with a
//! kiln token), and the REST API's own access rules for reading and changing a model.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use base64::Engine;
use kiln_core::api::TokenRequest;
use kiln_core::{ErrorCode, ModelName, NamespaceName};
use serde::Deserialize;

use crate::auth::Principal;
use crate::auth::policy::Rule;
use crate::error::Error;
use crate::services::Services;
use crate::services::oci::uploads::Pusher;

pub(crate) const API_VERSION: &str = "registry/2.0";

/// An error as the distribution spec writes one: `{"errors": [{"code", "message"}]}`.
#[derive(Debug)]
pub struct OciError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// For a 401: the `WWW-Authenticate` challenge (the token endpoint and the scope to ask it for).
    challenge: Option<String>,
}

/// What the token endpoint hands a caller without credentials: Bearer with it is anonymous (public
/// models only). It is no secret and grants nothing.
const ANONYMOUS_TOKEN: &str = "kiln-anonymous";

/// `Bearer realm="<this server>/v2/token",service="kiln"`, with the scope a repository needs.
fn challenge(req: &HttpRequest, scope: Option<String>) -> String {
    let info = req.connection_info();
    let mut value = format!(
        "Bearer realm=\"{}://{}/v2/token\",service=\"kiln\"",
        info.scheme(),
        info.host()
    );
    if let Some(scope) = scope {
        value.push_str(&format!(",scope=\"{scope}\""));
    }
    value
}

fn unauthorized(req: &HttpRequest, scope: Option<String>, message: impl Into<String>) -> OciError {
    OciError {
        challenge: Some(challenge(req, scope)),
        ..OciError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }
}

impl std::fmt::Display for OciError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl OciError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            challenge: None,
        }
    }
}

/// kiln's errors in the spec's codes: a missing or invisible model is NAME_UNKNOWN, a bad name
/// NAME_INVALID, a refused manifest MANIFEST_INVALID (or MANIFEST_BLOB_UNKNOWN when it names blobs the
/// repository lacks), a chunk out of order BLOB_UPLOAD_INVALID (416), a bad digest DIGEST_INVALID,
/// a tag that names no kiln version TAG_INVALID, a changed version DENIED (409), a deletion only kiln
/// may do UNSUPPORTED (405).
impl From<Error> for OciError {
    fn from(e: Error) -> Self {
        let mut status = e.status_code();
        let code = match &e {
            Error::NotFound { .. } => "NAME_UNKNOWN",
            Error::InvalidName(_) => "NAME_INVALID",
            Error::Unauthorized { .. } => "UNAUTHORIZED",
            Error::Forbidden { .. } => "DENIED",
            Error::TooManyRequests { .. } => "TOOMANYREQUESTS",
            Error::PayloadTooLarge { .. } => "SIZE_INVALID",
            _ if status.is_server_error() => "UNKNOWN",
            other => match other.code() {
                ErrorCode::MissingBlobs => "MANIFEST_BLOB_UNKNOWN",
                ErrorCode::DigestMismatch | ErrorCode::InvalidDigest => "DIGEST_INVALID",
                ErrorCode::InvalidName => "TAG_INVALID",
                ErrorCode::OffsetMismatch => {
                    status = StatusCode::RANGE_NOT_SATISFIABLE;
                    "BLOB_UPLOAD_INVALID"
                }
                ErrorCode::InvalidContentRange => "BLOB_UPLOAD_INVALID",
                ErrorCode::Unsupported => {
                    // What the spec answers a deletion the registry does not do.
                    status = StatusCode::METHOD_NOT_ALLOWED;
                    "UNSUPPORTED"
                }
                ErrorCode::VersionConflict | ErrorCode::VersionAliased => "DENIED",
                ErrorCode::InvalidJson
                | ErrorCode::InvalidContentType
                | ErrorCode::InvalidPath
                | ErrorCode::NoFiles
                | ErrorCode::TooManyFiles
                | ErrorCode::DuplicatePath
                | ErrorCode::PathConflict
                | ErrorCode::SizeMismatch => "MANIFEST_INVALID",
                _ => "UNSUPPORTED",
            },
        };
        OciError::new(status, code, e.client_message())
    }
}

impl From<kiln_core::CoreError> for OciError {
    fn from(e: kiln_core::CoreError) -> Self {
        Error::from(e).into()
    }
}

impl ResponseError for OciError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header(("Docker-Distribution-API-Version", API_VERSION));
        let challenge = self
            .challenge
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok());
        match challenge {
            Some(value) => {
                response.insert_header((header::WWW_AUTHENTICATE, value));
            }
            None if self.status == StatusCode::UNAUTHORIZED => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"kiln\""),
                ));
            }
            None => {}
        }
        response.json(serde_json::json!({
            "errors": [{ "code": self.code, "message": self.message }]
        }))
    }
}

/// The caller, from `Authorization`: Basic (a user name, and an API token or the user's password) or
/// Bearer (an API token or access token); nobody without one.
async fn caller(services: &Services, req: &HttpRequest) -> Result<Principal, OciError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(Principal::Anonymous);
    };
    let refused = || {
        unauthorized(
            req,
            None,
            "send Basic with a kiln user name and an API token (or password), or Bearer with a token",
        )
    };
    let value = value.to_str().map_err(|_| refused())?;
    let principal = if let Some(token) = value.strip_prefix("Bearer ") {
        if token.trim() == ANONYMOUS_TOKEN {
            return Ok(Principal::Anonymous);
        }
        services.accounts.principal_for(token.trim(), None).await
    } else if let Some(encoded) = value.strip_prefix("Basic ") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(refused)?;
        let (user, secret) = decoded.split_once(':').ok_or_else(refused)?;
        if user.is_empty() && secret.is_empty() {
            // What a client without credentials answers a Basic challenge with.
            return Ok(Principal::Anonymous);
        }
        // The password is an API token (what `docker login` / `oras login` are given), or else the
        // user's password.
        let as_token = services.accounts.principal_for(secret, None).await;
        if !matches!(as_token, Err(Error::Unauthorized { .. })) {
            as_token
        } else {
            let signed_in = services
                .accounts
                .verify_credentials(TokenRequest {
                    username: Some(user.to_owned()),
                    password: Some(secret.to_owned()),
                    token: None,
                })
                .await;
            match signed_in {
                Ok(s) => {
                    services
                        .accounts
                        .principal_of_user(s.user_id, s.scope, s.token_id)
                        .await
                }
                Err(e) => Err(e),
            }
        }
    } else {
        return Err(refused());
    };
    principal.map_err(|e| match e {
        Error::Unauthorized { .. } => refused(),
        other => other.into(),
    })
}

/// An error for this caller: registry clients send credentials only when challenged, so an anonymous
/// caller refused a repository (private, or absent: the two answer alike) is asked to authenticate.
fn refusal(
    req: &HttpRequest,
    e: Error,
    principal: &Principal,
    ns: &NamespaceName,
    model: &ModelName,
) -> OciError {
    match (e, principal) {
        (Error::NotFound { .. } | Error::Unauthorized { .. }, Principal::Anonymous) => {
            unauthorized(
                req,
                Some(format!("repository:{ns}/{model}:pull")),
                format!("authenticate to read {ns}/{model}"),
            )
        }
        (e, _) => e.into(),
    }
}

/// The caller, who may read this repository (or the refusal the spec asks for). One who may write to
/// it may also read what they pushed into it before its model exists.
async fn reader(
    services: &Services,
    req: &HttpRequest,
    ns: &NamespaceName,
    model: &ModelName,
) -> Result<Principal, OciError> {
    let principal = caller(services, req).await?;
    let remote = req.peer_addr().map(|a| a.ip().to_string());
    services
        .access
        .take_request(&principal.rate_key(remote.as_deref()))?;
    let target = (Some(ns.to_string()), Some(model.to_string()));
    let decided = services
        .access
        .decide(
            Rule::ReadModel,
            &principal,
            target.0.clone(),
            target.1.clone(),
        )
        .await;
    match decided {
        Ok(()) => Ok(principal),
        Err(e @ Error::NotFound { .. }) if principal.user().is_some() => {
            match services
                .access
                .decide(Rule::WriteModel, &principal, target.0, target.1)
                .await
            {
                Ok(()) => Ok(principal),
                // Refused writing too: as absent as before.
                Err(_) => Err(refusal(req, e, &principal, ns, model)),
            }
        }
        Err(e) => Err(refusal(req, e, &principal, ns, model)),
    }
}

fn bearer(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "))
}

/// The caller, who may push to (and delete from) this repository: a signed-in writer of its namespace.
async fn writer(
    services: &Services,
    req: &HttpRequest,
    ns: &NamespaceName,
    model: &ModelName,
) -> Result<(Principal, Pusher), OciError> {
    let principal = caller(services, req).await?;
    let remote = req.peer_addr().map(|a| a.ip().to_string());
    services
        .access
        .take_request(&principal.rate_key(remote.as_deref()))?;
    let scope = format!("repository:{ns}/{model}:pull,push");
    let Some(user) = principal.user() else {
        if let Principal::Anonymous = principal {
            return Err(unauthorized(
                req,
                Some(scope.clone()),
                format!("authenticate to push to {ns}/{model}"),
            ));
        }
        return Err(OciError::new(
            StatusCode::FORBIDDEN,
            "DENIED",
            "only a user pushes; this credential is a runner's",
        ));
    };
    let pusher = Pusher {
        user_id: user.id.clone(),
        visible: principal.visible(),
    };
    services
        .access
        .decide(
            Rule::WriteModel,
            &principal,
            Some(ns.to_string()),
            Some(model.to_string()),
        )
        .await
        .map_err(|e| match e {
            // A bearer token (one the token endpoint issued for pulling, say) is asked to come back
            // with one for this scope; the token endpoint grants it only as far as the credential goes.
            // RFC 6750's insufficient_scope: 403 with the challenge naming the scope it needs.
            Error::NotFound { .. } | Error::Forbidden { .. } if bearer(req) => OciError {
                challenge: Some(format!(
                    "{},error=\"insufficient_scope\"",
                    challenge(req, Some(scope.clone()))
                )),
                ..OciError::new(
                    StatusCode::FORBIDDEN,
                    "DENIED",
                    format!("this token may not push to {ns}/{model}; ask the token endpoint for {scope}"),
                )
            },
            Error::NotFound { .. } | Error::Forbidden { .. } => OciError::new(
                StatusCode::FORBIDDEN,
                "DENIED",
                format!("you may not push to {ns}/{model}"),
            ),
            other => other.into(),
        })?;
    Ok((principal, pusher))
}

#[derive(Debug, Deserialize)]
pub struct RepositoryPath {
    namespace: String,
    model: String,
}

impl RepositoryPath {
    fn parse(&self) -> Result<(NamespaceName, ModelName), OciError> {
        Ok((self.namespace.parse()?, self.model.parse()?))
    }
}

#[derive(Debug, Deserialize)]
pub struct ReferencePath {
    namespace: String,
    model: String,
    reference: String,
}

#[derive(Debug, Deserialize)]
pub struct DigestPath {
    namespace: String,
    model: String,
    digest: String,
}

mod pull;
mod push;
mod token;

/// Every `/v2/` route (method and pattern), as [`routes`] registers them: the access matrix test calls
/// each with every kind of caller, and fails while one here is missing from it.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v2/"),
    ("GET", "/v2/token"),
    ("GET", "/v2/{namespace}/{model}/tags/list"),
    ("GET", "/v2/{namespace}/{model}/manifests/{reference}"),
    ("PUT", "/v2/{namespace}/{model}/manifests/{reference}"),
    ("DELETE", "/v2/{namespace}/{model}/manifests/{reference}"),
    ("POST", "/v2/{namespace}/{model}/blobs/uploads/"),
    ("GET", "/v2/{namespace}/{model}/blobs/uploads/{id}"),
    ("PATCH", "/v2/{namespace}/{model}/blobs/uploads/{id}"),
    ("PUT", "/v2/{namespace}/{model}/blobs/uploads/{id}"),
    ("DELETE", "/v2/{namespace}/{model}/blobs/uploads/{id}"),
    ("GET", "/v2/{namespace}/{model}/blobs/{digest}"),
    ("DELETE", "/v2/{namespace}/{model}/blobs/{digest}"),
    ("GET", "/v2/{namespace}/{model}/referrers/{digest}"),
];

/// Registers `/v2/`.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(pull::base)
        .service(token::token_endpoint)
        .service(pull::tags)
        .service(pull::manifest)
        .service(push::put_manifest)
        .service(push::delete_manifest)
        .service(push::start_upload)
        .service(push::start_upload_unslashed)
        .service(push::upload_progress)
        .service(push::append)
        .service(push::finish_upload)
        .service(push::cancel_upload)
        .service(pull::blob)
        .service(push::delete_blob)
        .service(pull::referrers);
}
