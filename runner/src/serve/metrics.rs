//! `/metrics` of `kiln-runner serve` (Prometheus text): requests by protocol and outcome, their latency and
//! how much of it was waiting in the queue and running on the engine (as Triton's queue and compute
//! durations split it), the batch sizes the dynamic batcher formed, the queue's depth, the version being
//! served and the manifests refused while following an alias. The requests', the queue's and the engine's
//! series carry the version that took the request or whose queue and instances they measure (as Triton's
//! carry model and version): across a switch the old version's last requests and the new one's first are
//! told apart.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Counter, Gauge, Histogram, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const REQUESTS: &str = "kiln_serve_requests_total";
const REQUEST_SECONDS: &str = "kiln_serve_request_duration_seconds";
const QUEUE_SECONDS: &str = "kiln_serve_queue_duration_seconds";
const COMPUTE_SECONDS: &str = "kiln_serve_compute_duration_seconds";
const BATCH_ROWS: &str = "kiln_serve_batch_size";
const QUEUE_DEPTH: &str = "kiln_serve_queue_depth";
const ABANDONED: &str = "kiln_serve_requests_abandoned_total";
const RUNS_STOPPED: &str = "kiln_serve_runs_stopped_total";
const IN_FLIGHT_BYTES: &str = "kiln_serve_in_flight_bytes";
const MEMORY_WAITS: &str = "kiln_serve_memory_waits_total";
const CLIENT_TIMEOUTS: &str = "kiln_serve_client_timeouts_total";
const CONNECTIONS: &str = "kiln_serve_connections";
const MODEL_INFO: &str = "kiln_serve_model_info";
const MANIFEST_SEQUENCE: &str = "kiln_serve_manifest_sequence";
const MANIFEST_EXPIRY: &str = "kiln_serve_manifest_expiry_timestamp_seconds";
const MANIFESTS_REFUSED: &str = "kiln_serve_manifests_refused_total";
const SWITCHES: &str = "kiln_serve_version_switches_total";
const WEBHOOKS: &str = "kiln_serve_webhook_deliveries_total";

const SECONDS_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0,
];
/// Waiting and engine runs are often well under a millisecond on the CPU: finer at the low end.
const STAGE_SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
    10.0,
];
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The recorder, installed the first time.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(REQUEST_SECONDS.to_owned()), SECONDS_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(BATCH_ROWS.to_owned()), BATCH_BUCKETS))
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(QUEUE_SECONDS.to_owned()), STAGE_SECONDS_BUCKETS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(COMPUTE_SECONDS.to_owned()), STAGE_SECONDS_BUCKETS)
            })
            .expect("the bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics shows nothing");
        }
        describe_counter!(REQUESTS, "Inference requests, by protocol (rest, grpc) and outcome (ok, bad_request, not_found, unavailable, error)");
        describe_histogram!(REQUEST_SECONDS, "Inference request latency from arrival to answer, by protocol");
        describe_histogram!(QUEUE_SECONDS, "Time each request waited from its arrival in the queue until its batch started on the engine");
        describe_histogram!(COMPUTE_SECONDS, "Time the engine took for each batch (or lone request) it ran");
        describe_histogram!(BATCH_ROWS, "Rows in each batch the dynamic batcher ran");
        describe_gauge!(QUEUE_DEPTH, "Requests waiting for an instance");
        describe_counter!(ABANDONED, "Requests not run because their client stopped waiting before an instance took them: its deadline passed (grpc-timeout, the timeout parameter) or it went away");
        describe_counter!(RUNS_STOPPED, "Engine runs stopped before they finished, by reason: run_timeout (--run-timeout-s), deadline (every request of the run had passed its own) or clients_gone (every client of the run went: a connection closed, a call cancelled)");
        describe_counter!(MEMORY_WAITS, "Requests whose body waited for the requests in flight to free memory (--max-in-flight-mib); those still waiting after 5 s are answered 503 (one that finds as many waiting as may is answered 503 at once, not counted here)");
        describe_counter!(CLIENT_TIMEOUTS, "Clients cut off for sending a request's body (transfer=request: 408, DEADLINE_EXCEEDED) or taking its answer (transfer=answer: dropped) slower than --client-timeout-s and --min-client-rate-kib allow");
        describe_gauge!(CONNECTIONS, "Connections open, by protocol (rest, grpc; at most --max-connections each)");
        describe_gauge!(IN_FLIGHT_BYTES, "Memory the requests in flight hold: bodies received, inputs decoded, outputs and answers not yet sent (at most --max-in-flight-mib)");
        describe_gauge!(MODEL_INFO, "1 for the version and variant being served");
        describe_gauge!(MANIFEST_SEQUENCE, "The sequence of the signed manifest being served");
        describe_gauge!(MANIFEST_EXPIRY, "When the signed manifest being served expires (Unix time); alert when it comes near while the registry is unreachable");
        describe_counter!(MANIFESTS_REFUSED, "Manifests refused while following the alias (failed verification, a rollback, a variant that would not load)");
        describe_counter!(SWITCHES, "Switches to a new version after the alias moved");
        describe_counter!(WEBHOOKS, "Webhook deliveries by outcome: poll_now (about the model served), ignored (verified, about something else), refused (did not verify), bad_request");
        handle
    })
}

/// One inference request's outcome and time; `version` is the version that took it, `None` for a request
/// refused before one was chosen (an unknown model, a gRPC message refused while it is read), which
/// Prometheus shows with an empty `version`.
pub fn request(
    protocol: &'static str,
    outcome: &'static str,
    version: Option<String>,
    took: Duration,
) {
    let version = version.unwrap_or_default();
    counter!(REQUESTS, "protocol" => protocol, "outcome" => outcome, "version" => version.clone())
        .increment(1);
    histogram!(REQUEST_SECONDS, "protocol" => protocol, "version" => version)
        .record(took.as_secs_f64());
}

/// The series of one served version's queue and instances, registered once when its batcher starts (a
/// request's recording then looks nothing up).
#[derive(Clone)]
pub struct VersionMetrics {
    queued: Histogram,
    computed: Histogram,
    batch_rows: Histogram,
    queue_depth: Gauge,
    abandoned: Counter,
    version: String,
}

impl VersionMetrics {
    pub fn new(version: &str) -> Self {
        // Handles registered before the recorder is installed would record nowhere.
        handle();
        let label = [("version", version.to_owned())];
        Self {
            queued: histogram!(QUEUE_SECONDS, &label),
            computed: histogram!(COMPUTE_SECONDS, &label),
            batch_rows: histogram!(BATCH_ROWS, &label),
            queue_depth: gauge!(QUEUE_DEPTH, &label),
            abandoned: counter!(ABANDONED, &label),
            version: version.to_owned(),
        }
    }

    /// A request whose client no longer awaited it was not run.
    pub fn abandoned(&self) {
        self.abandoned.increment(1);
    }

    /// A run was stopped for `reason` (rare: its series is looked up then).
    pub fn run_stopped(&self, reason: &'static str) {
        counter!(RUNS_STOPPED, "version" => self.version.clone(), "reason" => reason).increment(1);
    }

    pub fn queued(&self, waited: Duration) {
        self.queued.record(waited.as_secs_f64());
    }

    pub fn computed(&self, took: Duration) {
        self.computed.record(took.as_secs_f64());
    }

    pub fn batch_size(&self, rows: usize) {
        self.batch_rows.record(rows as f64);
    }

    pub fn queue_depth(&self, depth: usize) {
        self.queue_depth.set(depth as f64);
    }
}

/// What the requests in flight hold, in bytes (`request_memory`).
pub fn in_flight_bytes() -> Gauge {
    gauge!(IN_FLIGHT_BYTES)
}

/// The connections open over `protocol` (`connections`).
pub fn connections(protocol: &'static str) -> Gauge {
    gauge!(CONNECTIONS, "protocol" => protocol)
}

/// A request's body waited for memory to be freed.
pub fn waited_for_memory() {
    counter!(MEMORY_WAITS).increment(1);
}

/// A client was cut off for sending its body (`transfer` "request") or taking its answer ("answer") too
/// slowly (`client_pace`).
pub fn client_too_slow(transfer: &'static str) {
    counter!(CLIENT_TIMEOUTS, "transfer" => transfer).increment(1);
}

/// Marks `served` as the version being served and `previous` (if any) as no longer.
pub fn serving(served: &super::Served, previous: Option<&super::Served>) {
    let labels = |s: &super::Served| {
        [
            ("model", s.reference.clone()),
            ("version", s.version.clone()),
            ("variant", s.variant.clone()),
            ("sha256", s.sha256.to_string()),
        ]
    };
    if let Some(previous) = previous.filter(|p| p.sha256 != served.sha256) {
        gauge!(MODEL_INFO, &labels(previous)).set(0.0);
        counter!(SWITCHES).increment(1);
    }
    gauge!(MODEL_INFO, &labels(served)).set(1.0);
    gauge!(MANIFEST_SEQUENCE).set(served.sequence as f64);
    if let Some(at) = served.expires_at {
        gauge!(MANIFEST_EXPIRY).set(at.timestamp() as f64);
    }
}

pub fn manifest_refused() {
    counter!(MANIFESTS_REFUSED).increment(1);
}

pub fn webhook(outcome: &'static str) {
    counter!(WEBHOOKS, "outcome" => outcome).increment(1);
}
