//! A REST body the client compressed: `Content-Encoding: gzip` or `deflate`, which tritonclient sends with
//! `request_compression_algorithm` and Triton reads. The body is inflated once it has come whole (its
//! compressed bytes bounded and counted as any body's) into a writer that refuses to grow past
//! `--max-request-mib` or past what the request may hold, counting each growth of its buffer before
//! making it: deflate can multiply its input about a thousand times, and a small body inflated without
//! looking could take gigabytes. (flate2's decoders hand their writer at most 32 KiB at a time.)

use std::io::Write;

use actix_web::HttpRequest;
use actix_web::http::header::CONTENT_ENCODING;
use bytes::Bytes;
use flate2::write::{MultiGzDecoder, ZlibDecoder};

use super::ServeError;
use super::request_memory::Held;

/// `body` as sent, or inflated when its `Content-Encoding` says it is compressed; at most `limit` bytes
/// inflated (`what` names the limit), what it inflates to counted in `held` as it comes.
pub fn inflated(
    req: &HttpRequest,
    body: Bytes,
    (limit, what): (usize, &str),
    held: &mut Held,
) -> Result<Bytes, ServeError> {
    let Some(encoding) = req.headers().get(CONTENT_ENCODING) else {
        return Ok(body);
    };
    let encoding = String::from_utf8_lossy(encoding.as_bytes())
        .trim()
        .to_ascii_lowercase();
    let mut out = Limited {
        bytes: Vec::new(),
        limit,
        held,
    };
    let done = match encoding.as_str() {
        "identity" | "" => return Ok(body),
        "gzip" | "x-gzip" => feed(
            MultiGzDecoder::new(&mut out),
            &body,
            MultiGzDecoder::try_finish,
        ),
        "deflate" => feed(ZlibDecoder::new(&mut out), &body, ZlibDecoder::try_finish),
        other => {
            return Err(ServeError::BadRequest(format!(
                "the body's Content-Encoding {other:?} is not one this server reads (gzip, deflate, \
                 identity)"
            )));
        }
    };
    match done {
        Ok(()) => Ok(Bytes::from(out.bytes)),
        Err(e) => Err(
            match e.into_inner().and_then(|e| e.downcast::<Refused>().ok()) {
                Some(refused) => match (*refused).0 {
                    None => ServeError::BadRequest(format!(
                        "the request inflates to more than {limit} bytes ({what})"
                    )),
                    Some(refusal) => refusal,
                },
                None => ServeError::BadRequest(format!(
                    "the body is not valid {encoding} data, as its Content-Encoding says"
                )),
            },
        ),
    }
}

/// Feeds `body` to `decoder`, then finishes it (a truncated stream is an error there).
fn feed<D: Write>(
    mut decoder: D,
    body: &[u8],
    finish: fn(&mut D) -> std::io::Result<()>,
) -> std::io::Result<()> {
    decoder.write_all(body)?;
    finish(&mut decoder)
}

/// Why inflating stopped: past the body limit (`None`), or past the requests' memory limit. An
/// `io::Error` is what a writer may fail with; this carries ours through flate2 to `inflated`.
#[derive(Debug)]
struct Refused(Option<ServeError>);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the inflated body passed a limit")
    }
}

impl std::error::Error for Refused {}

/// The inflated bytes, refused past `limit` or past what the request may hold; what its buffer
/// reserves counted (a buffer doubling as it grows holds up to twice what it has been written).
struct Limited<'a> {
    bytes: Vec<u8>,
    limit: usize,
    held: &'a mut Held,
}

impl Write for Limited<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let needed = self.bytes.len() + buf.len();
        if needed > self.limit {
            return Err(std::io::Error::other(Refused(None)));
        }
        if needed > self.bytes.capacity() {
            let capacity = (self.bytes.capacity() * 2).clamp(needed, self.limit);
            let what = "this request's inflated body needs";
            self.held
                .count_within_limit(capacity - self.bytes.capacity(), what)
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

    fn inflate(
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
                inflate(Some(encoding), body, 1 << 20, &memory).unwrap(),
                json,
                "{encoding}"
            );
        }
        let two_members = [gzip(b"ab"), gzip(b"cd")].concat();
        assert_eq!(
            inflate(Some("gzip"), two_members.into(), 64, &memory).unwrap(),
            "abcd"
        );
        let plain = Bytes::from_static(b"{}");
        assert_eq!(inflate(None, plain.clone(), 64, &memory).unwrap(), plain);
        assert_eq!(
            inflate(Some("identity"), plain.clone(), 64, &memory).unwrap(),
            plain
        );
        let br = inflate(Some("br"), plain.clone(), 64, &memory).unwrap_err();
        assert!(
            br.contains("\"br\" is not one this server reads (gzip, deflate, identity)"),
            "{br}"
        );
        let garbage = inflate(Some("gzip"), plain, 64, &memory).unwrap_err();
        assert!(garbage.contains("not valid gzip data"), "{garbage}");
        let compressed = gzip(&json);
        let cut = inflate(
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
        let past_body = inflate(Some("gzip"), bomb.clone(), 1 << 20, &memory).unwrap_err();
        assert!(
            past_body.contains("inflates to more than 1048576 bytes (--max-request-mib)"),
            "{past_body}"
        );
        let memory = RequestMemory::new(Some(4 << 20));
        let past_memory = inflate(Some("gzip"), bomb, 64 << 20, &memory).unwrap_err();
        assert!(past_memory.contains("--max-in-flight-mib"), "{past_memory}");
        assert_eq!(
            memory.used(),
            0,
            "what the refused request counted is given back"
        );
    }
}
