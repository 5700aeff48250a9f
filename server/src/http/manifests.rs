use actix_web::http::header;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get};
use kiln_core::api::{ErrorResponse, ManifestResponse};

use super::openapi::CompactJws;
use super::params::{AliasPath, SequencePath, VersionPath};
use crate::error::Error;
use crate::services::Services;
use crate::services::manifests::Subject;

/// How long caches may keep a manifest (docs/manifest.md): the newest of a version or an alias changes
/// (re-signed before it expires, or the alias moves), so a minute; one by sequence never changes. Private:
/// a private model's manifest needs credentials, so only the client's own cache may keep it.
const NEWEST: &str = "private, max-age=60";
const BY_SEQUENCE: &str = "private, max-age=31536000, immutable";
/// The signing keys: five minutes, so a rotated key reaches verifiers soon (a verifier that meets an
/// unknown `kid` fetches the set again anyway).
const JWKS: &str = "public, max-age=300";

/// JSON with the decoded document beside its JWS, or with `Accept: application/jose` the compact JWS alone.
/// The ETag names the JWS and the representation, so that a follower (`kiln-runner serve` polling an alias)
/// asks with `If-None-Match` and gets 304 until the alias moves or the manifest is re-signed.
fn reply(
    req: &HttpRequest,
    manifest: ManifestResponse,
    cache_control: &'static str,
) -> HttpResponse {
    let wants_jose = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|accept| accept.contains("application/jose"));
    let digest = kiln_core::Sha256Digest::of(manifest.jws.as_bytes());
    let etag = format!(
        "\"{}-{}\"",
        digest.hex(),
        if wants_jose { "jose" } else { "json" }
    );
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::VARY, "Accept"))
        .insert_header((header::ETAG, etag));
    if unchanged {
        response.finish()
    } else if wants_jose {
        response.content_type("application/jose").body(manifest.jws)
    } else {
        response.json(manifest)
    }
}

/// Get a version's manifest
///
/// The version's newest signed deployment manifest. JSON (the decoded document beside its JWS) by
/// default; with `Accept: application/jose`, the compact JWS alone.
#[utoipa::path(tag = "manifests", params(VersionPath), responses(
    (status = 200, description = "The newest manifest: the document and its JWS (JSON), or the compact JWS (`application/jose`)", content(
        (ManifestResponse = "application/json"),
        (inline(CompactJws) = "application/jose"),
    )),
    (status = 304, description = "`If-None-Match` named this manifest's ETag: unchanged"),
    (status = 400, description = "The namespace, model or version is not a valid name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such version, or no manifest yet (one is published when the version is ready)", body = ErrorResponse),
    (status = 409, description = "The store check found a blob of the version missing or wrong (`version_damaged`): not served until repaired", body = ErrorResponse),
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
    Ok(reply(&req, manifest, NEWEST))
}

/// Get a version's manifest by sequence
///
/// One of the version's manifests, exactly as it was published, by its sequence number. JSON by default;
/// with `Accept: application/jose`, the compact JWS alone.
#[utoipa::path(tag = "manifests", params(VersionPath, SequencePath), responses(
    (status = 200, description = "That manifest: the document and its JWS (JSON), or the compact JWS (`application/jose`)", content(
        (ManifestResponse = "application/json"),
        (inline(CompactJws) = "application/jose"),
    )),
    (status = 400, description = "A bad name (`invalid_name`) or a sequence that is not a number (`invalid_path_parameter`)", body = ErrorResponse),
    (status = 404, description = "No such version, or no manifest with that sequence", body = ErrorResponse),
    (status = 409, description = "The store check found a blob of the version missing or wrong (`version_damaged`): not served until repaired", body = ErrorResponse),
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
    Ok(reply(&req, manifest, BY_SEQUENCE))
}

/// Get an alias's manifest
///
/// The alias's newest manifest (`acme/sentiment@production`): what a deployment system fetches. Each
/// move of the alias publishes one with the next sequence. JSON by default; with
/// `Accept: application/jose`, the compact JWS alone.
#[utoipa::path(tag = "manifests", params(AliasPath), responses(
    (status = 200, description = "The alias's newest manifest: the document and its JWS (JSON), or the compact JWS (`application/jose`)", content(
        (ManifestResponse = "application/json"),
        (inline(CompactJws) = "application/jose"),
    )),
    (status = 304, description = "`If-None-Match` named this manifest's ETag: the alias has not moved and its manifest was not re-signed"),
    (status = 400, description = "The namespace, model or alias is not a valid name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such model or alias", body = ErrorResponse),
    (status = 409, description = "The store check found a blob of the version missing or wrong (`version_damaged`): not served until repaired", body = ErrorResponse),
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
    Ok(reply(&req, manifest, NEWEST))
}

/// Get an alias's manifest by sequence
///
/// One of the alias's manifests, exactly as it was published, by its sequence number: what a deployment
/// system checks a rollback against. JSON by default; with `Accept: application/jose`, the compact JWS.
#[utoipa::path(tag = "manifests", params(AliasPath, SequencePath), responses(
    (status = 200, description = "That manifest: the document and its JWS (JSON), or the compact JWS (`application/jose`)", content(
        (ManifestResponse = "application/json"),
        (inline(CompactJws) = "application/jose"),
    )),
    (status = 400, description = "A bad name (`invalid_name`) or a sequence that is not a number (`invalid_path_parameter`)", body = ErrorResponse),
    (status = 404, description = "No such model or alias, or no manifest with that sequence", body = ErrorResponse),
    (status = 409, description = "The store check found a blob of the version missing or wrong (`version_damaged`): not served until repaired", body = ErrorResponse),
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
    Ok(reply(&req, manifest, BY_SEQUENCE))
}

/// Get the manifest signing keys
///
/// The public keys manifests are signed with, as a JWK Set (RFC 7517): every key, the retired ones too,
/// so that old manifests still verify. Public: a deployment system needs only this URL.
#[utoipa::path(tag = "manifests", responses(
    (status = 200, description = "The JWK Set: `{\"keys\": [...]}`, Ed25519 keys (`kty` `OKP`, `crv` `Ed25519`) by `kid`", body = Object),
))]
#[get("/.well-known/jwks.json")]
async fn jwks(services: Data<Services>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, JWKS))
        .json(services.manifests.jwks())
}
