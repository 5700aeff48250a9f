use actix_web::http::header;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get};
use kiln_core::api::{ErrorResponse, ManifestResponse};

use super::params::VersionPath;
use crate::error::Error;
use crate::services::Services;

/// The version's signed deployment manifest: JSON with the decoded document beside its JWS, or with
/// `Accept: application/jose` the compact JWS alone.
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
    let manifest = services.manifests.for_version(ns, model, version).await?;
    let wants_jose = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|accept| accept.contains("application/jose"));
    Ok(if wants_jose {
        HttpResponse::Ok()
            .content_type("application/jose")
            .body(manifest.jws)
    } else {
        HttpResponse::Ok().json(manifest)
    })
}

/// The public keys manifests are signed with (JWK Set, RFC 7517): every key, the retired ones too.
#[utoipa::path(tag = "manifests", responses((status = 200, description = "JWK Set", body = Object)))]
#[get("/.well-known/jwks.json")]
async fn jwks(services: Data<Services>) -> HttpResponse {
    HttpResponse::Ok().json(services.manifest_signer.jwks())
}
