//! Settings from `kiln.toml` and `KILN_*` environment variables (environment wins), checked before start.
//! A wrong value stops the start with one line naming the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod backends;
mod collection;
mod operations;
mod sources;

pub use backends::{DatabaseSettings, ServerSideEncryption, StorageSettings};
use backends::{parse_database_url, parse_storage_url};
pub use collection::CollectionSettings;
pub use operations::{MetricsSettings, TraceExportSettings, WebhookSettings};

/// How long a manifest is valid unless KILN_MANIFEST_VALIDITY_SECS says otherwise; verifiers refuse it
/// afterwards, so a frozen mirror cannot serve it forever.
pub const DEFAULT_MANIFEST_VALIDITY_DAYS: u64 = 90;

/// Settings as written by the operator, before validation. Unknown keys are refused (see [`sources`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(default, deserialize_with = "sources::text")]
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    #[serde(default, deserialize_with = "sources::text")]
    database_url: Option<String>,
    #[serde(default, deserialize_with = "sources::text")]
    storage_url: Option<String>,
    #[serde(default, deserialize_with = "sources::text")]
    s3_endpoint: Option<String>,
    #[serde(default, deserialize_with = "sources::text")]
    s3_region: Option<String>,
    #[serde(default, deserialize_with = "sources::text")]
    s3_access_key_id: Option<String>,
    #[serde(default, deserialize_with = "sources::text")]
    s3_secret_access_key: Option<String>,
    max_json_bytes: Option<u64>,
    upload_session_ttl_hours: Option<u64>,
    gc_grace_minutes: Option<u64>,
    gc_interval_minutes: Option<u64>,
    gc_lease_secs: Option<u64>,
    gc_batch_rows: Option<u64>,
    #[serde(default, deserialize_with = "sources::text")]
    bootstrap_token: Option<String>,
    rate_limit_per_minute: Option<u32>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    #[serde(default, deserialize_with = "sources::text")]
    s3_sse: Option<String>,
    #[serde(default, deserialize_with = "sources::text")]
    s3_sse_kms_key_id: Option<String>,
    #[serde(default, deserialize_with = "sources::text")]
    s3_sse_c_key: Option<String>,
    s3_max_copy_bytes: Option<u64>,
    pipeline_workers: Option<usize>,
    manifest_keys_dir: Option<PathBuf>,
    manifest_validity_secs: Option<u64>,
    runner_lease_secs: Option<u64>,
    embedded_runner: Option<bool>,
    embedded_runner_threads: Option<u32>,
    onnxruntime_lib: Option<PathBuf>,
    step_memory_mb: Option<u64>,
    streamed_variants_above_mb: Option<u64>,
    step_time_secs: Option<u64>,
    #[serde(default, deserialize_with = "sources::text")]
    log_format: Option<String>,
    #[serde(default, deserialize_with = "sources::list")]
    cors_allowed_origins: Option<Vec<String>>,
    min_body_bytes_per_sec: Option<u64>,
    #[serde(default, deserialize_with = "sources::text")]
    public_url: Option<String>,
    #[serde(default, deserialize_with = "sources::text")]
    metrics_listen: Option<String>,
    #[serde(default, deserialize_with = "sources::text")]
    metrics_token: Option<String>,
    cache_ttl_ms: Option<u64>,
    webhook_delivery: Option<bool>,
    webhook_allow_private_targets: Option<bool>,
    webhook_timeout_secs: Option<u64>,
    webhook_disable_after_failures: Option<u32>,
    #[serde(default, deserialize_with = "sources::text")]
    otlp_endpoint: Option<String>,
}

#[derive(Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseSettings,
    pub storage: StorageSettings,
    pub max_json_bytes: usize,
    pub upload_session_ttl: std::time::Duration,
    /// Garbage collection's grace period and schedule.
    pub collection: CollectionSettings,
    /// The first administrator's API token on a fresh registry, instead of a generated one.
    pub bootstrap_token: Option<String>,
    pub rate_limit_per_minute: u32,
    /// Serve HTTPS with this certificate chain and key (PEM files).
    pub tls: Option<TlsSettings>,
    /// In-process pipeline workers (0: this server runs no jobs; another process must).
    pub pipeline_workers: usize,
    /// Where the manifest signing keys live (PKCS#8 files, 0600); the newest signs, all are published.
    pub manifest_keys_dir: PathBuf,
    /// How long a published manifest is valid (verifiers refuse it afterwards); default 90 days.
    pub manifest_validity: std::time::Duration,
    /// A runner's job lease: lost (and the job claimable again) without a heartbeat for this long.
    pub runner_lease: std::time::Duration,
    /// Run an in-process CPU benchmark runner (the embedded default's; KILN_EMBEDDED_RUNNER=false to not).
    pub embedded_runner: bool,
    /// CPU threads the embedded runner's benchmarks are pinned to.
    pub embedded_runner_threads: u32,
    /// ONNX Runtime's shared library (KILN_ONNXRUNTIME_LIB): the embedded runner measures with ONNX
    /// Runtime instead of kiln's evaluator.
    pub onnxruntime_lib: Option<PathBuf>,
    /// Memory (address space) a pipeline step's child process may use, bytes (KILN_STEP_MEMORY_MB).
    pub step_memory_bytes: u64,
    /// Models whose weights take more than this are optimized streamed, weight by weight (bytes;
    /// KILN_STREAMED_VARIANTS_ABOVE_MB, default an eighth of the step memory).
    pub streamed_variants_above_bytes: u64,
    /// Wall-clock time one pipeline step may take (KILN_STEP_TIME_SECS).
    pub step_time: std::time::Duration,
    /// The kiln-server program its child processes run (pipeline steps, the embedded runner): this binary
    /// unless a program that embeds the server (its tests) names it.
    pub server_executable: Option<PathBuf>,
    /// Log lines as JSON instead of text (`log_format = "json"`).
    pub log_json: bool,
    /// Web origins (`https://ui.example.com`) whose pages may call the API from a browser; empty: CORS
    /// off, and browsers keep other sites' pages from reading kiln's answers.
    pub cors_allowed_origins: Vec<String>,
    /// After 10 s, a request body must have averaged this many bytes a second or it fails with 408
    /// (0: no minimum).
    pub min_body_bytes_per_sec: u64,
    /// The URL clients reach this registry at (`https://kiln.example.com`): the `iss` of its manifests.
    pub public_url: Option<String>,
    /// How long hot reads (credentials, access facts, version details, newest manifests) are kept: a
    /// change on another replica is seen within this (KILN_CACHE_TTL_MS; 0 keeps nothing).
    pub cache_ttl: std::time::Duration,
    /// Where `/metrics` is served.
    pub metrics: MetricsSettings,
    /// How webhook deliveries are sent.
    pub webhooks: WebhookSettings,
    /// Where spans are exported over OTLP/HTTP (KILN_OTLP_ENDPOINT); none: no export.
    pub traces: Option<TraceExportSettings>,
}

impl std::fmt::Debug for Settings {
    // The bootstrap token must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database)
            .field("storage", &self.storage)
            .field("max_json_bytes", &self.max_json_bytes)
            .field("upload_session_ttl", &self.upload_session_ttl)
            .field("collection", &self.collection)
            .field(
                "bootstrap_token",
                &self.bootstrap_token.as_ref().map(|_| "<redacted>"),
            )
            .field("rate_limit_per_minute", &self.rate_limit_per_minute)
            .field("tls", &self.tls)
            .field("cache_ttl", &self.cache_ttl)
            .field("metrics", &self.metrics)
            .field("webhooks", &self.webhooks)
            .field("traces", &self.traces)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A setting that cannot be used: `KILN_LISTEN: "abc" is not host:port (e.g. 127.0.0.1:8080)`.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {problem}")]
pub struct ConfigError {
    pub setting: String,
    pub problem: String,
}

pub(crate) fn config_error(setting: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting: setting.to_owned(),
        problem: problem.into(),
    }
}

impl Settings {
    /// Reads `config_file` (if given, it must exist; else `./kiln.toml` when present) and the environment.
    pub fn load(config_file: Option<&Path>) -> Result<Self, ConfigError> {
        let raw = sources::read(config_file)?;
        Self::validate(raw, |name| std::env::var(name).ok())
    }

    fn validate(
        raw: RawSettings,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let listen_text = raw
            .listen
            .clone()
            .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
        let listen = listen_text.parse().map_err(|_| {
            config_error(
                "KILN_LISTEN",
                format!(
                    "{listen_text:?} is not an address and port (e.g. 127.0.0.1:8080 or [::]:8080)"
                ),
            )
        })?;
        let data_dir = raw
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("kiln-data"));
        if data_dir.as_os_str().is_empty() {
            return Err(config_error("KILN_DATA_DIR", "must not be empty"));
        }
        let database = match raw.database_url.as_deref() {
            None => DatabaseSettings::Sqlite {
                path: data_dir.join("kiln.db"),
            },
            Some(url) => parse_database_url(url)?,
        };
        let storage = match raw.storage_url.as_deref() {
            None => StorageSettings::Local {
                root: data_dir.join("store"),
            },
            Some(url) => parse_storage_url(url, &raw, &env)?,
        };
        let max_json_bytes = raw.max_json_bytes.unwrap_or(8 * 1024 * 1024);
        if !(1024..=256 * 1024 * 1024).contains(&max_json_bytes) {
            return Err(config_error(
                "KILN_MAX_JSON_BYTES",
                "must be between 1024 and 268435456",
            ));
        }
        let pipeline_workers = raw.pipeline_workers.unwrap_or(1);
        if pipeline_workers > 64 {
            return Err(config_error(
                "KILN_PIPELINE_WORKERS",
                "must be between 0 and 64",
            ));
        }
        let manifest_validity_secs = raw
            .manifest_validity_secs
            .unwrap_or(DEFAULT_MANIFEST_VALIDITY_DAYS * 86_400);
        if !(1..=10 * 365 * 86_400).contains(&manifest_validity_secs) {
            return Err(config_error(
                "KILN_MANIFEST_VALIDITY_SECS",
                "must be between 1 and 315360000 (ten years)",
            ));
        }
        let runner_lease_secs = raw.runner_lease_secs.unwrap_or(60);
        if !(2..=3600).contains(&runner_lease_secs) {
            return Err(config_error(
                "KILN_RUNNER_LEASE_SECS",
                "must be between 2 and 3600",
            ));
        }
        let step_memory_mb = raw.step_memory_mb.unwrap_or(8 * 1024);
        if !(256..=1 << 30).contains(&step_memory_mb) {
            return Err(config_error(
                "KILN_STEP_MEMORY_MB",
                "must be between 256 and 1073741824",
            ));
        }
        let streamed_variants_above_mb =
            raw.streamed_variants_above_mb.unwrap_or(step_memory_mb / 8);
        let step_time_secs = raw.step_time_secs.unwrap_or(3600);
        if !(1..=7 * 86_400).contains(&step_time_secs) {
            return Err(config_error(
                "KILN_STEP_TIME_SECS",
                "must be between 1 and 604800 (a week)",
            ));
        }
        let embedded_runner_threads = raw.embedded_runner_threads.unwrap_or(1);
        if !(1..=1024).contains(&embedded_runner_threads) {
            return Err(config_error(
                "KILN_EMBEDDED_RUNNER_THREADS",
                "must be between 1 and 1024",
            ));
        }
        if let Some(library) = &raw.onnxruntime_lib
            && !library.is_file()
        {
            return Err(config_error(
                "KILN_ONNXRUNTIME_LIB",
                format!(
                    "{} does not exist; run scripts/fetch-onnxruntime.sh and give the path it prints",
                    library.display()
                ),
            ));
        }
        let log_json = match raw.log_format.as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                return Err(config_error(
                    "KILN_LOG_FORMAT",
                    format!("{other:?} is not a log format: text or json"),
                ));
            }
        };
        let cors_allowed_origins = raw.cors_allowed_origins.clone().unwrap_or_default();
        if let Some(bad) = cors_allowed_origins.iter().find(|o| !is_origin(o)) {
            return Err(config_error(
                "KILN_CORS_ALLOWED_ORIGINS",
                format!(
                    "{bad:?} is not an origin: scheme://host[:port] without a path (e.g. https://ui.example.com), or * for any"
                ),
            ));
        }
        let public_url = match raw.public_url.as_deref().map(|u| u.trim_end_matches('/')) {
            None => None,
            Some(url)
                if (url.starts_with("https://") || url.starts_with("http://"))
                    && url
                        .split_once("://")
                        .is_some_and(|(_, rest)| !rest.is_empty())
                    && !url.contains(char::is_whitespace) =>
            {
                Some(url.to_owned())
            }
            Some(other) => {
                return Err(config_error(
                    "KILN_PUBLIC_URL",
                    format!("{other:?} is not an http(s) URL (e.g. https://kiln.example.com)"),
                ));
            }
        };
        let collection = collection::settings(
            raw.gc_grace_minutes,
            raw.gc_interval_minutes,
            raw.gc_lease_secs,
            raw.gc_batch_rows,
        )?;
        let ttl_hours = raw.upload_session_ttl_hours.unwrap_or(72);
        if ttl_hours == 0 {
            return Err(config_error(
                "KILN_UPLOAD_SESSION_TTL_HOURS",
                "must be at least 1",
            ));
        }
        if let Some(token) = &raw.bootstrap_token
            && (token.chars().count() < 32
                || token.chars().any(|c| c.is_whitespace() || c.is_control())
                || kiln_core::credential::is_jwt(token))
        {
            return Err(config_error(
                "KILN_BOOTSTRAP_TOKEN",
                "must have at least 32 characters, without spaces, and not look like a JWT",
            ));
        }
        let tls = match (&raw.tls_cert, &raw.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                for (setting, path) in [("KILN_TLS_CERT", cert), ("KILN_TLS_KEY", key)] {
                    if !path.is_file() {
                        return Err(config_error(
                            setting,
                            format!("{} is not a readable file", path.display()),
                        ));
                    }
                }
                Some(TlsSettings {
                    cert: cert.clone(),
                    key: key.clone(),
                })
            }
            (Some(_), None) => {
                return Err(config_error("KILN_TLS_KEY", "is needed with KILN_TLS_CERT"));
            }
            (None, Some(_)) => {
                return Err(config_error("KILN_TLS_CERT", "is needed with KILN_TLS_KEY"));
            }
        };
        let rate_limit_per_minute = raw.rate_limit_per_minute.unwrap_or(6000);
        if rate_limit_per_minute == 0 {
            return Err(config_error(
                "KILN_RATE_LIMIT_PER_MINUTE",
                "must be at least 1",
            ));
        }
        Ok(Settings {
            tls,
            pipeline_workers,
            manifest_keys_dir: raw
                .manifest_keys_dir
                .clone()
                .unwrap_or_else(|| data_dir.join("manifest-keys")),
            manifest_validity: std::time::Duration::from_secs(manifest_validity_secs),
            runner_lease: std::time::Duration::from_secs(runner_lease_secs),
            embedded_runner: raw.embedded_runner.unwrap_or(true),
            embedded_runner_threads,
            onnxruntime_lib: raw.onnxruntime_lib.clone(),
            step_memory_bytes: step_memory_mb * 1024 * 1024,
            streamed_variants_above_bytes: streamed_variants_above_mb.saturating_mul(1024 * 1024),
            step_time: std::time::Duration::from_secs(step_time_secs),
            server_executable: None,
            log_json,
            cors_allowed_origins,
            min_body_bytes_per_sec: raw.min_body_bytes_per_sec.unwrap_or(1024),
            public_url,
            bootstrap_token: raw.bootstrap_token.clone(),
            rate_limit_per_minute,
            listen,
            data_dir,
            database,
            storage,
            max_json_bytes: max_json_bytes as usize,
            upload_session_ttl: std::time::Duration::from_secs(ttl_hours * 3600),
            collection,
            cache_ttl: operations::cache_ttl(raw.cache_ttl_ms)?,
            metrics: operations::metrics(raw.metrics_listen.as_deref(), raw.metrics_token.clone())?,
            webhooks: operations::webhooks(
                raw.webhook_delivery,
                raw.webhook_allow_private_targets,
                raw.webhook_timeout_secs,
                raw.webhook_disable_after_failures,
            )?,
            traces: operations::traces(raw.otlp_endpoint.as_deref())?,
        })
    }
}

/// `*`, or what a browser sends in `Origin`: a scheme, a host and maybe a port, nothing more.
fn is_origin(value: &str) -> bool {
    if value == "*" {
        return true;
    }
    let Some((scheme, rest)) = value.split_once("://") else {
        return false;
    };
    matches!(scheme, "http" | "https")
        && !rest.is_empty()
        && !rest.contains(['/', '?', '#', '@', ' '])
}

#[cfg(test)]
mod tests;
