//! Push and deletion: blob uploads (monolithic, streamed, chunked with `Content-Range`, resumable, and
//! cross-repository mounts), manifests by tag (a kiln version) or by digest (a document, such as a
//! referrer), and deleting what kiln lets a writer delete.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::web::{Data, Path, Payload, Query};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put};
use futures_util::{StreamExt, TryStreamExt};
use kiln_core::{ModelName, NamespaceName, Sha256Digest};
use serde::Deserialize;

use super::{API_VERSION, DigestPath, OciError, ReferencePath, RepositoryPath, writer};
use crate::auth::policy::Rule;
use crate::error::Error;
use crate::http::body_rate::as_io;
use crate::http::ranges::oci_chunk_range;
use crate::services::Services;
use crate::services::oci::Reference;
use crate::services::oci::publish::{MAX_MANIFEST_BYTES, ManifestUpload};
use crate::services::oci::uploads::{PART_SIZE, UploadProgress};

#[derive(Debug, Deserialize)]
pub struct UploadPath {
    namespace: String,
    model: String,
    id: String,
}

impl UploadPath {
    fn parse(&self) -> Result<(NamespaceName, ModelName), OciError> {
        Ok((self.namespace.parse()?, self.model.parse()?))
    }
}

#[derive(Debug, Deserialize)]
pub struct StartQuery {
    digest: Option<String>,
    mount: Option<String>,
    from: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct DigestQuery {
    digest: Option<String>,
}

fn parse_digest(text: &str) -> Result<Sha256Digest, OciError> {
    text.parse().map_err(|_| {
        OciError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            format!("{text} is not sha256: and 64 lowercase hex digits"),
        )
    })
}

/// An upload of the caller's that is not (or no longer) there.
fn upload_error(e: Error) -> OciError {
    match e {
        Error::NotFound { what } => OciError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            format!("{what} is not under way (finished, cancelled, or not yours)"),
        ),
        other => other.into(),
    }
}

/// `Range: 0-LAST` of what an upload holds (`0-0` when nothing yet, as distribution answers).
fn held_range(offset: i64) -> String {
    format!("0-{}", (offset - 1).max(0))
}

fn upload_answer(
    status: StatusCode,
    ns: &NamespaceName,
    model: &ModelName,
    progress: &UploadProgress,
) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Docker-Distribution-API-Version", API_VERSION))
        .insert_header((
            header::LOCATION,
            format!("/v2/{ns}/{model}/blobs/uploads/{}", progress.id),
        ))
        .insert_header((header::RANGE, held_range(progress.offset)))
        .insert_header(("Docker-Upload-UUID", progress.id.clone()))
        .insert_header(("OCI-Chunk-Min-Length", PART_SIZE.to_string()))
        .finish()
}

fn blob_created(ns: &NamespaceName, model: &ModelName, digest: &Sha256Digest) -> HttpResponse {
    HttpResponse::Created()
        .insert_header(("Docker-Distribution-API-Version", API_VERSION))
        .insert_header((header::LOCATION, format!("/v2/{ns}/{model}/blobs/{digest}")))
        .insert_header(("Docker-Content-Digest", digest.to_string()))
        .finish()
}

/// Starts an upload (202 with its `Location`); with `?digest=`, the body is the whole blob (201); with
/// `?mount=` (and `from=`), a blob the caller may use is linked without moving a byte (201), or, when
/// there is none, an upload starts.
#[post("/v2/{namespace}/{model}/blobs/uploads/")]
pub(super) async fn start_upload(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<RepositoryPath>,
    query: Query<StartQuery>,
    payload: Payload,
) -> Result<HttpResponse, OciError> {
    start(services, req, path, query, payload).await
}

/// The same, for clients that leave the trailing slash off.
#[post("/v2/{namespace}/{model}/blobs/uploads")]
pub(super) async fn start_upload_unslashed(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<RepositoryPath>,
    query: Query<StartQuery>,
    payload: Payload,
) -> Result<HttpResponse, OciError> {
    start(services, req, path, query, payload).await
}

async fn start(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<RepositoryPath>,
    query: Query<StartQuery>,
    payload: Payload,
) -> Result<HttpResponse, OciError> {
    let (ns, model) = path.parse()?;
    let (principal, pusher) = writer(&services, &req, &ns, &model).await?;
    let query = query.into_inner();
    if let Some(mount) = &query.mount {
        let digest = parse_digest(mount)?;
        let from = match &query.from {
            Some(from) => {
                let (from_ns, from_model) = from.split_once('/').ok_or_else(|| {
                    OciError::new(
                        StatusCode::BAD_REQUEST,
                        "NAME_INVALID",
                        format!("from={from} is not a repository NAMESPACE/MODEL"),
                    )
                })?;
                let (from_ns, from_model): (NamespaceName, ModelName) =
                    (from_ns.parse()?, from_model.parse()?);
                // A repository the caller may not read lends nothing: the client uploads instead.
                let readable = services
                    .access
                    .decide(
                        Rule::ReadModel,
                        &principal,
                        Some(from_ns.to_string()),
                        Some(from_model.to_string()),
                    )
                    .await
                    .is_ok();
                readable.then_some((from_ns, from_model))
            }
            None => None,
        };
        let mountable = query.from.is_none() || from.is_some();
        if mountable
            && services
                .oci
                .mount(&ns, &model, &digest, from, &pusher)
                .await?
        {
            return Ok(blob_created(&ns, &model, &digest));
        }
    }
    let progress = services.oci.start_upload(&ns, &model, &pusher).await?;
    match &query.digest {
        Some(digest) => {
            let digest = parse_digest(digest)?;
            services
                .oci
                .finish_upload(
                    &ns,
                    &model,
                    &progress.id,
                    &pusher,
                    digest,
                    payload.map_err(as_io),
                )
                .await?;
            Ok(blob_created(&ns, &model, &digest))
        }
        None => Ok(upload_answer(StatusCode::ACCEPTED, &ns, &model, &progress)),
    }
}

/// Where an upload stands: 204 with `Range: 0-LAST`.
#[get("/v2/{namespace}/{model}/blobs/uploads/{id}")]
pub(super) async fn upload_progress(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<UploadPath>,
) -> Result<HttpResponse, OciError> {
    let (ns, model) = path.parse()?;
    let (_, pusher) = writer(&services, &req, &ns, &model).await?;
    let progress = services
        .oci
        .upload_progress(&ns, &model, &path.id, &pusher)
        .await
        .map_err(upload_error)?;
    Ok(upload_answer(
        StatusCode::NO_CONTENT,
        &ns,
        &model,
        &progress,
    ))
}

/// Appends a chunk (with `Content-Range: START-END`, which must start where the upload stands, else
/// 416) or a stream (without one).
#[patch("/v2/{namespace}/{model}/blobs/uploads/{id}")]
pub(super) async fn append(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<UploadPath>,
    payload: Payload,
) -> Result<HttpResponse, OciError> {
    let (ns, model) = path.parse()?;
    let (_, pusher) = writer(&services, &req, &ns, &model).await?;
    let range =
        match req.headers().get(header::CONTENT_RANGE) {
            None => None,
            Some(value) => Some(value.to_str().ok().and_then(oci_chunk_range).ok_or_else(
                || {
                    OciError::new(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "BLOB_UPLOAD_INVALID",
                        "Content-Range must look like START-END (END inclusive)",
                    )
                },
            )?),
        };
    let progress = services
        .oci
        .append(
            &ns,
            &model,
            &path.id,
            &pusher,
            range,
            payload.map_err(as_io),
        )
        .await
        .map_err(upload_error)?;
    Ok(upload_answer(StatusCode::ACCEPTED, &ns, &model, &progress))
}

/// Ends an upload with `?digest=` (and possibly its last bytes): 201 once the digest is verified.
#[put("/v2/{namespace}/{model}/blobs/uploads/{id}")]
pub(super) async fn finish_upload(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<UploadPath>,
    query: Query<DigestQuery>,
    payload: Payload,
) -> Result<HttpResponse, OciError> {
    let (ns, model) = path.parse()?;
    let (_, pusher) = writer(&services, &req, &ns, &model).await?;
    let digest = parse_digest(query.digest.as_deref().ok_or_else(|| {
        OciError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "end an upload with ?digest=sha256:...",
        )
    })?)?;
    services
        .oci
        .finish_upload(
            &ns,
            &model,
            &path.id,
            &pusher,
            digest,
            payload.map_err(as_io),
        )
        .await
        .map_err(upload_error)?;
    Ok(blob_created(&ns, &model, &digest))
}

#[delete("/v2/{namespace}/{model}/blobs/uploads/{id}")]
pub(super) async fn cancel_upload(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<UploadPath>,
) -> Result<HttpResponse, OciError> {
    let (ns, model) = path.parse()?;
    let (_, pusher) = writer(&services, &req, &ns, &model).await?;
    services
        .oci
        .cancel_upload(&ns, &model, &path.id, &pusher)
        .await
        .map_err(upload_error)?;
    Ok(HttpResponse::NoContent()
        .insert_header(("Docker-Distribution-API-Version", API_VERSION))
        .finish())
}

/// A manifest's bytes, at most [`MAX_MANIFEST_BYTES`].
async fn manifest_body(mut payload: Payload) -> Result<bytes::Bytes, OciError> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            OciError::new(
                StatusCode::BAD_REQUEST,
                "MANIFEST_INVALID",
                format!("the manifest did not arrive whole: {e}"),
            )
        })?;
        if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
            return Err(OciError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!("a manifest may have at most {MAX_MANIFEST_BYTES} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Pushes a manifest: under a tag it becomes a kiln version; by digest it is kept as it is.
#[put("/v2/{namespace}/{model}/manifests/{reference}")]
pub(super) async fn put_manifest(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<ReferencePath>,
    payload: Payload,
) -> Result<HttpResponse, OciError> {
    let (ns, model): (NamespaceName, ModelName) = (path.namespace.parse()?, path.model.parse()?);
    let (principal, pusher) = writer(&services, &req, &ns, &model).await?;
    let body = manifest_body(payload).await?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let published = services
        .oci
        .put_manifest(
            &ns,
            &model,
            Reference::parse(&path.reference),
            ManifestUpload { content_type, body },
            &pusher,
            crate::http::actor(&req, &principal),
        )
        .await?;
    let mut response = HttpResponse::Created();
    response
        .insert_header(("Docker-Distribution-API-Version", API_VERSION))
        .insert_header((
            header::LOCATION,
            format!("/v2/{ns}/{model}/manifests/{}", published.digest),
        ))
        .insert_header(("Docker-Content-Digest", published.digest));
    if let Some(subject) = published.subject {
        response.insert_header(("OCI-Subject", subject));
    }
    Ok(response.finish())
}

/// Deletes a version by its tag or by the digest it was pushed with, or a manifest pushed by digest.
#[delete("/v2/{namespace}/{model}/manifests/{reference}")]
pub(super) async fn delete_manifest(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<ReferencePath>,
) -> Result<HttpResponse, OciError> {
    let (ns, model): (NamespaceName, ModelName) = (path.namespace.parse()?, path.model.parse()?);
    let (principal, _) = writer(&services, &req, &ns, &model).await?;
    let deleted = services
        .oci
        .delete_manifest(
            &ns,
            &model,
            Reference::parse(&path.reference),
            crate::http::actor(&req, &principal),
        )
        .await?;
    if !deleted {
        return Err(OciError::new(
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
            format!("no manifest {} in this repository", path.reference),
        ));
    }
    Ok(HttpResponse::Accepted()
        .insert_header(("Docker-Distribution-API-Version", API_VERSION))
        .finish())
}

/// Unlinks a blob the repository holds only through a push.
#[delete("/v2/{namespace}/{model}/blobs/{digest}")]
pub(super) async fn delete_blob(
    services: Data<Services>,
    req: HttpRequest,
    path: Path<DigestPath>,
) -> Result<HttpResponse, OciError> {
    let (ns, model): (NamespaceName, ModelName) = (path.namespace.parse()?, path.model.parse()?);
    let (_, _) = writer(&services, &req, &ns, &model).await?;
    let digest = parse_digest(&path.digest)?;
    if !services.oci.delete_blob(&ns, &model, &digest).await? {
        return Err(OciError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("no blob {digest} in this repository"),
        ));
    }
    Ok(HttpResponse::Accepted()
        .insert_header(("Docker-Distribution-API-Version", API_VERSION))
        .finish())
}
