//! Prometheus metrics through the `metrics` facade. The recorder is global to the process (tests start
//! several servers in one; they share it), installed on first use; every server renders the same registry.
//!
//! Counters and histograms are recorded where things happen (the HTTP middleware, the pipeline's workers,
//! the store, webhook deliveries); gauges that describe the database's state (queue depth, runners,
//! manifests nearing expiry) are sampled when /metrics is scraped, so they cost nothing between scrapes.

use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "kiln_http_requests_total";
pub const HTTP_DURATION: &str = "kiln_http_request_duration_seconds";
pub const HTTP_BYTES_IN: &str = "kiln_http_request_body_bytes_total";
pub const HTTP_BYTES_OUT: &str = "kiln_http_response_body_bytes_total";
pub const HTTP_IN_FLIGHT: &str = "kiln_http_requests_in_flight";
pub const JOB_DURATION: &str = "kiln_pipeline_job_duration_seconds";
pub const JOBS: &str = "kiln_pipeline_jobs";
pub const QUEUE_DEPTH: &str = "kiln_pipeline_queue_depth";
pub const QUEUE_OLDEST: &str = "kiln_pipeline_queue_oldest_age_seconds";
pub const UPLOAD_SESSIONS: &str = "kiln_upload_sessions";
pub const RUNNERS: &str = "kiln_runners";
pub const MANIFESTS_EXPIRING: &str = "kiln_manifests_expiring";
pub const DB_POOL_CONNECTIONS: &str = "kiln_db_pool_connections";
pub const DB_POOL_IDLE: &str = "kiln_db_pool_idle_connections";
pub const DB_POOL_WAIT: &str = "kiln_db_pool_wait_seconds";
pub const STORE_DURATION: &str = "kiln_store_operation_duration_seconds";
pub const WEBHOOK_DELIVERIES: &str = "kiln_webhook_deliveries_total";
pub const WEBHOOK_DURATION: &str = "kiln_webhook_delivery_duration_seconds";
pub const WEBHOOK_OUTBOX: &str = "kiln_webhook_outbox_pending";
pub const REPLICAS: &str = "kiln_replicas_alive";

/// Latency buckets from half a millisecond (a cached read) to five minutes (a pipeline step, a large
/// object's copy).
const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often histogram samples are folded into their buckets when nothing scrapes sooner.
const UPKEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// The recorder keeps each histogram sample until an upkeep folds it into the buckets; a scrape does one,
/// but a server nobody scrapes would keep every request's samples for ever (the soak found its memory
/// growing by megabytes a minute). Runs on the caller's runtime.
pub fn spawn_upkeep() {
    actix_web::rt::spawn(async {
        let mut every = tokio::time::interval(UPKEEP);
        loop {
            every.tick().await;
            handle().run_upkeep();
        }
    });
}

/// The process's recorder, installed the first time. When another recorder was installed first (a program
/// embedding the server), kiln's metrics go to it and this handle renders an empty registry.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
            .expect("the bucket list is not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "another metrics recorder is installed; /metrics shows only kiln's gauges"
            );
        }
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its response's headers, by method and route template"
    );
    describe_counter!(
        HTTP_BYTES_IN,
        Unit::Bytes,
        "Request body bytes read, by route template"
    );
    describe_counter!(
        HTTP_BYTES_OUT,
        Unit::Bytes,
        "Response body bytes sent, by route template"
    );
    describe_gauge!(HTTP_IN_FLIGHT, "Requests being answered now");
    describe_histogram!(
        JOB_DURATION,
        Unit::Seconds,
        "Pipeline job run time on this server's workers and on runners, by kind and outcome"
    );
    describe_gauge!(
        JOBS,
        "Pipeline jobs in the database, by kind and state (every replica reports the same numbers)"
    );
    describe_gauge!(QUEUE_DEPTH, "Pipeline jobs waiting for a worker or runner");
    describe_gauge!(
        QUEUE_OLDEST,
        Unit::Seconds,
        "Age of the oldest queued pipeline job (0 when none waits)"
    );
    describe_gauge!(
        UPLOAD_SESSIONS,
        "Upload sessions in progress, by protocol (kiln, oci)"
    );
    describe_gauge!(
        RUNNERS,
        "Registered runners, by device kind and state (online: heartbeat within the lease)"
    );
    describe_gauge!(
        MANIFESTS_EXPIRING,
        "Current alias manifests whose validity ends within the window (label within: 1d, 7d, expired)"
    );
    describe_gauge!(DB_POOL_CONNECTIONS, "Database connections open in the pool");
    describe_gauge!(DB_POOL_IDLE, "Database connections idle in the pool");
    describe_histogram!(
        DB_POOL_WAIT,
        Unit::Seconds,
        "Time a database call waited for a pooled connection"
    );
    describe_histogram!(
        STORE_DURATION,
        Unit::Seconds,
        "Blob store operation time, by operation and outcome"
    );
    describe_counter!(
        WEBHOOK_DELIVERIES,
        "Webhook delivery attempts, by outcome (delivered, failed)"
    );
    describe_histogram!(
        WEBHOOK_DURATION,
        Unit::Seconds,
        "Webhook delivery attempt time, until the receiver's answer or the timeout"
    );
    describe_gauge!(
        REPLICAS,
        "kiln-server replicas sharing the database (heartbeats), among which the rate limit is divided"
    );
    describe_gauge!(
        WEBHOOK_OUTBOX,
        "Webhook deliveries waiting in the outbox (first tries and retries)"
    );
}

/// Records a blob store operation's time around `f`.
pub async fn timed_store<T, E>(
    operation: &'static str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let result = f.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    metrics::histogram!(STORE_DURATION, "operation" => operation, "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    result
}
