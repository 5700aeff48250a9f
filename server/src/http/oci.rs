//! `/v2/`: the OCI distribution API, pull side (distribution-spec v1.1): the base endpoint, tag lists
//! with `n`/`last`, manifests and blobs by tag or digest with `Docker-Content-Digest`, `Range` on blobs,
//! and the spec's error bodies and codes. A caller is who its `Authorization` says (Basic with a user
//! name and an API token or password, or Bearer with a kiln token), and every repository is decided by
//! the REST API's own access rule for reading a model.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{Data, Path, Query};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, get};
use base64::Engine;
use futures_util::TryStreamExt;
use kiln_core::api::TokenRequest;
use kiln_core::{ModelName, NamespaceName, Sha256Digest};
use serde::Deserialize;

use super::file_responses::{Ranged, ranged};
use super::head::{HeadRequest, Headers};
use crate::auth::Principal;
use crate::auth::policy::Rule;
use crate::error::Error;
use crate::services::Services;
use crate::services::oci::{Blob, Reference};

const API_VERSION: &str = "registry/2.0";

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
/// NAME_INVALID, anything else as its status says.
impl From<Error> for OciError {
    fn from(e: Error) -> Self {
        let status = e.status_code();
        let code = match &e {
            Error::NotFound { .. } => "NAME_UNKNOWN",
            Error::InvalidName(_) => "NAME_INVALID",
            Error::Unauthorized { .. } => "UNAUTHORIZED",
            Error::Forbidden { .. } => "DENIED",
            Error::TooManyRequests { .. } => "TOOMANYREQUESTS",
            _ if status.is_server_error() => "UNKNOWN",
            _ => "UNSUPPORTED",
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
        if self.status == StatusCode::UNAUTHORIZED {
            let value = self
                .challenge
                .as_deref()
                .and_then(|c| HeaderValue::from_str(c).ok())
                .unwrap_or(HeaderValue::from_static("Basic realm=\"kiln\""));
            response.insert_header((header::WWW_AUTHENTICATE, value));
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

/// The caller, who may read this repository (or the refusal the spec asks for).
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
    let decided = services
        .access
        .decide(
            Rule::ReadModel,
            &principal,
            Some(ns.to_string()),
            Some(model.to_string()),
        )
        .await;
    match decided {
        Ok(()) => Ok(principal),
        Err(e) => Err(refusal(req, e, &principal, ns, model)),
    }
}

#[derive(Debug, Deserialize)]
pub struct RepositoryPath {
    namespace: String,
    model: String,
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

/// The base endpoint: 200 to a caller whose credentials are good, 401 with the challenge to one who sent
/// none. Clients learn from this answer how to authenticate (containers/image sends no credentials to a
/// registry whose base answered 200 unasked); without credentials they still pull public models.
#[get("/v2/")]
async fn base(services: Data<Services>, req: HttpRequest) -> Result<HttpResponse, OciError> {
    if let Principal::Anonymous = caller(&services, &req).await? {
        return Err(unauthorized(
            &req,
            None,
            "authenticate with a kiln user name and an API token; public models need none",
        ));
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Docker-Distribution-API-Version", API_VERSION))
        .json(serde_json::json!({})))
}

#[derive(Debug, Deserialize)]
pub struct TagsQuery {
    n: Option<usize>,
    last: Option<String>,
}

#[get("/v2/{namespace}/{model}/tags/list")]
async fn tags(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<RepositoryPath>,
    query: Query<TagsQuery>,
) -> Result<HttpResponse, OciError> {
    let (ns, model): (NamespaceName, ModelName) = (path.namespace.parse()?, path.model.parse()?);
    let principal = reader(&services, &req, &ns, &model).await?;
    let query = query.into_inner();
    let tags = services
        .oci
        .tags(ns.clone(), model.clone(), query.n, query.last)
        .await
        .map_err(|e| refusal(&req, e, &principal, &ns, &model))?;
    let mut response = HttpResponse::Ok();
    response.insert_header(("Docker-Distribution-API-Version", API_VERSION));
    if let (Some(n), Some(last)) = (query.n, tags.last())
        && tags.len() == n
    {
        response.insert_header((
            header::LINK,
            format!(
                "</v2/{ns}/{model}/tags/list?n={n}&last={}>; rel=\"next\"",
                form_urlencoded::byte_serialize(last.as_bytes()).collect::<String>()
            ),
        ));
    }
    Ok(response.json(serde_json::json!({ "name": format!("{ns}/{model}"), "tags": tags })))
}

#[get("/v2/{namespace}/{model}/manifests/{reference}")]
async fn manifest(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<ReferencePath>,
) -> Result<HttpResponse, OciError> {
    let (ns, model): (NamespaceName, ModelName) = (path.namespace.parse()?, path.model.parse()?);
    let principal = reader(&services, &req, &ns, &model).await?;
    let served = services
        .oci
        .manifest(ns.clone(), model.clone(), Reference::parse(&path.reference))
        .await
        .map_err(|e| refusal(&req, e, &principal, &ns, &model))?
        .ok_or_else(|| {
            OciError::new(
                StatusCode::NOT_FOUND,
                "MANIFEST_UNKNOWN",
                format!("no manifest {} in this repository", path.reference),
            )
        })?;
    Ok(HttpResponse::Ok()
        .insert_header(("Docker-Distribution-API-Version", API_VERSION))
        .insert_header(("Docker-Content-Digest", served.digest.clone()))
        .insert_header((header::ETAG, format!("\"{}\"", served.digest)))
        .content_type(served.media_type)
        .body(served.body))
}

#[get("/v2/{namespace}/{model}/blobs/{digest}")]
async fn blob(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<DigestPath>,
) -> Result<HttpResponse, OciError> {
    let (ns, model): (NamespaceName, ModelName) = (path.namespace.parse()?, path.model.parse()?);
    let principal = reader(&services, &req, &ns, &model).await?;
    let unknown = || {
        OciError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("no blob {} in this repository", path.digest),
        )
    };
    let digest: Sha256Digest = path.digest.parse().map_err(|_| {
        OciError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "a digest is sha256: and 64 lowercase hex digits",
        )
    })?;
    let found = services
        .oci
        .blob(ns.clone(), model.clone(), digest)
        .await
        .map_err(|e| refusal(&req, e, &principal, &ns, &model))?
        .ok_or_else(unknown)?;
    let size = match &found {
        Blob::File(file) => file.size as u64,
        Blob::Document(doc) => doc.body.len() as u64,
    };
    let Ranged {
        mut response,
        range,
        length,
    } = ranged(&req, size)?;
    response
        .insert_header(("Docker-Distribution-API-Version", API_VERSION))
        .insert_header(("Docker-Content-Digest", digest.to_string()))
        .insert_header((header::ETAG, format!("\"{digest}\"")))
        .no_chunking(length);
    if req.extensions().get::<HeadRequest>().is_some() {
        return Ok(response
            .content_type("application/octet-stream")
            .body(Headers::of_length(length)));
    }
    match found {
        Blob::File(file) => {
            let body = services.downloads.read(&file, range).await?;
            Ok(response
                .content_type("application/octet-stream")
                .streaming(body.map_err(std::io::Error::other)))
        }
        Blob::Document(doc) => {
            let bytes = doc.body.into_bytes();
            let part = match range {
                Some(r) => bytes[r.start as usize..r.end as usize].to_vec(),
                None => bytes,
            };
            Ok(response.content_type(doc.media_type).body(part))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ReferrersQuery {
    #[serde(rename = "artifactType")]
    artifact_type: Option<String>,
}

/// The referrers API: an image index of the manifests whose subject is this digest (a version's signed
/// deployment manifest, attached to every manifest served for it), filtered by `artifactType`. An
/// unknown subject has an empty list (the spec forbids 404 here).
#[get("/v2/{namespace}/{model}/referrers/{digest}")]
async fn referrers(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<DigestPath>,
    query: Query<ReferrersQuery>,
) -> Result<HttpResponse, OciError> {
    let (ns, model): (NamespaceName, ModelName) = (path.namespace.parse()?, path.model.parse()?);
    let principal = reader(&services, &req, &ns, &model).await?;
    let filter = query.into_inner().artifact_type;
    let entries = services
        .oci
        .referrers(
            ns.clone(),
            model.clone(),
            path.digest.clone(),
            filter.clone(),
        )
        .await
        .map_err(|e| refusal(&req, e, &principal, &ns, &model))?
        .unwrap_or_default();
    let manifests: Vec<serde_json::Value> = entries
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "mediaType": crate::services::oci::modelpack::MANIFEST_MEDIA_TYPE,
                "digest": e.digest,
                "size": e.size,
                "artifactType": e.artifact_type,
                "annotations": e.annotations,
            })
        })
        .collect();
    let mut response = HttpResponse::Ok();
    response.insert_header(("Docker-Distribution-API-Version", API_VERSION));
    if filter.is_some() {
        response.insert_header(("OCI-Filters-Applied", "artifactType"));
    }
    Ok(response
        .content_type(crate::services::oci::modelpack::INDEX_MEDIA_TYPE)
        .json(serde_json::json!({
            "schemaVersion": 2,
            "mediaType": crate::services::oci::modelpack::INDEX_MEDIA_TYPE,
            "manifests": manifests,
        })))
}

/// The registry token endpoint (the realm of the Bearer challenge): Basic credentials (a user name and
/// an API token or password) for a short-lived access token that reads the namespaces of the asked
/// `scope`s the credential covers; without credentials, or for nothing the credential covers, the
/// anonymous token (public models only).
#[get("/v2/token")]
async fn token_endpoint(
    services: Data<Services>,
    req: HttpRequest,
) -> Result<HttpResponse, OciError> {
    let principal = caller(&services, &req).await?;
    let namespaces: Vec<NamespaceName> = form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(name, _)| name == "scope")
        .flat_map(|(_, value)| {
            value
                .split(' ')
                .filter_map(|scope| {
                    // repository:NS/MODEL:ACTIONS
                    let repository = scope.strip_prefix("repository:")?;
                    let (name, _actions) = repository.rsplit_once(':')?;
                    name.split_once('/')?.0.parse().ok()
                })
                .collect::<Vec<NamespaceName>>()
        })
        .collect();
    let issued = match principal.user() {
        Some(user) => services.accounts.registry_token(user, &namespaces).await?,
        None => None,
    };
    let (token, expires_in) = match issued {
        Some(issued) => (issued.access_token, issued.expires_in),
        None => (ANONYMOUS_TOKEN.to_owned(), 3600),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": expires_in,
            "issued_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })))
}

/// Registers `/v2/`.
pub fn routes(cfg: &mut actix_web::web::ServiceConfig) {
    cfg.service(base)
        .service(token_endpoint)
        .service(tags)
        .service(manifest)
        .service(blob)
        .service(referrers);
}
