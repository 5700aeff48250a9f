//! Request bodies the client compressed, as tritonclient compresses them and Triton reads them: a REST
//! body with `Content-Encoding: gzip` or `deflate` (`request_compression_algorithm`), a gRPC message with
//! `grpc-encoding: gzip` or `deflate` (`compression_algorithm`). Inflated into a writer that refuses to
//! grow past the body's limit (`--max-request-mib`) or past what the request may hold, counting each
//! growth of its buffer before making it: deflate can multiply its input about a thousand times, and a
//! small body inflated without looking could take gigabytes. (flate2's decoders hand their writer at most
//! 32 KiB at a time.) Refusals are the client's: a 400 / `INVALID_ARGUMENT`, never tonic's own
//! `INTERNAL` for a message that does not inflate.

use std::io::Write;

use actix_web::HttpRequest;
use actix_web::http::header::CONTENT_ENCODING;
use bytes::Bytes;
use flate2::write::{MultiGzDecoder, ZlibDecoder};

use super::ServeError;
use super::request_memory::Held;

/// The encodings read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gzip,
    Deflate,
}

impl Encoding {
    /// `Ok(None)` for a body as it is (no encoding, `identity`); an error naming the encodings read for
    /// any other (`header`: the header's name, for the error).
    pub fn parse(value: &[u8], header: &str) -> Result<Option<Self>, ServeError> {
        let name = String::from_utf8_lossy(value).trim().to_ascii_lowercase();
        match name.as_str() {
            "identity" | "" => Ok(None),
            "gzip" | "x-gzip" => Ok(Some(Self::Gzip)),
            "deflate" => Ok(Some(Self::Deflate)),
            other => Err(ServeError::BadRequest(format!(
                "the body's {header} {other:?} is not one this server reads (gzip, deflate, identity)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
        }
    }
}

/// A REST body as sent, or inflated when its `Content-Encoding` says it is compressed; at most `limit`
/// bytes inflated (`what` names the limit), what it inflates to counted in `held` as it comes.
pub fn inflated(
    req: &HttpRequest,
    body: Bytes,
    limit: (usize, &str),
    held: &mut Held,
) -> Result<Bytes, ServeError> {
    let Some(value) = req.headers().get(CONTENT_ENCODING) else {
        return Ok(body);
    };
    match Encoding::parse(value.as_bytes(), "Content-Encoding")? {
        None => Ok(body),
        Some(encoding) => {
            let what = "this request's inflated body needs";
            inflate(encoding, &[&body], limit, |bytes| {
                held.count_within_limit(bytes, what)
            })
            .map(Bytes::from)
        }
    }
}

/// `compressed` (its pieces in order) inflated: at most `limit` bytes (`what` names the limit), each
/// growth of the buffer given to `count` first, which may refuse it.
pub fn inflate(
    encoding: Encoding,
    compressed: &[&[u8]],
    (limit, what): (usize, &str),
    count: impl FnMut(usize) -> Result<(), ServeError>,
) -> Result<Vec<u8>, ServeError> {
    let mut out = Limited {
        bytes: Vec::new(),
        limit,
        count,
    };
    let done = match encoding {
        Encoding::Gzip => feed(
            MultiGzDecoder::new(&mut out),
            compressed,
            MultiGzDecoder::try_finish,
        ),
        Encoding::Deflate => feed(
            ZlibDecoder::new(&mut out),
            compressed,
            ZlibDecoder::try_finish,
        ),
    };
    match done {
        Ok(()) => Ok(out.bytes),
        Err(e) => Err(
            match e.into_inner().and_then(|e| e.downcast::<Refused>().ok()) {
                Some(refused) => match (*refused).0 {
                    None => ServeError::BadRequest(format!(
                        "the request inflates to more than {limit} bytes ({what})"
                    )),
                    Some(refusal) => refusal,
                },
                None => ServeError::BadRequest(format!(
                    "the request is not valid {} data, as its encoding says",
                    encoding.name()
                )),
            },
        ),
    }
}

/// Feeds `pieces` to `decoder`, then finishes it (a truncated stream is an error there).
fn feed<D: Write>(
    mut decoder: D,
    pieces: &[&[u8]],
    finish: fn(&mut D) -> std::io::Result<()>,
) -> std::io::Result<()> {
    for piece in pieces {
        decoder.write_all(piece)?;
    }
    finish(&mut decoder)
}

/// Why inflating stopped: past the body limit (`None`), or refused by the count. An `io::Error` is what
/// a writer may fail with; this carries ours through flate2 to `inflate`.
#[derive(Debug)]
struct Refused(Option<ServeError>);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the inflated body passed a limit")
    }
}

impl std::error::Error for Refused {}

/// The inflated bytes, refused past `limit` or when `count` refuses; what its buffer reserves counted
/// (a buffer doubling as it grows holds up to twice what it has been written).
struct Limited<C> {
    bytes: Vec<u8>,
    limit: usize,
    count: C,
}

impl<C: FnMut(usize) -> Result<(), ServeError>> Write for Limited<C> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let needed = self.bytes.len() + buf.len();
        if needed > self.limit {
            return Err(std::io::Error::other(Refused(None)));
        }
        if needed > self.bytes.capacity() {
            let capacity = (self.bytes.capacity() * 2).clamp(needed, self.limit);
            (self.count)(capacity - self.bytes.capacity())
                .map_err(|e| std::io::Error::other(Refused(Some(e))))?;
            self.bytes.reserve_exact(capacity - self.bytes.len());
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use actix_web::test::TestRequest;
    use flate2::Compression;
    use flate2::write::{GzEncoder, ZlibEncoder};

    use super::*;
    use crate::serve::request_memory::RequestMemory;

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap().into()
    }

    fn deflate(data: &[u8]) -> Bytes {
        let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap().into()
    }

    fn inflate_rest(
        encoding: Option<&str>,
        body: Bytes,
        limit: usize,
        memory: &RequestMemory,
    ) -> Result<Bytes, String> {
        let mut request = TestRequest::post();
        if let Some(encoding) = encoding {
            request = request.insert_header((CONTENT_ENCODING, encoding));
        }
        let mut held = memory.held();
        inflated(
            &request.to_http_request(),
            body,
            (limit, "--max-request-mib"),
            &mut held,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn gzip_and_deflate_bodies_are_inflated_and_others_passed_or_refused() {
        let json =
            br#"{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.5]}]}"#
                .repeat(50);
        let memory = RequestMemory::new(None);
        for (encoding, body) in [
            ("gzip", gzip(&json)),
            ("GZIP", gzip(&json)),
            ("deflate", deflate(&json)),
        ] {
            assert_eq!(
                inflate_rest(Some(encoding), body, 1 << 20, &memory).unwrap(),
                json,
                "{encoding}"
            );
        }
        let two_members = [gzip(b"ab"), gzip(b"cd")].concat();
        assert_eq!(
            inflate_rest(Some("gzip"), two_members.into(), 64, &memory).unwrap(),
            "abcd"
        );
        let plain = Bytes::from_static(b"{}");
        assert_eq!(
            inflate_rest(None, plain.clone(), 64, &memory).unwrap(),
            plain
        );
        assert_eq!(
            inflate_rest(Some("identity"), plain.clone(), 64, &memory).unwrap(),
            plain
        );
        let br = inflate_rest(Some("br"), plain.clone(), 64, &memory).unwrap_err();
        assert!(
            br.contains("\"br\" is not one this server reads (gzip, deflate, identity)"),
            "{br}"
        );
        let garbage = inflate_rest(Some("gzip"), plain, 64, &memory).unwrap_err();
        assert!(garbage.contains("not valid gzip data"), "{garbage}");
        let compressed = gzip(&json);
        let cut = inflate_rest(
            Some("gzip"),
            compressed.slice(..compressed.len() - 9),
            1 << 20,
            &memory,
        );
        assert!(cut.unwrap_err().contains("not valid gzip data"));
    }

    #[test]
    fn a_bomb_stops_at_the_body_limit_or_at_the_requests_memory() {
        // 64 MiB of zeros deflate to about 64 KiB.
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100 << 10, "{}", bomb.len());
        let memory = RequestMemory::new(None);
        let past_body = inflate_rest(Some("gzip"), bomb.clone(), 1 << 20, &memory).unwrap_err();
        assert!(
            past_body.contains("inflates to more than 1048576 bytes (--max-request-mib)"),
            "{past_body}"
        );
        let memory = RequestMemory::new(Some(4 << 20));
        let past_memory = inflate_rest(Some("gzip"), bomb, 64 << 20, &memory).unwrap_err();
        assert!(past_memory.contains("--max-in-flight-mib"), "{past_memory}");
        assert_eq!(
            memory.used(),
            0,
            "what the refused request counted is given back"
        );
    }
}
