//! Each request's span: tracing-actix-web's, continuing the caller's trace (a W3C `traceparent` header)
//! only while spans are exported, so the logs of a server that exports nothing carry no trace id at all
//! rather than one of zeros.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderMap;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt as _;
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let span = tracing_actix_web::root_span!(request);
        if super::traces::exporting() {
            continue_the_callers_trace(request.headers(), &span);
        }
        span
    }

    fn on_request_end<B: MessageBody>(
        span: Span,
        outcome: &Result<ServiceResponse<B>, actix_web::Error>,
    ) {
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

fn continue_the_callers_trace(headers: &HeaderMap, span: &Span) {
    let callers = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&RequestHeaders(headers))
    });
    // Fails only when the span is disabled (filtered out): nothing to continue then.
    let _ = span.set_parent(callers);
    let trace_id = span.context().span().span_context().trace_id();
    span.record("trace_id", tracing::field::display(trace_id));
}

struct RequestHeaders<'a>(&'a HeaderMap);

impl Extractor for RequestHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}
