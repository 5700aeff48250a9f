use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get};
use kiln_core::api::ErrorResponse;

use super::openapi::{Binary, NotModified, PreconditionFailed, RangeNotSatisfiable};
use super::params::{FilePathParams, VariantFilePathParams};
use crate::error::Error;
use crate::services::Services;
use crate::services::downloads::FileSource;

/// Download a version's file
///
/// The bytes of one file the user pushed, streamed. Supports `Range: bytes=START-END` (206 Partial
/// Content) to resume or fetch a part. The `ETag` is the file's sha256 digest: check it after download;
/// `If-None-Match` with it answers 304, `If-Match` without it 412. `HEAD` answers the headers alone.
#[utoipa::path(tag = "files", params(FilePathParams,
        ("Range" = Option<String>, Header, description = "bytes=START-END, bytes=START- or bytes=-SUFFIX")),
    responses(
        (status = 200, description = "The whole file", content_type = "application/octet-stream", body = inline(Binary),
            headers(("ETag" = String, description = "The file's sha256 digest, quoted"), ("Content-Length" = u64))),
        (status = 206, description = "The requested range of the file", content_type = "application/octet-stream", body = inline(Binary),
            headers(("Content-Range" = String, description = "bytes START-END/SIZE"), ("ETag" = String, description = "The file's sha256 digest, quoted"))),
        (status = 400, description = "A bad namespace, model or version name (`invalid_name`) or file path (`invalid_path`)", body = ErrorResponse),
        (status = 404, description = "No such version, or no such file in it", body = ErrorResponse),
        (status = 409, description = "The store check found a blob of the version missing or wrong (`version_damaged`): not served until repaired", body = ErrorResponse),
        (status = 304, response = NotModified),
        (status = 412, response = PreconditionFailed),
        (status = 416, response = RangeNotSatisfiable),
))]
#[get("/models/{namespace}/{model}/versions/{version}/files/{path:.+}")]
async fn download_file(
    req: HttpRequest,
    services: Data<Services>,
    path: Path<FilePathParams>,
) -> Result<HttpResponse, Error> {
    let (ns, model, version, file) = path.parse()?;
    super::file_responses::serve(
        &req,
        &services,
        ns,
        model,
        version,
        FileSource::Version,
        file,
    )
    .await
}

/// Download a variant's file
///
/// A file of a variant the pipeline produced (the model file, then its external data, as the variant
/// lists them), streamed, with the same range support, `ETag`, conditional requests and `HEAD` as
/// version files.
#[utoipa::path(tag = "files", params(VariantFilePathParams,
        ("Range" = Option<String>, Header, description = "bytes=START-END, bytes=START- or bytes=-SUFFIX")),
    responses(
        (status = 200, description = "The whole file", content_type = "application/octet-stream", body = inline(Binary),
            headers(("ETag" = String, description = "The file's sha256 digest, quoted"), ("Content-Length" = u64))),
        (status = 206, description = "The requested range of the file", content_type = "application/octet-stream", body = inline(Binary),
            headers(("Content-Range" = String, description = "bytes START-END/SIZE"), ("ETag" = String, description = "The file's sha256 digest, quoted"))),
        (status = 400, description = "A bad name (`invalid_name`), variant name (`invalid_variant`) or file path (`invalid_path`)", body = ErrorResponse),
        (status = 404, description = "No such version or variant, or no such file in the variant", body = ErrorResponse),
        (status = 409, description = "The store check found a blob of the version missing or wrong (`version_damaged`): not served until repaired", body = ErrorResponse),
        (status = 304, response = NotModified),
        (status = 412, response = PreconditionFailed),
        (status = 416, response = RangeNotSatisfiable),
))]
#[get("/models/{namespace}/{model}/versions/{version}/variants/{variant}/files/{path:.+}")]
async fn download_variant_file(
    req: HttpRequest,
    services: Data<Services>,
    path: Path<VariantFilePathParams>,
) -> Result<HttpResponse, Error> {
    let (ns, model, version, variant, file) = path.parse()?;
    super::file_responses::serve(
        &req,
        &services,
        ns,
        model,
        version,
        FileSource::Variant(variant),
        file,
    )
    .await
}
