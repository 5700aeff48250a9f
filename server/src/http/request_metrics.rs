//! Request metrics: count, latency and body bytes by route template (`/api/v1/models/{namespace}/{model}`,
//! never the raw path, so a scraper's series stay bounded whatever names callers send).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::HttpMessage;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_util::Stream;

use crate::telemetry::metrics::{
    HTTP_BYTES_IN, HTTP_BYTES_OUT, HTTP_DURATION, HTTP_IN_FLIGHT, HTTP_REQUESTS,
};

/// The label of a request no route matched (probes, typos, scanners).
const UNMATCHED: &str = "unmatched";

pub async fn record(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    // Any token is a method to actix: only the standard ones become labels, so callers cannot mint series.
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    };
    // The route template as the router will match it, for a request a middleware refuses before routing
    // (401, 403, 429). (Matched up front: the request cannot be kept aside, as the router needs it unshared.)
    let pattern = req.resource_map().match_pattern(req.path());
    let received = Arc::new(AtomicU64::new(0));
    // Most requests (every GET) carry no body: their payload is left as it is.
    if req.headers().contains_key(header::TRANSFER_ENCODING)
        || req.headers().contains_key(header::CONTENT_LENGTH)
    {
        let payload = req.take_payload();
        req.set_payload(Payload::Stream {
            payload: Box::pin(CountedPayload {
                inner: payload,
                received: received.clone(),
            }),
        });
    }
    let in_flight = InFlight::enter();
    let result = next.call(req).await;
    drop(in_flight);
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            // Errors the middleware below raised are answered by actix from the error itself.
            let status = e.as_response_error().status_code();
            let route = pattern.as_deref().unwrap_or(UNMATCHED);
            observe(method, route, status.as_u16(), started, &received);
            return Err(e);
        }
    };
    let route = response
        .request()
        .match_pattern()
        .or(pattern)
        .unwrap_or_else(|| UNMATCHED.to_owned());
    observe(
        method,
        &route,
        response.status().as_u16(),
        started,
        &received,
    );
    Ok(response.map_body(move |_, body| CountedBody {
        inner: body.boxed(),
        sent: 0,
        route,
    }))
}

fn observe(method: &str, route: &str, status: u16, started: Instant, received: &AtomicU64) {
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!(HTTP_REQUESTS, "method" => method.to_owned(), "route" => route.to_owned(),
        "status" => status.to_string())
    .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method.to_owned(), "route" => route.to_owned())
        .record(elapsed);
    let bytes = received.load(Ordering::Relaxed);
    if bytes > 0 {
        metrics::counter!(HTTP_BYTES_IN, "route" => route.to_owned()).increment(bytes);
    }
}

/// Counts a request in flight until dropped, so a request whose client went away (actix drops its future)
/// leaves the gauge too.
struct InFlight;

impl InFlight {
    fn enter() -> Self {
        metrics::gauge!(HTTP_IN_FLIGHT).increment(1.0);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(HTTP_IN_FLIGHT).decrement(1.0);
    }
}

struct CountedPayload {
    inner: Payload,
    received: Arc<AtomicU64>,
}

impl Stream for CountedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            self.received
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        polled
    }
}

/// A response body that counts what it hands to the connection, recorded when the body is dropped (sent,
/// or abandoned by a client that went away).
struct CountedBody {
    inner: BoxBody,
    sent: u64,
    route: String,
}

impl MessageBody for CountedBody {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.inner.size()
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            self.sent += chunk.len() as u64;
        }
        polled
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        if self.sent > 0 {
            metrics::counter!(HTTP_BYTES_OUT, "route" => std::mem::take(&mut self.route))
                .increment(self.sent);
        }
    }
}
