use actix_web::http::header;
use actix_web::web::{Data, Json, Path, Payload};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post};
use futures_util::TryStreamExt;
use kiln_core::ErrorCode;
use kiln_core::api::{
    BlobInfo, CreateUploadRequest, ErrorResponse, MissingBlobsRequest, MissingBlobsResponse,
    UploadSession,
};

use super::params::UploadPath;
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;
use crate::services::uploads::Uploader;

/// Which of these digests the server does not hold (upload only those).
#[utoipa::path(tag = "blobs", request_body = MissingBlobsRequest, responses(
    (status = 200, body = MissingBlobsResponse),
    (status = 400, body = ErrorResponse),
))]
#[post("/blobs/missing")]
async fn missing_blobs(
    services: Data<Services>,
    principal: Principal,
    body: Json<MissingBlobsRequest>,
) -> Result<Json<MissingBlobsResponse>, Error> {
    let missing = services
        .uploads
        .missing(body.into_inner().digests, &uploader(&principal)?)
        .await?;
    Ok(Json(MissingBlobsResponse { missing }))
}

/// Start an upload session for one blob, or resume the unfinished one for the same digest and size.
#[utoipa::path(tag = "blobs", request_body = CreateUploadRequest, responses(
    (status = 201, description = "New session", body = UploadSession),
    (status = 200, description = "An unfinished session resumed; continue at `offset`", body = UploadSession),
    (status = 400, body = ErrorResponse),
    (status = 409, description = "The server already holds this blob (`blob_exists`)", body = ErrorResponse),
))]
#[post("/uploads")]
async fn create_upload(
    services: Data<Services>,
    principal: Principal,
    body: Json<CreateUploadRequest>,
) -> Result<HttpResponse, Error> {
    let request = body.into_inner();
    let session = services
        .uploads
        .create(request.digest, request.size, &uploader(&principal)?)
        .await?;
    Ok(if session.resumed {
        HttpResponse::Ok().json(session)
    } else {
        HttpResponse::Created().json(session)
    })
}

/// An upload session's progress.
#[utoipa::path(tag = "blobs", params(UploadPath), responses(
    (status = 200, body = UploadSession),
    (status = 404, body = ErrorResponse),
))]
#[get("/uploads/{id}")]
async fn get_upload(
    services: Data<Services>,
    principal: Principal,
    path: Path<UploadPath>,
) -> Result<Json<UploadSession>, Error> {
    Ok(Json(
        services
            .uploads
            .get(&path.id, &uploader(&principal)?)
            .await?,
    ))
}

/// Send one chunk: raw bytes with `Content-Range: bytes START-END/SIZE`, START equal to the session's
/// offset. Every chunk but the last must be a multiple of `part_size`. A chunk that does not arrive whole
/// is not recorded; send it again.
#[utoipa::path(tag = "blobs", params(UploadPath,
        ("Content-Range" = String, Header, description = "bytes START-END/SIZE (END inclusive)")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Chunk stored; `offset` advanced", body = UploadSession),
        (status = 400, description = "Malformed range, truncated or overlong body", body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 409, description = "Chunk does not start at the session's offset (`offset_mismatch`)", body = ErrorResponse),
))]
#[patch("/uploads/{id}")]
async fn write_chunk(
    req: HttpRequest,
    services: Data<Services>,
    principal: Principal,
    path: Path<UploadPath>,
    payload: Payload,
) -> Result<Json<UploadSession>, Error> {
    let header = req.headers().get(header::CONTENT_RANGE).ok_or_else(|| {
        Error::bad_request(
            ErrorCode::MissingContentRange,
            "send Content-Range: bytes START-END/SIZE with every chunk",
        )
    })?;
    let range = header
        .to_str()
        .ok()
        .and_then(super::ranges::content_range)
        .ok_or_else(|| {
            Error::bad_request(
                ErrorCode::InvalidContentRange,
                "Content-Range must look like: bytes START-END/SIZE",
            )
        })?;
    let body = payload.map_err(std::io::Error::other);
    Ok(Json(
        services
            .uploads
            .write_chunk(&path.id, &uploader(&principal)?, range, body)
            .await?,
    ))
}

/// Finish the upload: the server checks the digest of everything received against the declared one,
/// then stores the blob under its content address.
#[utoipa::path(tag = "blobs", params(UploadPath), responses(
    (status = 200, body = BlobInfo),
    (status = 400, description = "The bytes do not match the declared digest (`digest_mismatch`); the session is discarded", body = ErrorResponse),
    (status = 404, body = ErrorResponse),
    (status = 409, description = "Not all bytes have arrived (`upload_incomplete`)", body = ErrorResponse),
))]
#[post("/uploads/{id}/commit")]
async fn commit_upload(
    services: Data<Services>,
    principal: Principal,
    path: Path<UploadPath>,
) -> Result<Json<BlobInfo>, Error> {
    Ok(Json(
        services
            .uploads
            .commit(&path.id, &uploader(&principal)?)
            .await?,
    ))
}

/// Cancel an upload session and drop what it stored.
#[utoipa::path(tag = "blobs", params(UploadPath), responses(
    (status = 204, description = "Cancelled"),
    (status = 404, body = ErrorResponse),
))]
#[delete("/uploads/{id}")]
async fn abort_upload(
    services: Data<Services>,
    principal: Principal,
    path: Path<UploadPath>,
) -> Result<HttpResponse, Error> {
    services
        .uploads
        .abort(&path.id, &uploader(&principal)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Uploads belong to a signed-in user (the policy table let no one else through).
fn uploader(principal: &Principal) -> Result<Uploader, Error> {
    let user = super::signed_in(principal)?;
    Ok(Uploader {
        user_id: user.id.clone(),
        visible: user.visible(),
    })
}
