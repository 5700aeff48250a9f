//! Structured logs and trace export. `RUST_LOG` filters (default `info`); the `log_format` setting
//! (`KILN_LOG_FORMAT`) switches to JSON lines; with `KILN_OTLP_ENDPOINT` the same spans (each request's,
//! each pipeline job's, each webhook delivery's) also go to an OpenTelemetry collector.

pub mod metrics;
mod request_span;
mod traces;

use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::TraceExportSettings;
use crate::error::Error;

pub use request_span::RequestSpan;

/// What must outlive the server: the span exporter, whose last batch [`Telemetry::shutdown`] sends.
#[must_use = "dropping it without shutdown loses the last spans"]
pub struct Telemetry {
    traces: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered (the exporter's timeout bounds how long this waits).
    pub fn shutdown(self) {
        if let Some(provider) = self.traces
            && let Err(e) = provider.shutdown()
        {
            eprintln!("kiln-server: the last spans were not exported: {e}");
        }
    }
}

/// The log format a child process of the server was given (it reads no settings of its own).
pub fn json_for_child() -> bool {
    std::env::var("KILN_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
}

type Filtered = tracing_subscriber::layer::Layered<EnvFilter, Registry>;

pub fn init(json: bool, trace_export: Option<&TraceExportSettings>) -> Result<Telemetry, Error> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs: Box<dyn Layer<Filtered> + Send + Sync> = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_span_events(FmtSpan::CLOSE)
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_span_events(FmtSpan::CLOSE)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .boxed()
    };
    let provider = trace_export.map(traces::provider).transpose()?;
    let spans = provider.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(provider.tracer("kiln-server"))
    });
    // A second init (tests start several servers in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(spans)
        .try_init();
    Ok(Telemetry { traces: provider })
}
