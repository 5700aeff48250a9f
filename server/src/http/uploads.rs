use super::json_object::JsonObject;
use actix_web::http::header;
use actix_web::web::{Data, Json, Path, Payload};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post};
use futures_util::TryStreamExt;
use kiln_core::ErrorCode;
use kiln_core::api::{
    BlobInfo, CreateUploadRequest, ErrorResponse, MissingBlobsRequest, MissingBlobsResponse,
    UploadSession,
};

use super::openapi::Binary;
use super::params::UploadPath;
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;
use crate::services::uploads::Uploader;

/// Find missing blobs
///
/// Which of these digests the caller may not use yet (not held, or held only for others' namespaces):
/// upload only those, then commit the version.
#[utoipa::path(tag = "blobs", request_body = MissingBlobsRequest, responses(
    (status = 200, description = "The digests to upload, in the order asked", body = MissingBlobsResponse),
    (status = 400, description = "A digest that is not `sha256:` and 64 hex digits (`invalid_digest`), more than 100,000 digests (`too_many_digests`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
))]
#[post("/blobs/missing")]
async fn missing_blobs(
    services: Data<Services>,
    principal: Principal,
    body: JsonObject<MissingBlobsRequest>,
) -> Result<Json<MissingBlobsResponse>, Error> {
    let missing = services
        .uploads
        .missing(body.into_inner().digests, &uploader(&principal)?)
        .await?;
    Ok(Json(MissingBlobsResponse { missing }))
}

/// Start an upload
///
/// Start an upload session for one blob, or resume the caller's unfinished one for the same digest and
/// size. Then send chunks with `PATCH /uploads/{id}` and finish with `POST /uploads/{id}/commit`.
#[utoipa::path(tag = "blobs", request_body = CreateUploadRequest, responses(
    (status = 201, description = "A new session, at offset 0", body = UploadSession),
    (status = 200, description = "The caller's unfinished session for this blob, resumed: continue at `offset`", body = UploadSession),
    (status = 400, description = "A bad digest (`invalid_digest`), a size outside 0 to 5 TiB (`invalid_size`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 409, description = "The caller may already use this blob (`blob_exists`): nothing to upload", body = ErrorResponse),
))]
#[post("/uploads")]
async fn create_upload(
    services: Data<Services>,
    principal: Principal,
    body: JsonObject<CreateUploadRequest>,
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

/// Get an upload
///
/// An upload session's progress: where the next chunk must start.
#[utoipa::path(tag = "blobs", params(UploadPath), responses(
    (status = 200, description = "The session, with the bytes received so far as `offset`", body = UploadSession),
    (status = 404, description = "No such session of the caller's (finished, cancelled, or another user's)", body = ErrorResponse),
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

/// Upload a chunk
///
/// Send one chunk: raw bytes with `Content-Range: bytes START-END/SIZE`, START equal to the session's
/// offset. Every chunk but the last must be a multiple of `part_size`. A chunk that does not arrive whole
/// is not recorded; send it again.
#[utoipa::path(tag = "blobs", params(UploadPath,
        ("Content-Range" = String, Header, pattern = r"^bytes [0-9]{1,19}-[0-9]{1,19}/[0-9]{1,19}$", description = "bytes START-END/SIZE (END inclusive)")),
    request_body(content = inline(Binary), content_type = "application/octet-stream",
        description = "The chunk's bytes, exactly END - START + 1 of them"),
    responses(
        (status = 200, description = "Chunk stored; `offset` advanced past it", body = UploadSession),
        (status = 400, description = "No `Content-Range` (`missing_content_range`) or a malformed one (`invalid_content_range`), a SIZE other than the session's (`size_mismatch`), a range past the blob's end (`range_past_end`), a chunk not a multiple of `part_size` (`chunk_not_aligned`), or a body shorter (`truncated_body`) or longer (`body_too_long`) than the range", body = ErrorResponse),
        (status = 404, description = "No such session of the caller's", body = ErrorResponse),
        (status = 409, description = "The chunk does not start at the session's offset (`offset_mismatch`; `details.offset` says where to continue), or another request is writing the session (`upload_busy`: retry after `Retry-After` seconds, also `details.retry_after`)", body = ErrorResponse, headers(("Retry-After" = u64, description = "With `upload_busy`: seconds to wait before sending the chunk again"))),
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
    let body = payload.map_err(super::body_rate::as_io);
    Ok(Json(
        services
            .uploads
            .write_chunk(&path.id, &uploader(&principal)?, range, body)
            .await?,
    ))
}

/// Commit an upload
///
/// Finish the upload: the server checks the digest of everything received against the declared one,
/// then stores the blob under its content address.
#[utoipa::path(tag = "blobs", params(UploadPath), responses(
    (status = 200, description = "The blob is stored and usable in a version commit", body = BlobInfo),
    (status = 400, description = "The bytes do not match the declared digest (`digest_mismatch`); the session is discarded", body = ErrorResponse),
    (status = 404, description = "No such session of the caller's", body = ErrorResponse),
    (status = 409, description = "Not all bytes have arrived (`upload_incomplete`): continue at the session's `offset`", body = ErrorResponse),
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

/// Cancel an upload
///
/// Cancel an upload session and drop the bytes it stored.
#[utoipa::path(tag = "blobs", params(UploadPath), responses(
    (status = 204, description = "The session and its bytes are gone"),
    (status = 404, description = "No such session of the caller's", body = ErrorResponse),
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
