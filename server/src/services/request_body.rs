//! Streaming a request body into a staged upload: shared by kiln's upload sessions and the OCI
//! distribution endpoint's.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use kiln_core::ErrorCode;
use kiln_core::Sha256Hasher;

use crate::error::Error;
use crate::storage::StagingWriter;

/// What a request body may carry: the length its `Content-Range` declares (exactly), and the bytes the
/// upload can still take (the error to answer past them).
pub(crate) struct BodyBounds {
    pub declared: Option<i64>,
    pub room: Option<(i64, fn() -> Error)>,
}

/// Streams a request body into a staging writer, hashing each chunk while it is hot in the cache, and
/// returns how many bytes came. A body that ends early, runs past what it declared or past the
/// upload's room is refused; the caller records nothing then.
pub(crate) async fn stream_into<S>(
    body: &mut S,
    hasher: &mut Sha256Hasher,
    writer: &mut StagingWriter,
    bounds: BodyBounds,
) -> Result<i64, Error>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    let of_declared = || {
        bounds
            .declared
            .map_or(String::new(), |length| format!(" of {length}"))
    };
    let mut received: i64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| {
            if e.kind() == std::io::ErrorKind::TimedOut {
                return Error::RequestTimeout {
                    message: format!("after {received}{} bytes: {e}", of_declared()),
                };
            }
            Error::bad_request(
                ErrorCode::TruncatedBody,
                format!(
                    "the request body ended early after {received}{} bytes: {e}",
                    of_declared()
                ),
            )
        })?;
        received += chunk.len() as i64;
        if let Some((room, too_large)) = bounds.room
            && received > room
        {
            return Err(too_large());
        }
        if let Some(length) = bounds.declared
            && received > length
        {
            return Err(Error::bad_request(
                ErrorCode::BodyTooLong,
                format!("the body has more bytes than its Content-Range declares ({length})"),
            ));
        }
        hasher.update(&chunk);
        writer.write(chunk).await?;
    }
    if let Some(length) = bounds.declared
        && received < length
    {
        return Err(Error::bad_request(
            ErrorCode::TruncatedBody,
            format!(
                "the request body ended after {received} of the {length} bytes its Content-Range declares"
            ),
        ));
    }
    Ok(received)
}
