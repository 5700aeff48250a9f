//! Storage lifecycle: garbage collection, the store check, usage, quotas and retention rules.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{ModelName, NamespaceName, Sha256Digest, VersionName};

/// Run garbage collection now.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectionRequest {
    /// Report what would be deleted, deleting nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Keep unreferenced blobs recorded (or granted to a pusher) within this many seconds, instead of the
    /// server's grace period (KILN_GC_GRACE_MINUTES). A push in flight is only protected for this long.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 0, maximum = 315360000)]
    pub grace_seconds: Option<u64>,
}

/// What a collection deleted (or, in a dry run, would delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CollectionReport {
    pub dry_run: bool,
    pub grace_seconds: u64,
    /// Blob rows looked at.
    pub blobs_scanned: u64,
    /// Blobs deleted from the store and the database.
    pub blobs_deleted: u64,
    /// Their bytes.
    pub bytes_freed: u64,
    /// Deletions an earlier run left unfinished (it was stopped mid-sweep), finished by this one.
    pub deletions_resumed: u64,
    /// Upload sessions (kiln's and OCI's) abandoned for longer than uploads are kept, aborted and their
    /// staged bytes removed.
    pub uploads_aborted: u64,
    /// OCI tar layers of files no version holds any more.
    pub tar_layers_pruned: u64,
    /// Versions the retention rules deleted before the sweep (scheduled runs only).
    pub versions_retired: u64,
    pub started_at: DateTime<Utc>,
    pub duration_ms: u64,
}

/// Compare the store with the database.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StoreCheckRequest {
    /// Also read every blob and check its digest (reads the whole store).
    #[serde(default)]
    pub verify: bool,
    /// Delete objects nothing records that are older than the grace period, and mark the versions whose
    /// blobs are missing or wrong as damaged (not served) — or no longer damaged once they are whole.
    #[serde(default)]
    pub repair: bool,
}

/// A recorded blob whose object is missing or not what was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BlobProblem {
    pub digest: Sha256Digest,
    /// `missing`, `wrong_size` or `wrong_digest`.
    pub problem: String,
    pub recorded_size: i64,
    /// What the store holds, when it holds something.
    pub stored_size: Option<u64>,
    /// The versions holding it (`namespace/model:version`), which `repair` marks damaged.
    pub versions: Vec<String>,
}

/// An object in the store that nothing in the database records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrphanObject {
    /// Its key, relative to the store's root.
    pub key: String,
    pub size: u64,
    pub last_modified: DateTime<Utc>,
    /// Removed by this run (`repair`, and older than the grace period).
    pub removed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StoreCheckReport {
    pub verify: bool,
    pub repair: bool,
    /// Blob rows compared with the store.
    pub blobs_checked: u64,
    /// Objects the store listed.
    pub objects_listed: u64,
    pub problems: Vec<BlobProblem>,
    pub orphans: Vec<OrphanObject>,
    /// Versions marked damaged by this run.
    pub versions_damaged: Vec<String>,
    /// Versions whose blobs are all whole again, no longer damaged.
    pub versions_restored: Vec<String>,
    /// The lists above stop at 1,000 entries each; the counts do not.
    pub problem_count: u64,
    pub orphan_count: u64,
    pub duration_ms: u64,
}

/// The most a namespace may hold; an absent limit is no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// Bytes of the distinct blobs its versions and their variants hold.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 0)]
    pub max_bytes: Option<i64>,
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 0)]
    pub max_versions: Option<i64>,
}

/// What a model holds in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelUsage {
    pub model: ModelName,
    pub versions: i64,
    /// Bytes of the distinct blobs its versions and variants hold.
    pub bytes: i64,
    /// Of those, the bytes no other model holds: what deleting the model frees.
    pub unique_bytes: i64,
    /// The bytes it shares with other models (kept when it is deleted).
    pub shared_bytes: i64,
}

/// What a namespace holds in the store, model by model, and its quota.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NamespaceUsage {
    pub namespace: NamespaceName,
    pub versions: i64,
    pub bytes: i64,
    /// Bytes no other namespace holds: what deleting every model in it frees.
    pub unique_bytes: i64,
    pub shared_bytes: i64,
    pub quota: Quota,
    /// Largest first.
    pub models: Vec<ModelUsage>,
}

/// The files a push is about to upload and commit, to check against the namespace's quota first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaCheckRequest {
    pub files: Vec<QuotaCheckFile>,
    /// The version the push commits: when it exists already, committing adds nothing (it is the same
    /// version again, or refused as a conflict), so the check passes.
    #[serde(default)]
    pub version: Option<VersionName>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaCheckFile {
    pub digest: Sha256Digest,
    #[schema(minimum = 0, maximum = 5497558138880_i64)]
    #[serde(deserialize_with = "crate::whole_number::required")]
    pub size: i64,
}

/// The push fits. Under a quota, what the namespace would hold after it; without one nothing is
/// measured (every push fits) and the three counts are absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QuotaCheck {
    pub quota: Quota,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<i64>,
    /// Bytes the push adds (files the namespace does not hold yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_bytes: Option<i64>,
}

/// Which versions to keep. A version is kept when any set field keeps it (and always while an alias
/// names it); a rule with neither `keep_last` nor `keep_days` keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionRule {
    /// Keep the newest N versions.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 1)]
    pub keep_last: Option<i64>,
    /// Keep versions created within the last D days.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 0, maximum = 36500)]
    pub keep_days: Option<i64>,
    /// Keep versions an alias named at any time in the last D days (as well as those it names now).
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 0, maximum = 36500)]
    pub keep_aliased_days: Option<i64>,
}

/// A namespace's rule and its models' own rules (which replace the namespace's for that model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetentionRules {
    pub namespace: NamespaceName,
    pub rule: Option<RetentionRule>,
    pub models: Vec<ModelRetentionRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ModelRetentionRule {
    pub model: ModelName,
    pub rule: RetentionRule,
}

/// Apply a namespace's retention rules now.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionRun {
    /// List what the rules would delete, deleting nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// A version the rules delete (or would).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetiredVersion {
    pub model: ModelName,
    pub version: VersionName,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RetentionOutcome {
    pub dry_run: bool,
    /// Oldest first.
    pub deleted: Vec<RetiredVersion>,
    /// Versions the rules keep.
    pub kept: i64,
}
