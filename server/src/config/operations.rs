//! Settings for operating kiln as a fleet: metrics (KILN_METRICS_LISTEN, KILN_METRICS_TOKEN), trace
//! export (KILN_OTLP_ENDPOINT), webhooks (KILN_WEBHOOK_*) and how long hot reads are kept
//! (KILN_CACHE_TTL_MS).

use std::net::SocketAddr;
use std::time::Duration;

use super::{ConfigError, config_error};

/// Where Prometheus scrapes `/metrics`. Neither set: nowhere (the public listener answers 404 there).
#[derive(Clone, Default)]
pub struct MetricsSettings {
    /// A listener of its own that serves only `/metrics`, with no credential (keep it on a private
    /// network): `KILN_METRICS_LISTEN=0.0.0.0:9464`.
    pub listen: Option<SocketAddr>,
    /// `/metrics` on the public listener for a scraper sending `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

impl std::fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// How webhooks are sent.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Send to loopback, private, link-local and other non-public addresses (a receiver inside the
    /// cluster). Off by default: a namespace admin must not reach the cloud metadata service or the
    /// database's port through kiln.
    pub allow_private_targets: bool,
    /// One delivery attempt's whole time (connect, send, the receiver's answer).
    pub timeout: Duration,
    /// A subscription whose deliveries failed this many times in a row is disabled.
    pub disable_after_failures: u32,
    /// How often each replica looks for due deliveries.
    pub poll: Duration,
    /// Whether this replica sends deliveries (KILN_WEBHOOK_DELIVERY=false: another replica does; events
    /// still go to the outbox here).
    pub deliver: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            timeout: Duration::from_secs(10),
            disable_after_failures: 50,
            poll: Duration::from_secs(1),
            deliver: true,
        }
    }
}

pub(super) fn metrics(
    listen: Option<&str>,
    token: Option<String>,
) -> Result<MetricsSettings, ConfigError> {
    let listen = listen
        .map(|text| {
            text.parse().map_err(|_| {
                config_error(
                    "KILN_METRICS_LISTEN",
                    format!("{text:?} is not an address and port (e.g. 127.0.0.1:9464)"),
                )
            })
        })
        .transpose()?;
    if let Some(token) = &token
        && token.len() < 16
    {
        return Err(config_error(
            "KILN_METRICS_TOKEN",
            "must be at least 16 characters (a scraper's secret)",
        ));
    }
    Ok(MetricsSettings { listen, token })
}

pub(super) fn webhooks(
    deliver: Option<bool>,
    allow_private_targets: Option<bool>,
    timeout_secs: Option<u64>,
    disable_after_failures: Option<u32>,
) -> Result<WebhookSettings, ConfigError> {
    let defaults = WebhookSettings::default();
    let timeout_secs = timeout_secs.unwrap_or(defaults.timeout.as_secs());
    if !(1..=60).contains(&timeout_secs) {
        return Err(config_error(
            "KILN_WEBHOOK_TIMEOUT_SECS",
            "must be between 1 and 60",
        ));
    }
    let disable_after_failures = disable_after_failures.unwrap_or(defaults.disable_after_failures);
    if disable_after_failures == 0 {
        return Err(config_error(
            "KILN_WEBHOOK_DISABLE_AFTER_FAILURES",
            "must be at least 1",
        ));
    }
    Ok(WebhookSettings {
        allow_private_targets: allow_private_targets.unwrap_or(false),
        timeout: Duration::from_secs(timeout_secs),
        disable_after_failures,
        poll: defaults.poll,
        deliver: deliver.unwrap_or(true),
    })
}

/// How long hot reads are kept (default 1 s; 0 keeps nothing): the bound on how stale a read may be.
pub(super) fn cache_ttl(ms: Option<u64>) -> Result<Duration, ConfigError> {
    let ms = ms.unwrap_or(1000);
    if ms > 60_000 {
        return Err(config_error(
            "KILN_CACHE_TTL_MS",
            "must be between 0 and 60000 (a minute): it bounds how stale a read may be",
        ));
    }
    Ok(Duration::from_millis(ms))
}

/// Where spans go over OTLP/HTTP (protobuf): an OpenTelemetry Collector, Jaeger, Tempo...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceExportSettings {
    /// The traces URL: KILN_OTLP_ENDPOINT (the collector's base, `http://collector:4318`) with
    /// `/v1/traces` appended, as OTEL_EXPORTER_OTLP_ENDPOINT is read by every OpenTelemetry SDK.
    pub traces_url: String,
}

pub(super) fn traces(endpoint: Option<&str>) -> Result<Option<TraceExportSettings>, ConfigError> {
    let Some(endpoint) = endpoint.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(None);
    };
    let url = reqwest::Url::parse(endpoint).map_err(|e| {
        config_error(
            "KILN_OTLP_ENDPOINT",
            format!("{endpoint:?} is not a URL ({e}); e.g. http://otel-collector:4318"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(config_error(
            "KILN_OTLP_ENDPOINT",
            format!("{endpoint:?} must be an http:// or https:// URL of an OTLP/HTTP receiver"),
        ));
    }
    Ok(Some(TraceExportSettings {
        traces_url: format!("{}/v1/traces", endpoint.trim_end_matches('/')),
    }))
}
