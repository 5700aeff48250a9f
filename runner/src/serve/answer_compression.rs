//! REST answers compressed when the client asks, as Triton answers them: `Accept-Encoding` naming gzip
//! or deflate (tritonclient's `response_compression_algorithm`) gets the answer in that encoding, with
//! `Content-Encoding` saying so; the binary-data header length (`Inference-Header-Content-Length`) stays
//! the uncompressed JSON's, which the client reads after inflating. Small answers go as they are: their
//! compressed form would save less than its headers cost. zlib's fast level: a client that asks is one
//! whose network is the narrow part, and the runner's CPU is the model's.

use std::io::Write;

use actix_web::HttpRequest;
use actix_web::http::header::ACCEPT_ENCODING;
use bytes::Bytes;
use flate2::Compression;
use flate2::write::{GzEncoder, ZlibEncoder};

use super::compression::Encoding;

/// Answers shorter than this are not compressed.
pub const MIN_COMPRESSED_BYTES: usize = 1024;

/// Answers longer than this are compressed off the HTTP worker (`web::block`), so that the worker's
/// other connections do not wait behind it.
pub const OFF_WORKER_BYTES: usize = 1 << 20;

/// The encoding the client prefers among gzip and deflate, by RFC 9110's rules: each listed coding's
/// `;q=` weight (1 when absent), `*` standing for the codings not listed, gzip on a tie; `None` when
/// neither has a weight above 0.
pub fn accepted(req: &HttpRequest) -> Option<Encoding> {
    let (mut gzip, mut deflate, mut any) = (None, None, None);
    for value in req.headers().get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for coding in value.split(',') {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            match name.as_str() {
                "gzip" | "x-gzip" => gzip = Some(weight),
                "deflate" => deflate = Some(weight),
                "*" => any = Some(weight),
                _ => {}
            }
        }
    }
    let (gzip, deflate) = (gzip.or(any).unwrap_or(0.0), deflate.or(any).unwrap_or(0.0));
    match (gzip, deflate) {
        (g, d) if g <= 0.0 && d <= 0.0 => None,
        (g, d) if g >= d => Some(Encoding::Gzip),
        _ => Some(Encoding::Deflate),
    }
}

/// `body` compressed in `encoding` (deflate is HTTP's: zlib's format).
pub fn compress(body: &[u8], encoding: Encoding) -> Bytes {
    let out = Vec::with_capacity(body.len() / 3 + 64);
    let written = match encoding {
        Encoding::Gzip => {
            let mut encoder = GzEncoder::new(out, Compression::fast());
            encoder.write_all(body).and_then(|()| encoder.finish())
        }
        Encoding::Deflate => {
            let mut encoder = ZlibEncoder::new(out, Compression::fast());
            encoder.write_all(body).and_then(|()| encoder.finish())
        }
    };
    // Writing into a Vec fails only when memory does, which aborts before this.
    Bytes::from(written.expect("compressing into memory"))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use actix_web::test::TestRequest;

    use super::*;

    fn asking(value: &str) -> Option<Encoding> {
        accepted(
            &TestRequest::default()
                .insert_header((ACCEPT_ENCODING, value))
                .to_http_request(),
        )
    }

    #[test]
    fn the_clients_preferred_encoding_is_chosen() {
        assert_eq!(asking("gzip"), Some(Encoding::Gzip));
        assert_eq!(asking("deflate"), Some(Encoding::Deflate));
        assert_eq!(asking("deflate, gzip"), Some(Encoding::Gzip));
        assert_eq!(asking("gzip;q=0.5, deflate"), Some(Encoding::Deflate));
        assert_eq!(asking("br, *;q=0.1"), Some(Encoding::Gzip));
        assert_eq!(asking("identity"), None);
        assert_eq!(asking("gzip;q=0"), None);
        assert_eq!(asking("br"), None);
        // `*` stands only for the codings the header does not list.
        assert_eq!(asking("gzip;q=0, *"), Some(Encoding::Deflate));
        assert_eq!(asking("*;q=0.5, gzip;q=0"), Some(Encoding::Deflate));
        assert_eq!(asking("gzip;q=0, deflate;q=0, *"), None);
        assert_eq!(accepted(&TestRequest::default().to_http_request()), None);
    }

    #[test]
    fn compressed_answers_inflate_to_themselves() {
        let body: Vec<u8> = (0..10_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        let gzip = compress(&body, Encoding::Gzip);
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(&gzip[..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, body);
        let zlib = compress(&body, Encoding::Deflate);
        let mut inflated = Vec::new();
        flate2::read::ZlibDecoder::new(&zlib[..])
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, body);
        assert!(zlib.len() < body.len() / 4);
    }
}
