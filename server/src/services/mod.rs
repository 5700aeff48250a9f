//! Use cases. Handlers parse and authorize, then call one of these; these talk to repositories and storage.

pub mod downloads;
pub mod registry;
pub mod uploads;

use crate::db::Database;
use crate::storage::BlobStore;

/// Everything a request handler can reach.
#[derive(Clone)]
pub struct Services {
    pub registry: registry::RegistryService,
    pub uploads: uploads::UploadService,
    pub downloads: downloads::DownloadService,
    pub db: Database,
    pub store: BlobStore,
}

impl Services {
    pub fn new(db: Database, store: BlobStore) -> Self {
        Self {
            registry: registry::RegistryService::new(db.clone()),
            uploads: uploads::UploadService::new(db.clone(), store.clone()),
            downloads: downloads::DownloadService::new(db.clone(), store.clone()),
            db,
            store,
        }
    }
}
