//! Queries, one module per aggregate. Functions take a connection so callers decide the transaction.

pub mod aliases;
pub mod api_tokens;
pub mod audit;
pub mod benchmarks;
pub mod blobs;
pub mod jwt_keys;
pub mod manifests;
pub mod memberships;
pub mod models;
pub mod namespaces;
pub mod oci_blob_links;
pub mod oci_documents;
pub mod oci_tar_layers;
pub mod oci_uploads;
pub mod pipeline_jobs;
pub mod runners;
pub mod sessions;
pub mod uploads;
pub mod users;
pub mod variants;
pub mod versions;

/// Both backends cap bound parameters per statement; batch `IN (...)` lists below that.
pub(crate) const IN_LIST_BATCH: usize = 500;

pub(crate) fn is_unique_violation(err: &diesel::result::Error) -> bool {
    matches!(
        err,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
