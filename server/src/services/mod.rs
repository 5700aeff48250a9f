//! Use cases. Handlers parse, then call one of these (access was decided before, in `crate::auth`); these
//! talk to repositories and storage.

pub mod accounts;
pub mod aliases;
pub mod downloads;
pub mod manifests;
pub mod namespaces;
pub mod registry;
pub mod runners;
pub mod uploads;
pub mod version_view;

use std::sync::Arc;

use crate::auth::jwt::JwtKeys;
use crate::auth::rate_limit::RateLimiter;
use crate::db::Database;
use crate::pipeline::PipelineQueue;
use crate::storage::BlobStore;

/// Everything a request handler can reach.
#[derive(Clone)]
pub struct Services {
    pub registry: registry::RegistryService,
    pub uploads: uploads::UploadService,
    pub downloads: downloads::DownloadService,
    pub manifests: manifests::ManifestService,
    pub aliases: aliases::AliasService,
    pub runners: runners::RunnerService,
    pub accounts: accounts::AccountService,
    pub namespaces: namespaces::NamespaceService,
    pub rate_limiter: Arc<RateLimiter>,
    pub pipeline: PipelineQueue,
    pub manifest_signer: Arc<crate::manifest::ManifestSigner>,
    pub db: Database,
    pub store: BlobStore,
}

impl Services {
    pub fn new(
        db: Database,
        store: BlobStore,
        jwt: Arc<JwtKeys>,
        rate_limiter: Arc<RateLimiter>,
        manifest_signer: Arc<crate::manifest::ManifestSigner>,
        runner_lease: std::time::Duration,
    ) -> Self {
        let pipeline = PipelineQueue::default();
        Self {
            accounts: accounts::AccountService::new(db.clone(), jwt),
            namespaces: namespaces::NamespaceService::new(db.clone()),
            rate_limiter,
            registry: registry::RegistryService::new(db.clone(), pipeline.clone()),
            pipeline,
            aliases: aliases::AliasService::new(db.clone(), manifest_signer.clone()),
            runners: runners::RunnerService::new(db.clone(), manifest_signer.clone(), runner_lease),
            manifest_signer: manifest_signer.clone(),
            uploads: uploads::UploadService::new(db.clone(), store.clone()),
            downloads: downloads::DownloadService::new(db.clone(), store.clone()),
            manifests: manifests::ManifestService::new(db.clone(), manifest_signer.clone()),
            db,
            store,
        }
    }
}
