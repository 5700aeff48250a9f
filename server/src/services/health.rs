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
                error: database.err().map(|e| visible(&e)),
            },
            HealthCheck {
                name: "storage".to_owned(),
                ok: storage.is_ok(),
                error: storage.err().map(|e| visible(&e)),
            },
        ]
    }
}

/// Readiness is public: it says which dependency is down; hosts, buckets and SQL stay in the log.
fn visible(e: &crate::error::Error) -> String {
    tracing::warn!(error = %e.chain(), "readiness check failed");
    e.to_string()
}
