//! Rows as stored. Conversion to API types happens in the services, which know what a caller may see.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::*;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = namespaces)]
pub struct NamespaceRow {
    pub id: String,
    pub name: String,
    pub created_at: NaiveDateTime,
    /// `user` (a user's personal namespace) or `org`.
    pub kind: String,
    pub owner_id: Option<String>,
    /// Pickles the scan refuses are stored, flagged and never loaded, instead of failing the version.
    pub store_unsafe_pickles: bool,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = models)]
pub struct ModelRow {
    pub id: String,
    pub namespace_id: String,
    pub name: String,
    pub description: String,
    pub tags: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// `public` or `private`.
    pub visibility: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = blobs)]
pub struct BlobRow {
    pub digest: String,
    pub size: i64,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = versions)]
pub struct VersionRow {
    pub id: String,
    pub model_id: String,
    pub version: String,
    pub status: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = version_files)]
pub struct VersionFileRow {
    pub version_id: String,
    pub path: String,
    pub digest: String,
    pub size: i64,
}

/// One kiln version a version's lineage names: the `position`-th entry of its `kind` (`parent` or
/// `dataset`) list.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = version_links)]
pub struct VersionLinkRow {
    pub version_id: String,
    pub kind: String,
    pub position: i32,
    pub linked_version_id: String,
    /// The parent's role; `dataset` for a dataset.
    pub role: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = upload_sessions)]
pub struct UploadSessionRow {
    pub id: String,
    pub digest: String,
    pub size: i64,
    pub part_size: i64,
    pub upload_offset: i64,
    pub backend_upload_id: String,
    pub hash_state: Vec<u8>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The user who started the session; only they may continue, commit or abort it.
    pub user_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = upload_parts)]
pub struct UploadPartRow {
    pub session_id: String,
    pub part_number: i32,
    pub etag: String,
    pub size: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub remote_addr: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: String,
    pub name: String,
    pub password_hash: Option<String>,
    pub is_admin: bool,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = memberships)]
pub struct MembershipRow {
    pub namespace_id: String,
    pub user_id: String,
    pub role: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_tokens)]
pub struct ApiTokenRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub token_hash: String,
    pub scopes: String,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// A web UI session; the cookie holds the id, this row only its hash.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ui_sessions)]
pub struct UiSessionRow {
    pub id_hash: String,
    pub user_id: String,
    pub scopes: String,
    pub token_id: Option<String>,
    pub csrf_token: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = jwt_keys)]
pub struct JwtKeyRow {
    pub kid: String,
    pub private_key: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: NaiveDateTime,
    pub retired_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for JwtKeyRow {
    // The private key must never reach a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeyRow")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = pipeline_jobs)]
pub struct PipelineJobRow {
    pub id: String,
    pub version_id: String,
    pub kind: String,
    pub state: String,
    pub attempts: i32,
    pub max_attempts: i32,
    pub message: Option<String>,
    pub report: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub started_at: Option<NaiveDateTime>,
    pub finished_at: Option<NaiveDateTime>,
    /// The push's pipeline options (JSON), carried from job to job.
    pub options: Option<String>,
    /// For benchmark jobs: the variant measured and the device class (`cpu`, `cuda`) it runs on.
    pub variant: Option<String>,
    pub device: Option<String>,
    /// The engine a benchmark job is for (`kiln`, `onnxruntime`).
    pub engine: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = variants)]
pub struct VariantRow {
    pub version_id: String,
    pub name: String,
    pub status: String,
    /// Which of the variant's files is the ONNX model (the others are its external data).
    pub model_path: String,
    pub opset: i32,
    pub inputs: String,
    pub outputs: String,
    pub validation: Option<String>,
    pub created_at: NaiveDateTime,
    /// What each optimization pass changed (JSON), for optimized variants.
    pub passes: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = variant_files)]
pub struct VariantFileRow {
    pub version_id: String,
    pub variant: String,
    pub path: String,
    pub digest: String,
    pub size: i64,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = manifests)]
pub struct ManifestRow {
    pub id: String,
    pub version_id: String,
    pub alias: Option<String>,
    pub sequence: i64,
    /// The signed JSON document, exactly as signed.
    pub payload: String,
    /// The compact JWS (EdDSA) over `payload`.
    pub jws: String,
    pub kid: String,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// The alias it was issued for; None for a version's own manifest.
    pub alias_id: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = aliases)]
pub struct AliasRow {
    pub id: String,
    pub model_id: String,
    pub name: String,
    pub version_id: String,
    /// The sequence of the alias's newest manifest.
    pub sequence: i64,
    pub updated_at: NaiveDateTime,
    pub updated_by: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = alias_events)]
pub struct AliasEventRow {
    pub id: String,
    pub alias_id: String,
    pub from_version: Option<String>,
    pub to_version: String,
    pub sequence: i64,
    pub actor: String,
    pub at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = runners)]
pub struct RunnerRow {
    pub id: String,
    pub name: String,
    /// The credential that registered it; only that one may act for it.
    pub token_id: String,
    pub device: String,
    pub device_kind: String,
    pub device_name: String,
    pub memory_bytes: Option<i64>,
    pub driver: Option<String>,
    pub engine: String,
    pub kiln_version: String,
    /// JSON array of strings.
    pub capabilities: String,
    pub threads: Option<i32>,
    pub registered_at: NaiveDateTime,
    pub last_heartbeat_at: NaiveDateTime,
    /// JSON array of the engines it registered ([`kiln_core::runners::EngineInfo`]).
    pub engines: String,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = benchmark_results)]
pub struct BenchmarkResultRow {
    pub id: String,
    pub version_id: String,
    pub variant: String,
    pub job_id: String,
    pub runner_id: String,
    pub device: String,
    pub batch_size: i64,
    /// The published `BenchmarkResult`, as JSON.
    pub result: String,
    pub measured_at: NaiveDateTime,
}

/// What only a distillation job has; its lease and state are its `pipeline_jobs` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = distillations)]
pub struct DistillationRow {
    pub job_id: String,
    pub target: String,
    pub request: String,
    pub data_version_id: Option<String>,
    pub requested_by: String,
    pub requester_name: String,
    pub requester_visible: Option<String>,
    pub progress: Option<String>,
    pub checkpoint_step: Option<i64>,
    pub student_version_id: Option<String>,
}

/// One serving process's report (`servings`); `endpoints` is a JSON list.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = servings)]
pub struct ServingRow {
    pub id: String,
    pub model_id: String,
    pub token_id: String,
    pub reported_by: String,
    pub name: String,
    pub alias: Option<String>,
    pub version: String,
    pub variant: String,
    pub sha256: String,
    pub sequence: i64,
    pub engine: String,
    pub device: String,
    pub endpoints: String,
    pub started_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
}
