//! Queries, one module per aggregate. Functions take a connection so callers decide the transaction.

pub mod aliases;
pub mod api_tokens;
pub mod audit;
pub mod benchmarks;
pub mod blobs;
pub mod collection;
pub mod distillations;
pub mod jwt_keys;
pub mod leases;
pub mod lineage;
pub mod manifests;
pub mod memberships;
pub mod models;
pub mod namespaces;
pub mod oci_blob_links;
pub mod oci_documents;
pub mod oci_tar_layers;
pub mod oci_uploads;
pub mod pipeline_jobs;
pub mod quotas;
pub mod replicas;
pub mod retention_rules;
pub mod runners;
pub mod servings;
pub mod sessions;
pub mod uploads;
pub mod users;
pub mod variants;
pub mod versions;
pub mod webhooks;

/// Both backends cap bound parameters per statement; batch `IN (...)` lists below that.
pub(crate) const IN_LIST_BATCH: usize = 500;

/// PostgreSQL broke a deadlock by aborting this transaction, or could not serialize it: the same
/// transaction run again succeeds. (A deadlock has no error kind of its own in diesel, so its message
/// is matched: PostgreSQL's "deadlock detected", SQLSTATE 40P01.)
pub(crate) fn is_transient_conflict(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match err {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

pub(crate) fn is_unique_violation(err: &diesel::result::Error) -> bool {
    matches!(
        err,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
