use std::ops::Range;

use actix_web::http::header;
use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse, get};
use futures_util::TryStreamExt;
use kiln_core::api::ErrorResponse;

use kiln_core::{FilePath, ModelName, NamespaceName, VersionName};

use super::params::{FilePathParams, VariantFilePathParams};
use crate::error::Error;
use crate::services::Services;
use crate::services::downloads::FileSource;

/// The byte range a `Range` header asks for, per RFC 9110: one `bytes=` range is honoured; anything the
/// server may ignore (several ranges, other units, bad syntax) means the whole file.
fn requested_range(header: Option<&str>, size: u64) -> Result<Option<Range<u64>>, Error> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((start, end)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let unsatisfiable = Error::RangeNotSatisfiable { size: size as i64 };
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => match suffix.parse::<u64>() {
            Ok(0) => return Err(unsatisfiable),
            Ok(n) => size.saturating_sub(n)..size,
            Err(_) => return Ok(None),
        },
        (start, end) => {
            let Ok(start) = start.parse::<u64>() else {
                return Ok(None);
            };
            let end = match end {
                "" => size,
                end => match end.parse::<u64>() {
                    Ok(end) if end >= start => (end + 1).min(size),
                    _ => return Ok(None),
                },
            };
            if start >= size {
                return Err(unsatisfiable);
            }
            start..end
        }
    };
    if range.is_empty() {
        return Err(unsatisfiable);
    }
    Ok(Some(range))
}

/// Download a file of a version. Supports `Range: bytes=START-END` (206 Partial Content). The `ETag` is
/// the file's sha256 digest.
#[utoipa::path(tag = "files", params(FilePathParams,
        ("Range" = Option<String>, Header, description = "bytes=START-END, bytes=START- or bytes=-SUFFIX")),
    responses(
        (status = 200, description = "The whole file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "The requested range", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 416, body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/versions/{version}/files/{path:.+}")]
async fn download_file(
    req: HttpRequest,
    services: Data<Services>,
    path: Path<FilePathParams>,
) -> Result<HttpResponse, Error> {
    let (ns, model, version, file) = path.parse()?;
    serve(
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

/// Download a file of a variant the pipeline produced (`onnx`: the model, then its external data), with
/// the same range support and `ETag` as version files.
#[utoipa::path(tag = "files", params(VariantFilePathParams,
        ("Range" = Option<String>, Header, description = "bytes=START-END, bytes=START- or bytes=-SUFFIX")),
    responses(
        (status = 200, description = "The whole file", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 206, description = "The requested range", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ErrorResponse),
        (status = 404, body = ErrorResponse),
        (status = 416, body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/versions/{version}/variants/{variant}/files/{path:.+}")]
async fn download_variant_file(
    req: HttpRequest,
    services: Data<Services>,
    path: Path<VariantFilePathParams>,
) -> Result<HttpResponse, Error> {
    let (ns, model, version, variant, file) = path.parse()?;
    serve(
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

pub(super) async fn serve(
    req: &HttpRequest,
    services: &Services,
    ns: NamespaceName,
    model: ModelName,
    version: VersionName,
    source: FileSource,
    file: FilePath,
) -> Result<HttpResponse, Error> {
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned);
    let download = services
        .downloads
        .open(ns, model, version, source, file, |size| {
            requested_range(range_header.as_deref(), size)
        })
        .await?;
    let mut response = match &download.range {
        Some(range) => {
            let mut partial = HttpResponse::PartialContent();
            partial.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{}", range.start, range.end - 1, download.size),
            ));
            partial
        }
        None => HttpResponse::Ok(),
    };
    let length = download
        .range
        .as_ref()
        .map_or(download.size as u64, |r| r.end - r.start);
    response
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::ETAG, format!("\"{}\"", download.digest)))
        .insert_header((header::CONTENT_TYPE, "application/octet-stream"))
        .no_chunking(length);
    Ok(response.streaming(download.body.map_err(std::io::Error::other)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(header: &str, size: u64) -> Result<Option<Range<u64>>, u16> {
        requested_range(Some(header), size)
            .map_err(|e| actix_web::ResponseError::status_code(&e).as_u16())
    }

    #[test]
    fn single_ranges_follow_rfc_9110() {
        assert_eq!(range("bytes=0-9", 100), Ok(Some(0..10)));
        assert_eq!(range("bytes=90-", 100), Ok(Some(90..100)));
        assert_eq!(range("bytes=-10", 100), Ok(Some(90..100)));
        assert_eq!(range("bytes=-1000", 100), Ok(Some(0..100)));
        assert_eq!(range("bytes=50-1000", 100), Ok(Some(50..100)));
    }

    #[test]
    fn ranges_the_server_may_ignore_serve_the_whole_file() {
        for header in [
            "items=0-1",
            "bytes=0-1,5-6",
            "bytes=abc",
            "bytes=5-2",
            "bytes=x-",
        ] {
            assert_eq!(range(header, 100), Ok(None), "{header}");
        }
        assert_eq!(requested_range(None, 100).unwrap(), None);
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert_eq!(range("bytes=100-", 100), Err(416));
        assert_eq!(range("bytes=-0", 100), Err(416));
        assert_eq!(range("bytes=0-", 0), Err(416));
    }
}
