use actix_web::http::header;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get};
use kiln_core::api::{ErrorResponse, ManifestResponse};

use super::params::{AliasPath, SequencePath, VersionPath};
use crate::error::Error;
use crate::services::Services;
use crate::services::manifests::Subject;

/// JSON with the decoded document beside its JWS, or with `Accept: application/jose` the compact JWS alone.
fn reply(req: &HttpRequest, manifest: ManifestResponse) -> HttpResponse {
    let wants_jose = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|accept| accept.contains("application/jose"));
    if wants_jose {
        HttpResponse::Ok()
            .content_type("application/jose")
            .body(manifest.jws)
    } else {
        HttpResponse::Ok().json(manifest)
    }
}

/// The version's newest signed deployment manifest.
#[utoipa::path(tag = "manifests", params(VersionPath), responses(
    (status = 200, body = ManifestResponse),
    (status = 200, description = "The compact JWS", content_type = "application/jose", body = String),
    (status = 404, description = "No such version, or its pipeline is not ready yet", body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/versions/{version}/manifest")]
async fn version_manifest(
    req: HttpRequest,
    services: Data<Services>,
    path: Path<VersionPath>,
) -> Result<HttpResponse, Error> {
    let (ns, model, version) = path.parse()?;
    let manifest = services
        .manifests
        .get(ns, model, Subject::Version(version), None)
        .await?;
    Ok(reply(&req, manifest))
}

/// One of the version's manifests by sequence, exactly as it was published.
#[utoipa::path(tag = "manifests", params(VersionPath, SequencePath), responses(
    (status = 200, body = ManifestResponse),
    (status = 200, description = "The compact JWS", content_type = "application/jose", body = String),
    (status = 400, body = ErrorResponse),
    (status = 404, body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/versions/{version}/manifests/{sequence}")]
async fn version_manifest_by_sequence(
    req: HttpRequest,
    services: Data<Services>,
    path: Path<VersionPath>,
    n: Path<SequencePath>,
) -> Result<HttpResponse, Error> {
    let (ns, model, version) = path.parse()?;
    let manifest = services
        .manifests
        .get(ns, model, Subject::Version(version), Some(n.sequence))
        .await?;
    Ok(reply(&req, manifest))
}

/// The alias's newest manifest (`acme/sentiment@production`): what a deployment system fetches.
#[utoipa::path(tag = "manifests", params(AliasPath), responses(
    (status = 200, body = ManifestResponse),
    (status = 200, description = "The compact JWS", content_type = "application/jose", body = String),
    (status = 404, body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/aliases/{alias}/manifest")]
async fn alias_manifest(
    req: HttpRequest,
    services: Data<Services>,
    path: Path<AliasPath>,
) -> Result<HttpResponse, Error> {
    let (ns, model, alias) = path.parse()?;
    let manifest = services
        .manifests
        .get(ns, model, Subject::Alias(alias), None)
        .await?;
    Ok(reply(&req, manifest))
}

/// One of the alias's manifests by sequence, exactly as it was published.
#[utoipa::path(tag = "manifests", params(AliasPath, SequencePath), responses(
    (status = 200, body = ManifestResponse),
    (status = 200, description = "The compact JWS", content_type = "application/jose", body = String),
    (status = 400, body = ErrorResponse),
    (status = 404, body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/aliases/{alias}/manifests/{sequence}")]
async fn alias_manifest_by_sequence(
    req: HttpRequest,
    services: Data<Services>,
    path: Path<AliasPath>,
    n: Path<SequencePath>,
) -> Result<HttpResponse, Error> {
    let (ns, model, alias) = path.parse()?;
    let manifest = services
        .manifests
        .get(ns, model, Subject::Alias(alias), Some(n.sequence))
        .await?;
    Ok(reply(&req, manifest))
}

/// The public keys manifests are signed with (JWK Set, RFC 7517): every key, the retired ones too.
#[utoipa::path(tag = "manifests", responses((status = 200, description = "JWK Set", body = Object)))]
#[get("/.well-known/jwks.json")]
async fn jwks(services: Data<Services>) -> HttpResponse {
    HttpResponse::Ok().json(services.manifests.jwks())
}
