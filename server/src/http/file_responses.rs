//! Answering for a file's bytes as HTTP caches and clients expect (RFC 9110, 9111): the digest is a
//! strong ETag; `If-None-Match` that names it is 304 and `If-Match` that does not is 412; content-addressed
//! bytes never change, so a public model's files may be kept by any cache for a year and a private
//! model's by the client's own cache only; `Range` picks bytes; `HEAD` gets the headers alone.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, HttpResponseBuilder};
use futures_util::TryStreamExt;
use kiln_core::{FilePath, ModelName, NamespaceName, VersionName};

use super::head::HeadRequest;
use super::ranges::requested_range;
use crate::error::Error;
use crate::services::Services;
use crate::services::downloads::FileSource;

/// A year: the longest lifetime RFC 9111 caches are asked to honour.
const PUBLIC_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// Readable only with credentials: shared caches must not keep it.
const PRIVATE_CACHE_CONTROL: &str = "private, max-age=31536000, immutable";

pub(super) async fn serve(
    req: &HttpRequest,
    services: &Services,
    ns: NamespaceName,
    model: ModelName,
    version: VersionName,
    source: FileSource,
    file: FilePath,
) -> Result<HttpResponse, Error> {
    let located = services
        .downloads
        .locate(ns, model, version, source, file)
        .await?;
    let etag = format!("\"{}\"", located.digest);
    let cache_control = if located.public {
        PUBLIC_CACHE_CONTROL
    } else {
        PRIVATE_CACHE_CONTROL
    };
    match precondition(req.headers(), &etag) {
        Precondition::NotModified => {
            return Ok(HttpResponse::NotModified()
                .insert_header((header::ETAG, etag))
                .insert_header((header::CACHE_CONTROL, cache_control))
                .finish());
        }
        Precondition::Failed => {
            return Err(Error::PreconditionFailed {
                message: format!("If-Match does not name this file's ETag {etag}"),
            });
        }
        Precondition::Proceed => {}
    }
    let Ranged {
        mut response,
        range,
        length,
    } = ranged(req, located.size as u64)?;
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control))
        .insert_header((header::CONTENT_TYPE, "application/octet-stream"))
        .no_chunking(length);
    if req.extensions().get::<HeadRequest>().is_some() {
        // The length is announced; the bytes are never read from storage.
        return Ok(response.body(super::head::Headers::of_length(length)));
    }
    let body = services.downloads.read(&located, range).await?;
    Ok(response.streaming(body.map_err(std::io::Error::other)))
}

/// The answer to a request for `size` bytes as its `Range` header asks: 200, or 206 with
/// `Content-Range`, with `Accept-Ranges` and the length the body will have.
pub(super) struct Ranged {
    pub response: HttpResponseBuilder,
    pub range: Option<std::ops::Range<u64>>,
    pub length: u64,
}

pub(super) fn ranged(req: &HttpRequest, size: u64) -> Result<Ranged, Error> {
    let range_header = req
        .headers()
        .get(header::RANGE)
        .and_then(|h| h.to_str().ok());
    let range = requested_range(range_header, size)?;
    let mut response = match &range {
        Some(range) => {
            let mut partial = HttpResponse::PartialContent();
            partial.insert_header((
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{size}", range.start, range.end - 1),
            ));
            partial
        }
        None => HttpResponse::Ok(),
    };
    response.insert_header((header::ACCEPT_RANGES, "bytes"));
    let length = range.as_ref().map_or(size, |r| r.end - r.start);
    Ok(Ranged {
        response,
        range,
        length,
    })
}

#[derive(Debug, PartialEq)]
enum Precondition {
    Proceed,
    NotModified,
    Failed,
}

/// RFC 9110 §13.2.2's order: If-Match first (strong comparison), then If-None-Match (weak comparison);
/// `*` matches any existing file.
fn precondition(headers: &HeaderMap, etag: &str) -> Precondition {
    let names = |name, weak: bool| {
        headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|tag| {
                let tag = tag.trim();
                if weak {
                    tag.trim_start_matches("W/")
                } else {
                    tag
                }
                .to_owned()
            })
            .collect::<Vec<_>>()
    };
    let if_match = names(header::IF_MATCH, false);
    if !if_match.is_empty() && !if_match.iter().any(|t| t == "*" || t == etag) {
        return Precondition::Failed;
    }
    let if_none_match = names(header::IF_NONE_MATCH, true);
    if if_none_match.iter().any(|t| t == "*" || t == etag) {
        return Precondition::NotModified;
    }
    Precondition::Proceed
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    use super::{Precondition, precondition};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    #[test]
    fn conditional_requests_follow_rfc_9110() {
        let etag = "\"sha256:ab\"";
        let cases = [
            (vec![], Precondition::Proceed),
            (
                vec![("if-none-match", "\"sha256:ab\"")],
                Precondition::NotModified,
            ),
            (
                vec![("if-none-match", "W/\"sha256:ab\"")],
                Precondition::NotModified,
            ),
            (
                vec![("if-none-match", "\"x\", \"sha256:ab\"")],
                Precondition::NotModified,
            ),
            (vec![("if-none-match", "*")], Precondition::NotModified),
            (vec![("if-none-match", "\"x\"")], Precondition::Proceed),
            (vec![("if-match", "\"x\"")], Precondition::Failed),
            (vec![("if-match", "\"sha256:ab\"")], Precondition::Proceed),
            (vec![("if-match", "W/\"sha256:ab\"")], Precondition::Failed),
            (
                vec![("if-match", "\"x\""), ("if-none-match", "\"sha256:ab\"")],
                Precondition::Failed,
            ),
        ];
        for (pairs, expected) in cases {
            assert_eq!(precondition(&headers(&pairs), etag), expected, "{pairs:?}");
        }
    }
}
