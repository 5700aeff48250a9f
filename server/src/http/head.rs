//! `HEAD` on every `GET` route (RFC 9110 §9.3.2: the same headers, no body). The request is routed and
//! authorized as the `GET` it mirrors; handlers that can answer without reading the body (file downloads)
//! see [`HeadRequest`] and skip it. For the others the connection writes the headers their `GET` would
//! and drops the body (actix-http leaves a `HEAD` response's body unsent).

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::HttpMessage;
use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::Bytes;

/// Marks a request that came in as `HEAD` and is being answered as its `GET`.
#[derive(Clone, Copy)]
pub struct HeadRequest;

pub async fn answer_head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
        req.extensions_mut().insert(HeadRequest);
    }
    next.call(req).await
}

/// A body that announces `length` bytes and has none: what a `HEAD` response carries, so that its
/// `Content-Length` is the `GET`'s.
pub struct Headers {
    length: u64,
}

impl Headers {
    pub fn of_length(length: u64) -> Self {
        Self { length }
    }
}

impl MessageBody for Headers {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.length)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(None)
    }
}
