//! A gRPC call's own deadline (`grpc-timeout`), ended here rather than by tonic. tonic's server ends a
//! call at its deadline as `CANCELLED` ("Timeout expired"), and drops the handler that would have counted
//! it in `kiln_serve_requests_total`; gRPC's status for a deadline that passed is `DEADLINE_EXCEEDED`, and a
//! client that leaves its deadline to the server (tonic's `Request::set_timeout`, a raw HTTP/2 client)
//! sees the server's status as the call's end. This layer ends the call first: it takes the deadline as
//! the call comes in, before tonic's timer is set (tonic calls the service, then starts its timer), and
//! tonic polls the call before its timer, so that once tonic's timer has fired, this one has too.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::time::Instant;

use super::ServeError;
use super::request_deadline::grpc_timeout;

/// When the call's client stops waiting (an extension of the call's request, for its handler).
#[derive(Clone, Copy, Debug)]
pub struct CallDeadline(pub std::time::Instant);

/// Ends every call at its `grpc-timeout` with `DEADLINE_EXCEEDED`, an inference call counted as a request.
#[derive(Clone, Copy, Default)]
pub struct CallDeadlineLayer;

impl<S> tower_layer::Layer<S> for CallDeadlineLayer {
    type Service = Deadlined<S>;

    fn layer(&self, inner: S) -> Deadlined<S> {
        Deadlined { inner }
    }
}

#[derive(Clone)]
pub struct Deadlined<S> {
    inner: S,
}

impl<S, R, B> tower_service::Service<http::Request<R>> for Deadlined<S>
where
    S: tower_service::Service<http::Request<R>, Response = http::Response<B>>,
    S::Future: Send + 'static,
    B: Default,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<R>) -> Self::Future {
        let arrived = Instant::now();
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|v| v.to_str().ok())
            .and_then(grpc_timeout);
        // A timeout past what the clock holds is no deadline (tonic's timer would not fire either).
        let Some((timeout, at)) = timeout.and_then(|t| Some((t, arrived.checked_add(t)?))) else {
            return Box::pin(self.inner.call(request));
        };
        request.extensions_mut().insert(CallDeadline(at.into_std()));
        let inference = request.uri().path() == super::grpc_memory::INFER_PATH;
        let answer = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout_at(at, answer).await {
                Ok(answer) => answer,
                Err(_) => {
                    let e = ServeError::DeadlineExceeded(format!(
                        "the call's deadline (grpc-timeout, {timeout:?}) passed before it was answered"
                    ));
                    if inference {
                        let outcome = super::rest::outcome(Some(&e));
                        super::metrics::request("grpc", outcome, None, arrived.elapsed());
                    }
                    Ok(super::grpc::status(e).into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tower_layer::Layer;
    use tower_service::Service;

    use super::*;

    /// A service that answers after `after` (never, for `None`), telling what deadline its call carried.
    #[derive(Clone)]
    struct Answering {
        after: Option<Duration>,
        seen: std::sync::Arc<std::sync::Mutex<Option<Option<CallDeadline>>>>,
    }

    impl Service<http::Request<()>> for Answering {
        type Response = http::Response<String>;
        type Error = std::convert::Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<()>) -> Self::Future {
            *self.seen.lock().unwrap() = Some(request.extensions().get::<CallDeadline>().copied());
            let after = self.after;
            Box::pin(async move {
                match after {
                    Some(after) => tokio::time::sleep(after).await,
                    None => std::future::pending().await,
                }
                Ok(http::Response::new("answered".to_owned()))
            })
        }
    }

    fn call(timeout: Option<&str>) -> http::Request<()> {
        let mut request = http::Request::post("/inference.GRPCInferenceService/ServerLive");
        if let Some(timeout) = timeout {
            request = request.header("grpc-timeout", timeout);
        }
        request.body(()).unwrap()
    }

    fn service(after: Option<Duration>) -> (Deadlined<Answering>, Answering) {
        let inner = Answering {
            after,
            seen: Default::default(),
        };
        (CallDeadlineLayer.layer(inner.clone()), inner)
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_not_answered_by_its_grpc_timeout_ends_then_as_deadline_exceeded() {
        let (mut service, inner) = service(None);
        let started = Instant::now();
        let response = service.call(call(Some("250m"))).await.unwrap();
        assert_eq!(started.elapsed(), Duration::from_millis(250));
        assert_eq!(response.headers()["grpc-status"], "4", "DEADLINE_EXCEEDED");
        let message = response.headers()["grpc-message"].to_str().unwrap();
        assert!(message.contains("grpc-timeout"), "{message}");
        assert!(response.body().is_empty(), "a trailers-only answer");
        let seen = inner
            .seen
            .lock()
            .unwrap()
            .expect("called")
            .expect("a deadline");
        assert_eq!(
            seen.0,
            (started + Duration::from_millis(250)).into_std(),
            "the handler's deadline is the call's"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_answered_in_time_or_without_a_readable_timeout_is_the_services_answer() {
        let (mut service, inner) = service(Some(Duration::from_millis(100)));
        let response = service.call(call(Some("1S"))).await.unwrap();
        assert_eq!(response.body(), "answered");
        for unread in [None, Some("5x"), Some("123456789S"), Some("")] {
            let response = service.call(call(unread)).await.unwrap();
            assert_eq!(response.body(), "answered", "{unread:?}");
            let seen = *inner.seen.lock().unwrap();
            assert!(matches!(seen, Some(None)), "{unread:?}: no deadline");
        }
    }
}
