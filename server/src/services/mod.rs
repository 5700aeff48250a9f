//! Use cases. Handlers parse, then call one of these (access was decided before, by the HTTP layer's
//! `authorize` middleware through [`access::AccessService`]); these talk to repositories, read models and
//! storage, and to the pipeline's queue. Each service owns its state: nothing above this floor reaches the
//! database or the store except through a service.

pub mod access;
pub mod accounts;
pub mod aliases;
pub mod distillations;
pub mod downloads;
pub mod health;
pub mod lifecycle;
pub mod manifests;
pub mod namespaces;
pub mod oci;
pub mod operations;
pub mod paging;
pub mod read_cache;
pub mod registry;
pub mod request_body;
pub mod runners;
pub mod schedule;
pub mod servings;
pub mod sessions;
pub mod upload_claims;
pub mod uploads;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use crate::auth::jwt::JwtKeys;
use crate::auth::rate_limit::RateLimiter;
use crate::db::Database;
use crate::manifest::ManifestSigner;
use crate::pipeline::PipelineQueue;
use crate::storage::BlobStore;

/// Everything a request handler can reach.
#[derive(Clone)]
pub struct Services {
    pub access: access::AccessService,
    pub accounts: accounts::AccountService,
    pub aliases: aliases::AliasService,
    pub distillations: distillations::DistillationService,
    pub downloads: downloads::DownloadService,
    pub health: health::HealthService,
    pub lifecycle: lifecycle::LifecycleService,
    pub manifests: manifests::ManifestService,
    pub namespaces: namespaces::NamespaceService,
    pub oci: oci::OciService,
    pub operations: operations::OperationsService,
    pub registry: registry::RegistryService,
    pub runners: runners::RunnerService,
    pub schedule: schedule::ScheduleService,
    pub servings: servings::ServingService,
    pub sessions: sessions::SessionService,
    pub uploads: uploads::UploadService,
    pub webhooks: webhooks::WebhookService,
}

/// What the services are built on; startup makes these once.
pub struct Foundations {
    pub db: Database,
    pub store: BlobStore,
    pub jwt: Arc<JwtKeys>,
    pub rate_limiter: Arc<RateLimiter>,
    pub manifest_signer: Arc<ManifestSigner>,
    /// Wakes the pipeline's workers when a version is committed.
    pub pipeline: PipelineQueue,
    /// A runner's job lease.
    pub runner_lease: Duration,
    /// Garbage collection's grace period and schedule.
    pub collection: crate::config::CollectionSettings,
    /// Upload sessions idle for longer are abandoned.
    pub upload_ttl: Duration,
    /// The credential of this server's embedded runner child, made at start and held nowhere else, and the
    /// loopback listener it is good on.
    pub embedded_runner: Option<(String, std::net::SocketAddr)>,
    /// How webhook targets are checked.
    pub webhooks: crate::config::WebhookSettings,
    /// How long hot reads are kept (0: not at all).
    pub cache_ttl: Duration,
    /// Names this server's upload claims.
    pub claimant: upload_claims::Claimant,
}

impl Services {
    pub fn new(base: Foundations) -> Self {
        let Foundations {
            db,
            store,
            jwt,
            rate_limiter,
            manifest_signer: signer,
            pipeline,
            runner_lease,
            collection,
            upload_ttl,
            embedded_runner,
            webhooks,
            cache_ttl,
            claimant,
        } = base;
        let cache = read_cache::ReadCache::new(cache_ttl);
        let accounts =
            accounts::AccountService::new(db.clone(), jwt, embedded_runner, cache.clone());
        let registry = registry::RegistryService::new(db.clone(), pipeline, cache.clone());
        let uploads = uploads::UploadService::new(db.clone(), store.clone(), claimant.clone());
        let oci = oci::OciService::new(db.clone(), store.clone(), registry.clone(), claimant);
        let distillations =
            distillations::DistillationService::new(db.clone(), store.clone(), registry.clone());
        Self {
            distillations,
            access: access::AccessService::new(db.clone(), rate_limiter, cache.clone()),
            sessions: sessions::SessionService::new(db.clone(), accounts.clone()),
            accounts,
            aliases: aliases::AliasService::new(db.clone(), signer.clone(), cache.clone()),
            downloads: downloads::DownloadService::new(db.clone(), store.clone()),
            health: health::HealthService::new(db.clone(), store.clone()),
            manifests: manifests::ManifestService::new(db.clone(), signer.clone(), cache.clone()),
            namespaces: namespaces::NamespaceService::new(db.clone(), cache.clone()),
            lifecycle: lifecycle::LifecycleService::new(
                db.clone(),
                store.clone(),
                collection,
                upload_ttl,
                uploads.clone(),
                oci.clone(),
                registry.clone(),
            ),
            oci,
            operations: operations::OperationsService::new(db.clone(), runner_lease),
            registry,
            runners: runners::RunnerService::new(db.clone(), signer, runner_lease),
            schedule: schedule::ScheduleService::new(db.clone()),
            servings: servings::ServingService::new(db.clone()),
            uploads,
            webhooks: webhooks::WebhookService::new(db.clone(), webhooks),
        }
    }
}

pub(crate) use crate::db::transaction_retried;
