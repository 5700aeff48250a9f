//! Spans over OTLP/HTTP (protobuf) in batches, from a thread of the SDK's own so a slow collector never
//! holds a request. An incoming W3C `traceparent` header makes a request's span a child of the caller's
//! (through the propagator set here; see request_span.rs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;

use crate::config::TraceExportSettings;
use crate::error::Error;

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether this process exports spans (its requests then continue their callers' traces).
pub(super) fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// A collector that does not answer in this time loses that batch, not the server's time.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) fn provider(settings: &TraceExportSettings) -> Result<SdkTracerProvider, Error> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(&settings.traces_url)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| {
            Error::Startup(format!(
                "KILN_OTLP_ENDPOINT: cannot export spans to {}: {e}",
                settings.traces_url
            ))
        })?;
    let resource = Resource::builder()
        .with_service_name("kiln-server")
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    EXPORTING.store(true, Ordering::Relaxed);
    // The sampler is the SDK's (parent-based, always on), or OTEL_TRACES_SAMPLER's when set.
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
