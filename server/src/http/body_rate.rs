//! A minimum rate for request bodies. actix times out slow headers (408 after 5 s) but waits for a body
//! forever, so a client sending 100 bytes a second holds a connection and a worker as long as it likes.
//! After a grace period the body must have averaged at least the configured rate
//! (`min_body_bytes_per_sec`), or the request fails with 408 and the connection closes.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};
use futures_util::Stream;
use std::future::Future;

/// Before this, a body may be as slow as it likes (a client's first bytes, a mobile link's stall).
const GRACE: Duration = Duration::from_secs(10);

/// The rate, as the server's app data.
#[derive(Clone, Copy)]
pub struct MinBodyRate(pub u64);

pub async fn enforce(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let rate = req
        .app_data::<Data<MinBodyRate>>()
        .map(|r| r.0)
        .unwrap_or(0);
    // Most requests (every GET) carry no body: they keep their payload as it is, with no timer.
    let has_body = req.headers().contains_key(header::TRANSFER_ENCODING)
        || req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|length| length > 0);
    if rate > 0 && has_body {
        let payload = req.take_payload();
        let timed = Timed {
            inner: payload,
            started: Instant::now(),
            received: 0,
            rate,
            check: Box::pin(tokio::time::sleep(GRACE)),
        };
        req.set_payload(Payload::Stream {
            payload: Box::pin(timed),
        });
    }
    next.call(req).await
}

struct Timed {
    inner: Payload,
    started: Instant,
    received: u64,
    rate: u64,
    /// Wakes the reader to check the rate when no bytes come at all.
    check: Pin<Box<tokio::time::Sleep>>,
}

impl Timed {
    fn too_slow(&self) -> bool {
        let elapsed = self.started.elapsed();
        elapsed > GRACE && self.received < self.rate.saturating_mul(elapsed.as_secs())
    }
}

impl Stream for Timed {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            self.received += chunk.len() as u64;
        }
        if matches!(polled, Poll::Ready(None)) {
            return polled;
        }
        if self.too_slow() {
            return Poll::Ready(Some(Err(PayloadError::Io(too_slow(self.rate)))));
        }
        if polled.is_pending() {
            // Nothing arrived: look again in a second, even if nothing ever does.
            while self.check.as_mut().poll(cx).is_ready() {
                if self.too_slow() {
                    return Poll::Ready(Some(Err(PayloadError::Io(too_slow(self.rate)))));
                }
                let next = tokio::time::Instant::now() + Duration::from_secs(1);
                self.check.as_mut().reset(next);
            }
        }
        polled
    }
}

/// The error a too-slow body ends with: `TimedOut`, which the handlers turn into 408.
pub fn too_slow(rate: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the request body arrived slower than {rate} bytes/s (min_body_bytes_per_sec); the connection is closed"
        ),
    )
}

/// A payload error as an I/O error, keeping a timeout a timeout.
pub fn as_io(error: PayloadError) -> io::Error {
    match error {
        PayloadError::Io(e) => e,
        other => io::Error::other(other),
    }
}
