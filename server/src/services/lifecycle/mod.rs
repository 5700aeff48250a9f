//! The store's lifecycle: garbage collection, the store check, usage and quotas, retention rules.
//!
//! The database decides what goes (never a listing of the store alone): a blob is deleted only when it
//! was unreferenced when marked and still is when its condemnation commits, and its row goes only once
//! its object has.

mod collection;
mod quotas;
mod retention;
mod store_check;
mod usage;

use std::time::Duration;

use crate::config::CollectionSettings;
use crate::db::Database;
use crate::db::repos::audit::Actor;
use crate::services::oci::OciService;
use crate::services::registry::RegistryService;
use crate::services::uploads::UploadService;
use crate::storage::BlobStore;

pub use quotas::check_quota;

#[derive(Clone)]
pub struct LifecycleService {
    db: Database,
    store: BlobStore,
    settings: CollectionSettings,
    /// Upload sessions idle for longer are abandoned (KILN_UPLOAD_SESSION_TTL_HOURS).
    upload_ttl: Duration,
    uploads: UploadService,
    oci: OciService,
    registry: RegistryService,
}

impl LifecycleService {
    pub fn new(
        db: Database,
        store: BlobStore,
        settings: CollectionSettings,
        upload_ttl: Duration,
        uploads: UploadService,
        oci: OciService,
        registry: RegistryService,
    ) -> Self {
        Self {
            db,
            store,
            settings,
            upload_ttl,
            uploads,
            oci,
            registry,
        }
    }

    /// How often this server collects on its own (None: only on demand).
    pub fn schedule(&self) -> Option<Duration> {
        self.settings.every
    }
}

/// Who the audit log names for what the server does on its own schedule.
fn scheduler() -> Actor {
    Actor {
        name: "kiln (scheduled collection)".to_owned(),
        user_id: None,
        remote_addr: None,
    }
}
