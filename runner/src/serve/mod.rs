//! `kiln-runner serve NS/MODEL@ALIAS`: calls to a registered model over the Open Inference Protocol
//! (KServe v2), REST and gRPC (docs/serving.md). The alias's signed manifest is verified before anything
//! is pulled; the variant's files are fetched by digest and loaded on an engine; requests are checked
//! against the variant's signature and batched dynamically; when the alias moves, the new manifest is
//! verified and the new variant loaded beside the old one before requests switch to it.

mod answer_compression;
mod batch_cost;
mod batch_probe;
pub mod batcher;
mod call_deadline;
mod classification;
mod client_pace;
mod compression;
mod config_labels;
mod connections;
mod decoded_size;
mod error;
mod follow;
mod grpc;
mod grpc_codec;
mod grpc_memory;
pub mod in_process;
mod json_non_finite;
mod json_values;
mod labels;
mod loader;
mod memory_limit;
pub mod metrics;
mod ort_run_options;
mod ort_strings;
pub mod registry;
mod report;
mod request_deadline;
mod request_memory;
mod rest;
mod rest_bounds;
mod rest_messages;
mod returned_memory;
mod run_watch;
pub mod session;
pub mod signature;
pub mod tensor;
mod webhook;

/// The protocol's gRPC messages, service and client, generated from `proto/grpc_predict_v2.proto`.
pub use grpc::inference;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use kiln_core::{ModelRef, Sha256Digest};
use tokio_util::sync::CancellationToken;

use batcher::Batcher;
pub use error::ServeError;
use signature::Signature;
use tensor::Tensor;

/// `--run-timeout-s`: 0, or at least a millisecond (a shorter one would stop every run).
fn run_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s == 0.0 || (0.001..=1e9).contains(&s) => Ok(s),
        _ => Err("a number of seconds from 0.001 to 1e9, or 0 for no limit".to_owned()),
    }
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// What to serve: NAMESPACE/MODEL@ALIAS (followed as the alias moves) or NAMESPACE/MODEL:VERSION
    #[arg(required_unless_present = "model_dir", conflicts_with = "model_dir")]
    pub reference: Option<ModelRef>,
    /// Serve the ONNX model in this folder instead, as KServe's storage initializer (kiln:// URIs, which
    /// verify the signed manifest) or an OCI model image puts it at /mnt/models; nothing is fetched
    #[arg(long, value_name = "DIR")]
    pub model_dir: Option<PathBuf>,
    /// The version reported for --model-dir
    #[arg(long, default_value = "1", requires = "model_dir")]
    pub model_version: String,
    /// The kiln server, e.g. http://127.0.0.1:8080
    #[arg(long, env = "KILN_SERVER", required_unless_present = "model_dir")]
    pub server: Option<String>,
    /// A token that may read the model (none for a public model)
    #[arg(long, env = "KILN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The variant to serve (`fp32`, `fp16`, `int8`, ...); default fp32, else onnx
    #[arg(long)]
    pub variant: Option<String>,
    /// `ort` (ONNX Runtime, from --onnxruntime-lib) or `kiln` (kiln's evaluator); default ort when its
    /// library is given, else kiln
    #[arg(long)]
    pub engine: Option<String>,
    /// `cpu`, or `cuda:N` with a CUDA build
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// ONNX Runtime's shared library: the path scripts/fetch-onnxruntime.sh prints
    #[arg(long, env = "KILN_ONNXRUNTIME_LIB", value_name = "PATH")]
    pub onnxruntime_lib: Option<PathBuf>,
    /// Where the REST API listens
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub http_listen: SocketAddr,
    /// Where the gRPC API listens
    #[arg(long, default_value = "0.0.0.0:8081")]
    pub grpc_listen: SocketAddr,
    /// The model's name in the protocol's paths (default: MODEL)
    #[arg(long)]
    pub name: Option<String>,
    /// Rows per dynamic batch at most (1: no batching)
    #[arg(long, default_value_t = 16)]
    pub max_batch_size: usize,
    /// How long a request waits for others to batch with, in microseconds (at most: an instance waits
    /// only while its batches show that more rows would be cheaper per row)
    #[arg(long, default_value_t = 1000)]
    pub batch_delay_us: u64,
    /// Requests that may wait; more are answered 503 (gRPC UNAVAILABLE)
    #[arg(long, default_value_t = 1024)]
    pub max_queue: usize,
    /// How long one engine run may take, in seconds: a run past it is stopped before its next operator,
    /// its requests answered 504 (gRPC DEADLINE_EXCEEDED) naming this flag, and the instance takes the
    /// next. A request's own deadline (gRPC's grpc-timeout; the protocol's `timeout` parameter, in
    /// microseconds) stops a run sooner once every request in it has passed its own, and a request whose
    /// client stopped waiting before its run began is not run. 0: no limit
    #[arg(long, default_value_t = 60.0, value_name = "SECONDS", value_parser = run_timeout)]
    pub run_timeout_s: f64,
    /// Sessions of the model that run batches side by side
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
    /// CPU threads per instance (default: the cores divided among the instances)
    #[arg(long)]
    pub threads: Option<usize>,
    /// Whether ONNX Runtime's threads spin while they wait for work (its default, and the fastest to
    /// wake); `false` gives their cores back while idle: for a container with a CPU limit, which counts
    /// the spinning against its quota
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "true|false")]
    pub intra_op_spinning: bool,
    /// How often the alias's manifest is polled (conditional requests: 304 while it has not moved)
    #[arg(long, default_value_t = 10.0)]
    pub poll_seconds: f64,
    /// A JWK Set (file or URL) to verify manifests with instead of the server's /.well-known/jwks.json
    #[arg(long)]
    pub jwks: Option<String>,
    /// Where fetched files are kept, by digest
    #[arg(long, default_value = "kiln-runner-cache")]
    pub cache: PathBuf,
    /// A token with the runner scope: this process then reports what it serves and where (`kiln show`,
    /// the web UI), every 30 s and after each switch
    #[arg(long, env = "KILN_RUNNER_TOKEN", hide_env_values = true)]
    pub runner_token: Option<String>,
    /// The addresses clients reach this process at, as reported (default: http:// and grpc:// of the
    /// listen addresses, with the host name for 0.0.0.0)
    #[arg(long, value_delimiter = ',')]
    pub advertise: Vec<String>,
    /// This process's name in the report (default: the host name)
    #[arg(long)]
    pub instance_name: Option<String>,
    /// Names the classes of an output for the classification extension (`score:index:label`): a file of
    /// one label a line, class 0 first. Repeatable. Without it, the classes of an ONNX-ML classifier's
    /// scores are named by the model itself, and a `transformers` classifier's by the `id2label` of the
    /// `config.json` that came with it
    #[arg(long, value_name = "OUTPUT=FILE")]
    pub labels: Vec<String>,
    /// The largest request body accepted, in MiB
    #[arg(long, default_value_t = 64)]
    pub max_request_mib: usize,
    /// The most memory the engine may hold on the CPU, in MiB (ONNX Runtime: the loaded models and their
    /// runs together; kiln's evaluator: the tensors of the instances' runs, an equal share each): a request
    /// that would need more is refused (400 naming this flag) and the process goes on serving. Default:
    /// five eighths of the memory available at start (the container's limit counted); 0: none
    #[arg(long, value_name = "MIB")]
    pub max_engine_memory_mib: Option<u64>,
    /// Keep the memory a large request grew the process into. By default a run that no other request
    /// waits for has ONNX Runtime's CPU arena free, once it is over, the regions no tensor holds, and the
    /// heaps' free pages go back to the system once no run has finished for a second: a runner that served
    /// one large request does not stay at its peak, at the cost of growing again for the next large one
    #[arg(long)]
    pub keep_engine_memory: bool,
    /// The most a run's outputs may hold together, in MiB, before they are copied out and encoded: a
    /// request whose answer would be larger is refused (400 naming this flag). Default: a sixteenth of the
    /// memory available at start; 0: none
    #[arg(long, value_name = "MIB")]
    pub max_response_mib: Option<u64>,
    /// The most memory the requests in flight may hold together, in MiB: their bodies as they arrive,
    /// their decoded inputs, outputs and answers until sent. A request that needs more than is free waits
    /// for it up to `--max-memory-wait-ms`, then is answered 503 (gRPC UNAVAILABLE), and when as many
    /// wait as would leave an eighth of the limit in unread gRPC frames (at least 16), at once; one that
    /// needs more than the whole limit is a 400 naming this flag. Default: a quarter of the memory
    /// available at start; 0: none
    #[arg(long, value_name = "MIB")]
    pub max_in_flight_mib: Option<u64>,
    /// How long a request whose body does not fit beside the requests in flight waits for room before it
    /// is answered 503 (gRPC UNAVAILABLE), in milliseconds; 0: at once
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub max_memory_wait_ms: u64,
    /// How long a client has to send a request's body, and to take its answer, before it is cut off and
    /// what its request holds is freed: a body too slow is answered 408 (gRPC DEADLINE_EXCEEDED), an
    /// answer too slow to be taken is dropped and its connection (gRPC: call) ended. Every
    /// --min-client-rate-kib KiB moved adds a second. A gRPC connection that begins no call within it is
    /// closed, as is any connection whose client takes nothing for twice as long. 0: no limit
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub client_timeout_s: f64,
    /// The rate a client sending a body or taking an answer must keep on average, past
    /// --client-timeout-s, in KiB a second
    #[arg(long, default_value_t = 256, value_name = "KIB")]
    pub min_client_rate_kib: u64,
    /// The most connections each front end (REST, gRPC) keeps open; more wait in the listen queue until
    /// one closes. Lowered to fit the limit on open files, which is raised to its hard limit at start; 0:
    /// as many as that limit allows. A gRPC connection that begins no call within --client-timeout-s is
    /// closed
    #[arg(long, default_value_t = 1024, value_name = "N")]
    pub max_connections: usize,
    /// How long a gRPC connection may stay open: past it the runner sends GOAWAY (HTTP/2's graceful
    /// close), lets the calls on it finish and closes it; a client's next call opens a new one. At least
    /// 1; 0: no limit
    #[arg(long, default_value_t = 600.0, value_name = "SECONDS")]
    pub max_connection_age_s: f64,
    /// When the served manifest expires before a fresh one arrives (the registry unreachable, or not
    /// re-signing): `keep` serving it, or `refuse` (not ready, inference 503) until a fresh one verifies
    #[arg(long, value_enum, default_value_t = WhenExpired::Keep)]
    pub when_expired: WhenExpired,
    /// The `whsec_` secret of a kiln webhook subscription to this model's `alias.moved` and
    /// `manifest.published` events, delivered to `POST /kiln/webhook` on the REST listener: a delivery
    /// that verifies makes the manifest be polled at once rather than at the next --poll-seconds
    #[arg(
        long,
        env = "KILN_SERVE_WEBHOOK_SECRET",
        hide_env_values = true,
        conflicts_with = "model_dir"
    )]
    pub webhook_secret: Option<String>,
}

/// What an expired manifest does to serving.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenExpired {
    /// Keep serving the version verified while it was valid (logged and visible in /metrics).
    Keep,
    /// Stop: not ready, and inference answers 503, until a manifest that verifies arrives.
    Refuse,
}

/// One loaded variant of one version, as served.
pub struct Served {
    /// `acme/resnet@production`, or `acme/resnet:3` for a fixed version.
    pub reference: String,
    pub version: String,
    pub variant: String,
    /// The variant's model file.
    pub sha256: Sha256Digest,
    /// Of the manifest it was loaded from.
    pub sequence: i64,
    pub payload_sha256: Sha256Digest,
    /// When that manifest expires; `None` for a model served from a folder (nothing was verified here).
    pub expires_at: Option<DateTime<Utc>>,
    pub signature: Arc<Signature>,
    /// Of the outputs whose classes have names: the classification extension answers `score:index:label`.
    pub labels: Arc<labels::ClassLabels>,
    pub batcher: Arc<Batcher>,
}

impl Served {
    /// When the manifest it was loaded from has expired, when it has.
    pub fn expired(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.expires_at.filter(|&at| at <= now)
    }

    /// Checks the inputs against this variant's signature and runs them; `deadline`: when the client
    /// stops waiting for the answer, if it said.
    pub async fn infer(
        &self,
        inputs: Vec<Tensor>,
        deadline: Option<Instant>,
    ) -> Result<Vec<Tensor>, ServeError> {
        let inputs = self.signature.check(inputs)?;
        self.batcher.infer(inputs, deadline).await
    }
}

/// What the REST and gRPC front ends share: the protocol name of the model and what is served now.
pub struct State {
    pub model_name: String,
    pub max_request_bytes: usize,
    /// What the requests in flight may hold together.
    pub request_memory: request_memory::RequestMemory,
    /// How fast clients must send bodies and take answers.
    pub client_pace: Option<client_pace::Pace>,
    /// The connections each front end keeps open.
    pub max_connections: usize,
    /// How long a gRPC connection may stay open (`connections::age`).
    pub max_connection_age: Option<Duration>,
    pub when_expired: WhenExpired,
    current: RwLock<Arc<Served>>,
}

impl State {
    fn new(
        model_name: String,
        args: &ServeArgs,
        loader: &loader::Loader,
        served: Arc<Served>,
    ) -> Self {
        Self {
            model_name,
            max_request_bytes: args.max_request_mib.saturating_mul(1024 * 1024),
            request_memory: loader.request_memory(),
            client_pace: client_pace::Pace::new(args.client_timeout_s, args.min_client_rate_kib),
            max_connections: connections::fit(args.max_connections),
            max_connection_age: connections::age(args.max_connection_age_s),
            when_expired: args.when_expired,
            current: RwLock::new(served),
        }
    }

    pub fn current(&self) -> Arc<Served> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serves `next` from now on; requests already queued for the old one finish on it.
    fn replace(&self, next: Arc<Served>) -> Arc<Served> {
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut current, next)
    }

    /// The served model, when `name` (and `version`, if given) names it.
    pub fn model(&self, name: &str, version: Option<&str>) -> Result<Arc<Served>, ServeError> {
        if name != self.model_name {
            return Err(ServeError::NotFound(format!(
                "no model {name:?} here: this server serves {:?}",
                self.model_name
            )));
        }
        let served = self.current();
        if self.when_expired == WhenExpired::Refuse
            && let Some(at) = served.expired(Utc::now())
        {
            return Err(ServeError::Unavailable(format!(
                "the signed manifest of {} version {} expired at {} and no fresh one has arrived from the registry; not serving it (--when-expired refuse)",
                served.reference,
                served.version,
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )));
        }
        match version {
            Some(v) if !v.is_empty() && v != served.version => Err(ServeError::NotFound(format!(
                "model {name:?} has no version {v:?} here: it serves version {}",
                served.version
            ))),
            _ => Ok(served),
        }
    }
}

/// Serves until interrupted (Ctrl-C or SIGTERM); the message says what went wrong when it cannot start.
pub async fn run(args: ServeArgs, threads: usize) -> Result<(), String> {
    let handle = metrics::handle();
    if !args.keep_engine_memory {
        returned_memory::trim_when_quiet();
    }
    let loader = loader::Loader::new(&args, threads)?;
    let (served, following) = match (&args.reference, &args.model_dir, &args.server) {
        (Some(subject), None, Some(server)) => {
            let registry = registry::Registry::new(server, args.token.clone(), args.jwks.clone())?;
            let fetched = registry
                .manifest(subject, None)
                .await
                .map_err(|e| e.to_string())?
                .ok_or("the server answered 304 to a request without If-None-Match")?;
            let etag = fetched.etag.clone();
            let served = loader
                .load(&registry, subject, fetched)
                .await
                .map_err(|e| e.to_string())?;
            (served, Some((registry, subject.clone(), etag)))
        }
        (None, Some(dir), _) => (loader.load_folder(dir, &args.model_version).await?, None),
        _ => {
            return Err(
                "give NAMESPACE/MODEL@ALIAS with --server URL, or --model-dir DIR".to_owned(),
            );
        }
    };
    let served = Arc::new(served);
    metrics::serving(&served, None);
    let model_name = match (&args.name, &args.reference) {
        (Some(name), _) => name.clone(),
        (None, Some(subject)) => subject
            .model
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
        (None, None) => "model".to_owned(),
    };
    let state = Arc::new(State::new(model_name, &args, &loader, served.clone()));
    let stop = CancellationToken::new();
    let poll_now = Arc::new(tokio::sync::Notify::new());
    let webhooks = match (&args.webhook_secret, &following) {
        (Some(secret), Some((_, subject, _))) => Some(webhook::Listener::new(
            secret,
            subject.clone(),
            poll_now.clone(),
        )?),
        _ => None,
    };
    let http = rest::start(state.clone(), handle, webhooks, args.http_listen)
        .map_err(|e| format!("cannot listen on {} (--http-listen): {e}", args.http_listen))?;
    let grpc_listener = tokio::net::TcpListener::bind(args.grpc_listen)
        .await
        .map_err(|e| format!("cannot listen on {} (--grpc-listen): {e}", args.grpc_listen))?;
    let grpc_addr = grpc_listener.local_addr().map_err(|e| e.to_string())?;
    let mut grpc = tokio::spawn(grpc::serve(state.clone(), grpc_listener, stop.clone()));
    println!(
        "serving {} version {} variant {} ({}) as {:?} on http://{} (REST) and {} (gRPC)",
        served.reference,
        served.version,
        served.variant,
        served.sha256,
        state.model_name,
        http.address,
        grpc_addr
    );
    if let Some(bytes) = loader.memory_limit() {
        tracing::info!(
            mib = bytes >> 20,
            "the engine holds at most this much memory; larger requests are refused (--max-engine-memory-mib)"
        );
    }
    if let Some(bytes) = loader.response_limit() {
        tracing::info!(
            mib = bytes >> 20,
            "a run's outputs hold at most this much; larger answers are refused (--max-response-mib)"
        );
    }
    if let Some(bytes) = loader.in_flight_limit() {
        tracing::info!(
            mib = bytes >> 20,
            "the requests in flight hold at most this much together; more wait, then are refused (--max-in-flight-mib)"
        );
    }
    let reporting = match (&args.runner_token, &following, &args.server) {
        (Some(token), Some((_, subject, _)), Some(server)) => {
            let host = |addr: SocketAddr| {
                if addr.ip().is_unspecified() {
                    format!("{}:{}", crate::process::host_name(), addr.port())
                } else {
                    addr.to_string()
                }
            };
            let endpoints = if args.advertise.is_empty() {
                vec![
                    format!("http://{}", host(http.address)),
                    format!("grpc://{}", host(grpc_addr)),
                ]
            } else {
                args.advertise.clone()
            };
            let reporter = report::Reporter {
                http: reqwest::Client::new(),
                url: format!(
                    "{}/api/v1/servings/{}",
                    server.trim_end_matches('/'),
                    report::serving_id()
                ),
                token: token.clone(),
                subject: subject.clone(),
                name: args
                    .instance_name
                    .clone()
                    .unwrap_or_else(crate::process::host_name),
                engine: loader.engine_name().to_owned(),
                device: loader.device().to_owned(),
                endpoints,
            };
            Some(tokio::spawn(reporter.run(state.clone(), stop.clone())))
        }
        _ => None,
    };
    // A fixed version is followed too: its manifest is re-signed before it expires.
    if let Some((registry, subject, etag)) = following {
        let follower = follow::Follower {
            state: state.clone(),
            loader,
            registry,
            subject,
            interval: Duration::from_secs_f64(args.poll_seconds.max(0.05)),
            poll_now,
        };
        tokio::spawn(follower.run(etag, stop.clone()));
    }
    shutdown_signal().await;
    tracing::info!("stopping: finishing the requests in flight");
    stop.cancel();
    let (_, finished) = tokio::join!(
        http.handle.stop(true),
        tokio::time::timeout(SHUTDOWN_GRACE, &mut grpc)
    );
    if finished.is_err() {
        tracing::warn!(
            "gRPC connections still open {} s after the stop was asked (a call still running, or a \
             client that did not answer the GOAWAY); closing them",
            SHUTDOWN_GRACE.as_secs()
        );
        grpc.abort();
    }
    if let Some(reporting) = reporting {
        let _ = reporting.await;
    }
    Ok(())
}

/// How long a stop waits for the requests in flight and the connections they came on (REST's and
/// gRPC's alike): a gRPC client that does not acknowledge the GOAWAY's ping kept the process waiting for
/// HTTP/2's keepalive to give up on it, 80 s. Within Kubernetes' default 30 s before it kills the pod, so
/// that the runner ends on its own terms (its requests answered or cut, its logs flushed).
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
