//! Readiness: whether the database and the blob store both answer.

use diesel::RunQueryDsl;
use kiln_core::api::HealthCheck;

use crate::db::Database;
use crate::storage::BlobStore;

#[derive(Clone)]
pub struct HealthService {
    db: Database,
    store: BlobStore,
}

impl HealthService {
    pub fn new(db: Database, store: BlobStore) -> Self {
        Self { db, store }
    }

    /// One check per dependency, each with its error when it does not answer.
    pub async fn checks(&self) -> Vec<HealthCheck> {
        let database = self
            .db
            .run(|conn| Ok(diesel::sql_query("SELECT 1").execute(conn)?))
            .await
            .map(|_| ());
        let storage = self.store.check().await;
        vec![
            HealthCheck {
                name: "database".to_owned(),
                ok: database.is_ok(),
                error: database.err().map(|e| e.chain().to_string()),
            },
            HealthCheck {
                name: "storage".to_owned(),
                ok: storage.is_ok(),
                error: storage.err().map(|e| e.chain().to_string()),
            },
        ]
    }

    /// Where blobs are stored, for the start-up log line.
    pub fn describe_store(&self) -> String {
        self.store.describe().to_owned()
    }
}
