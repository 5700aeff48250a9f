//! Structured logs. `RUST_LOG` filters (default `info`); the `log_format` setting (`KILN_LOG_FORMAT`)
//! switches to JSON lines.

pub mod metrics;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// The log format a child process of the server was given (it reads no settings of its own).
pub fn json_for_child() -> bool {
    std::env::var("KILN_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
}

pub fn init(json: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second init (tests start several servers in one process) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
