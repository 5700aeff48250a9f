//! Assembling the server: settings → database, store, services → HTTP server on a bound socket, and the
//! background work beside it (pipeline workers, the embedded runner, periodic housekeeping).

pub mod allocator;
pub mod embedded_runner;
mod previous_run;

use std::net::{SocketAddr, TcpListener};

use actix_web::dev::{Server, Service};
use actix_web::http::header::{HeaderName, HeaderValue};
use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{App, HttpMessage, HttpServer, web};
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::jwt::JwtKeys;
use crate::auth::rate_limit::RateLimiter;
use crate::config::{DatabaseSettings, Settings, TlsSettings};
use crate::db::Database;
use crate::error::Error;
use crate::manifest::ManifestSigner;
use crate::pipeline::{JobContext, PipelineQueue, StepLimits};
use crate::services::upload_claims::Claimant;
use crate::services::{Foundations, Services};
use crate::storage::BlobStore;

pub struct Application {
    server: Server,
    address: SocketAddr,
    pub services: Services,
    db: Database,
    store: BlobStore,
    workers_stop: tokio_util::sync::CancellationToken,
    /// This process's row among the replicas, and its run's name.
    replica: String,
    /// Held while the server runs: the next run on its data directory knows this one ended.
    _run_lock: Option<previous_run::RunLock>,
}

/// Lets go of the upload claims of the run that used `data_dir` before, when it has ended (see
/// [`previous_run`]); the lock to hold for as long as this run serves.
async fn let_go_of_ended_run(
    services: &Services,
    data_dir: &std::path::Path,
    run: &str,
) -> Result<Option<previous_run::RunLock>, Error> {
    let taken = previous_run::take_over(data_dir, run);
    if let Some(ended) = &taken.ended {
        let sessions = services.uploads.let_go_of_claims_of(ended).await?;
        let oci = services.oci.let_go_of_claims_of(ended).await?;
        if sessions + oci > 0 {
            tracing::info!(
                run = %ended,
                upload_sessions = sessions,
                oci_uploads = oci,
                "let go of the upload claims the last run on this data directory held when it ended"
            );
        }
    }
    Ok(taken.lock)
}

impl Application {
    /// Connects to the database (running migrations) and the store, and binds the listening socket.
    pub async fn build(settings: Settings) -> Result<Self, Error> {
        if let DatabaseSettings::Sqlite { path } = &settings.database
            && let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|e| {
                Error::Startup(format!(
                    "KILN_DATA_DIR: cannot create {}: {e}",
                    parent.display()
                ))
            })?;
        }
        let database_settings = settings.database.clone();
        let db =
            tokio::task::spawn_blocking(move || Database::connect(&database_settings)).await??;
        let store = BlobStore::open(&settings.storage)?;
        let signer = Arc::new(
            ManifestSigner::open(&settings.manifest_keys_dir)?
                .with_validity(settings.manifest_validity)
                .with_issuer(settings.public_url.clone()),
        );
        let queue = PipelineQueue::default();
        // The embedded runner's own door: plain HTTP on loopback, whatever the public listener is, and the
        // only listener its credential is good on.
        let runner_door = if settings.embedded_runner {
            let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| {
                Error::Startup(format!(
                    "cannot open the embedded runner's loopback listener: {e}"
                ))
            })?;
            let address = listener.local_addr()?;
            Some((
                listener,
                address,
                crate::auth::credentials::generate_token(),
            ))
        } else {
            None
        };
        let replica = format!("replica-{}", uuid::Uuid::new_v4().simple());
        let services = Services::new(Foundations {
            db: db.clone(),
            store: store.clone(),
            jwt: Arc::new(JwtKeys::open(db.clone()).await?),
            rate_limiter: Arc::new(RateLimiter::new(settings.rate_limit_per_minute)),
            manifest_signer: signer.clone(),
            pipeline: queue.clone(),
            runner_lease: settings.runner_lease,
            collection: settings.collection.clone(),
            upload_ttl: settings.upload_session_ttl,
            embedded_runner: runner_door
                .as_ref()
                .map(|(_, address, secret)| (secret.clone(), *address)),
            webhooks: settings.webhooks.clone(),
            cache_ttl: settings.cache_ttl,
            claimant: Claimant::new(&replica),
        });
        announce_bootstrap(
            services
                .accounts
                .bootstrap(settings.bootstrap_token.clone())
                .await?,
            &settings,
        );
        let listener = TcpListener::bind(settings.listen).map_err(|e| {
            Error::Startup(format!(
                "KILN_LISTEN: cannot listen on {}: {e}",
                settings.listen
            ))
        })?;
        let address = listener.local_addr()?;
        // After the bind: a copy started by mistake with a running server's settings stops there.
        let run_lock = let_go_of_ended_run(&services, &settings.data_dir, &replica).await?;
        let tls = settings.tls.as_ref().map(tls_config).transpose()?;
        let (runner_listener, runner_access) = match runner_door {
            Some((listener, address, secret)) => {
                (Some(listener), Some((format!("http://{address}"), secret)))
            }
            None => (None, None),
        };
        let listeners = Listeners {
            public: listener,
            tls,
            runner: runner_listener,
        };
        // Installed before the first request, so every request is counted.
        crate::telemetry::metrics::handle();
        crate::telemetry::metrics::spawn_upkeep();
        let server = http_server(
            listeners,
            services.clone(),
            settings.max_json_bytes,
            settings.cors_allowed_origins.clone(),
            settings.min_body_bytes_per_sec,
            settings.metrics.token.clone(),
        )?;
        if let Some(address) = settings.metrics.listen {
            spawn_metrics_listener(address, services.clone())?;
        }
        spawn_upload_reaper(
            services.clone(),
            settings.upload_session_ttl,
            replica.clone(),
        );
        if let Some(every) = services.lifecycle.schedule() {
            spawn_collector(services.clone(), every);
        }
        spawn_manifest_refresher(services.clone(), replica.clone());
        spawn_replica_heartbeat(services.clone(), replica.clone()).await;
        if settings.webhooks.deliver {
            spawn_webhook_deliverer(
                crate::services::webhooks::delivery::Deliverer::new(
                    db.clone(),
                    settings.webhooks.clone(),
                )?,
                settings.webhooks.poll,
            );
        }
        let workers_stop = tokio_util::sync::CancellationToken::new();
        crate::pipeline::spawn_workers(
            JobContext {
                db: db.clone(),
                store: store.clone(),
                signer,
                runner_lease: settings.runner_lease,
                step_limits: step_limits(&settings)?,
            },
            crate::pipeline::registry(),
            queue,
            settings.pipeline_workers,
            workers_stop.clone(),
        );
        if let Some((url, secret)) = runner_access {
            embedded_runner::supervise(
                embedded_runner::EmbeddedRunner {
                    executable: server_executable(&settings)?,
                    url,
                    secret,
                    cache: settings.data_dir.join("runner-cache"),
                    threads: settings.embedded_runner_threads,
                    onnxruntime_lib: settings.onnxruntime_lib.clone(),
                    log_json: settings.log_json,
                },
                workers_stop.clone(),
            );
        }
        tracing::info!(%address, storage = store.describe(), "kiln-server listening");
        Ok(Self {
            server,
            address,
            services,
            db,
            store,
            workers_stop,
            replica,
            _run_lock: run_lock,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The database the server runs on (tests and maintenance commands reach it here, not through the
    /// services).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// The blob store the server runs on.
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    pub async fn run(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.workers_stop.cancel();
        if let Err(e) = self.services.access.leave(self.replica).await {
            tracing::warn!(error = %e.chain(), "could not leave the replicas");
        }
        result
    }

    /// A handle to stop the server (tests).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}

/// Child processes (pipeline steps, the embedded runner) run this very binary, or the one the settings
/// name.
fn server_executable(settings: &Settings) -> Result<std::path::PathBuf, Error> {
    match &settings.server_executable {
        Some(path) => Ok(path.clone()),
        None => std::env::current_exe().map_err(|e| {
            Error::Startup(format!(
                "cannot find this program's path to run its child processes: {e}"
            ))
        }),
    }
}

fn step_limits(settings: &Settings) -> Result<StepLimits, Error> {
    Ok(StepLimits {
        executable: server_executable(settings)?,
        memory_bytes: settings.step_memory_bytes,
        time: settings.step_time,
        streamed_above_bytes: settings.streamed_variants_above_bytes,
    })
}

/// Where the server answers: the public listener (TLS when configured), and the embedded runner's
/// loopback one.
struct Listeners {
    public: TcpListener,
    tls: Option<rustls::ServerConfig>,
    runner: Option<TcpListener>,
}

/// The first start of a registry prints its administrator's token, once; it is stored only as a hash.
fn announce_bootstrap(token: Option<String>, settings: &Settings) {
    match token {
        None => {}
        Some(_) if settings.bootstrap_token.is_some() => {
            println!(
                "kiln: created the administrator \"admin\" with the API token from KILN_BOOTSTRAP_TOKEN"
            );
        }
        Some(token) => {
            println!(
                "kiln: created the administrator \"admin\". Its API token, shown only this once:\n\n    {token}\n\n\
                 Sign in with:  kiln login --token {token}"
            );
        }
    }
}

/// rustls with the aws-lc-rs provider, TLS 1.2 and 1.3, from PEM files.
fn tls_config(tls: &TlsSettings) -> Result<rustls::ServerConfig, Error> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::Startup(format!(
                "KILN_TLS_CERT: cannot read {}: {e}",
                tls.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Startup(format!(
            "KILN_TLS_CERT: {} holds no certificate",
            tls.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| {
        Error::Startup(format!(
            "KILN_TLS_KEY: cannot read {}: {e}",
            tls.key.display()
        ))
    })?;
    rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Startup(format!("TLS: {e}")))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| Error::Startup(format!("KILN_TLS_KEY: does not fit KILN_TLS_CERT: {e}")))
}

fn http_server(
    listeners: Listeners,
    services: Services,
    max_json_bytes: usize,
    cors_allowed_origins: Vec<String>,
    min_body_bytes_per_sec: u64,
    metrics_token: Option<String>,
) -> Result<Server, Error> {
    let server = HttpServer::new(move || {
        let (json, path, query) = crate::http::extractor_configs(max_json_bytes);
        App::new()
            .into_utoipa_app()
            .openapi(crate::http::base_openapi())
            .configure(crate::http::routes)
            .app_data(web::Data::new(services.clone()))
            .app_data(json)
            .app_data(path)
            .app_data(query)
            .app_data(web::Data::new(crate::http::body_rate::MinBodyRate(
                min_body_bytes_per_sec,
            )))
            .app_data(web::Data::new(crate::http::metrics::MetricsAccess::Token(
                metrics_token.clone(),
            )))
            .map(|app| {
                app.wrap(from_fn(crate::http::body_rate::enforce))
                    .wrap(from_fn(crate::http::authorize::authorize))
                    .wrap_fn(|req, srv| {
                        let request_id =
                            req.extensions().get::<RequestId>().map(|id| id.to_string());
                        let response = srv.call(req);
                        async move {
                            let mut response = response.await?;
                            if let Some(id) =
                                request_id.and_then(|id| HeaderValue::from_str(&id).ok())
                            {
                                response
                                    .headers_mut()
                                    .insert(HeaderName::from_static("x-request-id"), id);
                            }
                            Ok(response)
                        }
                    })
                    .wrap(from_fn(crate::http::head::answer_head_as_get))
                    .wrap(crate::http::cors::policy(&cors_allowed_origins))
                    .wrap(from_fn(crate::http::request_metrics::record))
                    .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
            })
            .openapi_service(|api| {
                SwaggerUi::new("/swagger-ui/{_:.*}")
                    .url("/api-docs/openapi.json", crate::http::finish_openapi(api))
            })
            .into_app()
            .configure(crate::http::ui::routes)
            .configure(crate::http::oci::routes)
            .configure(crate::http::metrics::routes)
            .default_service(web::to(|req: actix_web::HttpRequest| async move {
                // A route that exists, asked with a method it does not take (the /api/v1 routes are
                // answered by the access rules; these are the GET-only service routes: health, keys,
                // the OpenAPI document and its browser).
                if req.resource_map().match_pattern(req.path()).is_some() {
                    return Err::<actix_web::HttpResponse, _>(Error::MethodNotAllowed {
                        method: req.method().to_string(),
                        allowed: vec!["GET", "HEAD"],
                    });
                }
                Err(Error::not_found("route"))
            }))
    });
    let mut server = match listeners.tls {
        Some(config) => server.listen_rustls_0_23(listeners.public, config)?,
        None => server.listen(listeners.public)?,
    };
    if let Some(runner) = listeners.runner {
        server = server.listen(runner)?;
    }
    Ok(server.run())
}

/// `/metrics` alone on a listener of its own (KILN_METRICS_LISTEN), for a scraper on a private network.
fn spawn_metrics_listener(address: SocketAddr, services: Services) -> Result<(), Error> {
    let listener = TcpListener::bind(address).map_err(|e| {
        Error::Startup(format!(
            "KILN_METRICS_LISTEN: cannot listen on {address}: {e}"
        ))
    })?;
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(services.clone()))
            .app_data(web::Data::new(crate::http::metrics::MetricsAccess::Open))
            .configure(crate::http::metrics::routes)
    })
    .workers(1)
    .listen(listener)?
    .run();
    tracing::info!(%address, "metrics listening");
    actix_web::rt::spawn(server);
    Ok(())
}

/// Every sixth of the validity, at most hourly (and once at start): re-sign manifests nearing expiry, so
/// deployments of an alias that has not moved do not freeze.
fn spawn_manifest_refresher(services: Services, replica: String) {
    // A sixth of the validity (at most hourly), so a manifest is re-issued before its last third runs out.
    let every = (services.manifests.validity().to_std().unwrap_or_default() / 6).clamp(
        std::time::Duration::from_secs(1),
        std::time::Duration::from_secs(3600),
    );
    actix_web::rt::spawn(async move {
        let mut interval = tokio::time::interval(every);
        loop {
            interval.tick().await;
            if !my_turn(&services, "manifest-refresh", &replica, every).await {
                continue;
            }
            match services.runners.fail_orphaned().await {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(jobs = n, "failed benchmark jobs no runner is left to claim")
                }
                Err(e) => {
                    tracing::warn!(error = %e.chain(), "failing orphaned benchmark jobs failed")
                }
            }
            match services
                .manifests
                .refresh_expiring(chrono::Utc::now())
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(manifests = n, "re-issued manifests nearing expiry"),
                Err(e) => {
                    tracing::warn!(error = %e.chain(), "re-issuing manifests nearing expiry failed")
                }
            }
        }
    });
}

/// Whether this replica runs `task` this period: one replica at a time holds its lease.
async fn my_turn(
    services: &Services,
    task: &str,
    replica: &str,
    period: std::time::Duration,
) -> bool {
    match services.schedule.take_turn(task, replica, period).await {
        Ok(mine) => mine,
        Err(e) => {
            tracing::warn!(task, error = %e.chain(), "cannot take the task's turn");
            false
        }
    }
}

/// Garbage collection on a schedule: retention rules, then a sweep. Every replica tries; the lease lets
/// one run at a time. The first run waits one interval (a restart loop must not collect on each start).
fn spawn_collector(services: Services, every: std::time::Duration) {
    actix_web::rt::spawn(async move {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            interval.tick().await;
            match services.lifecycle.scheduled_run().await {
                Ok(Some(_)) | Ok(None) => {}
                Err(e) => tracing::warn!(error = %e.chain(), "scheduled garbage collection failed"),
            }
        }
    });
}

/// This replica's heartbeat, every 2 s (the first before the server answers): the replicas alive share
/// the rate limit. A replica silent for 10 s counts as gone.
async fn spawn_replica_heartbeat(services: Services, id: String) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(2);
    let alive_for = chrono::Duration::seconds(10);
    if let Err(e) = services.access.heartbeat(id.clone(), alive_for).await {
        tracing::warn!(error = %e.chain(), "replica heartbeat failed");
    }
    actix_web::rt::spawn(async move {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
        loop {
            interval.tick().await;
            if let Err(e) = services.access.heartbeat(id.clone(), alive_for).await {
                tracing::warn!(error = %e.chain(), "replica heartbeat failed");
            }
        }
    });
}

/// Webhook deliveries: every replica sends what is due (each try claimed by one), looking again at once
/// while there is more.
fn spawn_webhook_deliverer(
    deliverer: crate::services::webhooks::delivery::Deliverer,
    every: std::time::Duration,
) {
    actix_web::rt::spawn(async move {
        loop {
            match deliverer.deliver_due().await {
                Ok(0) => tokio::time::sleep(every).await,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e.chain(), "sending webhook deliveries failed");
                    tokio::time::sleep(every).await;
                }
            }
        }
    });
}

fn spawn_upload_reaper(services: Services, ttl: std::time::Duration, replica: String) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
    actix_web::rt::spawn(async move {
        let mut interval = tokio::time::interval(EVERY);
        loop {
            interval.tick().await;
            if !my_turn(&services, "upload-reaper", &replica, EVERY).await {
                continue;
            }
            match services.uploads.reap_idle(ttl).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(sessions = n, "aborted idle upload sessions"),
                Err(e) => tracing::warn!(error = %e.chain(), "reaping idle upload sessions failed"),
            }
            match services.oci.reap_idle_uploads(ttl).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(uploads = n, "aborted idle OCI uploads"),
                Err(e) => tracing::warn!(error = %e.chain(), "reaping idle OCI uploads failed"),
            }
        }
    });
}
