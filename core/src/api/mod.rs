//! JSON bodies of the HTTP API (`/api/v1`), shared by the server (which documents them with utoipa) and the
//! CLI (which deserialises them). Field names here are the public contract: change them with care.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{FilePath, ModelName, NamespaceName, Sha256Digest, VersionName};

mod accounts;
mod distillation;
mod lineage;
mod serving;
mod storage;
mod webhooks;

pub use accounts::*;
pub use distillation::*;
pub use lineage::*;
pub use serving::*;
pub use storage::*;
pub use webhooks::*;

/// Every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`, `digest_mismatch`, `version_conflict`.
    pub code: String,
    /// What went wrong and, where possible, what to do about it.
    pub message: String,
    /// Extra structured facts for some codes (e.g. `missing` digests, the session's `offset`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ErrorBody {
    /// The code as this build knows it; None for a code from a newer server.
    pub fn error_code(&self) -> Option<crate::ErrorCode> {
        self.code.parse().ok()
    }
}

/// A namespace with how many models it holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct NamespaceSummary {
    pub name: NamespaceName,
    pub model_count: i64,
    pub created_at: DateTime<Utc>,
}

/// One model in a listing.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelSummary {
    pub namespace: NamespaceName,
    pub name: ModelName,
    pub visibility: Visibility,
    pub description: String,
    pub tags: Vec<String>,
    pub version_count: i64,
    /// The most recently committed version, if any.
    pub latest_version: Option<VersionName>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A model and its versions, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ModelDetail {
    pub namespace: NamespaceName,
    pub name: ModelName,
    pub visibility: Visibility,
    pub description: String,
    pub tags: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// How many versions the model has.
    #[schema(minimum = 0)]
    pub version_count: i64,
    /// The newest versions, newest first: at most [`ModelDetail::VERSIONS_SHOWN`]; the rest are a page
    /// at a time at `GET /models/{namespace}/{model}/versions`.
    pub versions: Vec<VersionSummary>,
}

impl ModelDetail {
    pub const VERSIONS_SHOWN: i64 = 100;
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionSummary {
    pub version: VersionName,
    pub status: VersionStatus,
    pub file_count: i64,
    pub total_size: i64,
    pub created_at: DateTime<Utc>,
}

/// Where a version is in its life: `pending` once committed, `processing` while its files are scanned, then
/// `ready` as soon as the safety scans pass (the files are stored, versioned and signable; conversion,
/// optimization and benchmarks go on after and add variants) or `failed` when a scan refused a file (its
/// message says why). The files a user pushed are downloadable in every state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    Pending,
    Processing,
    Ready,
    Failed,
}

impl VersionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Pending => "pending",
            VersionStatus::Processing => "processing",
            VersionStatus::Ready => "ready",
            VersionStatus::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "pending" => VersionStatus::Pending,
            "processing" => VersionStatus::Processing,
            "ready" => VersionStatus::Ready,
            "failed" => VersionStatus::Failed,
            _ => return None,
        })
    }
}

/// A pipeline job's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    /// The step could not run on this version (format not convertible, an op kiln does not evaluate,
    /// variants not asked for); its message says why. Not a failure of the version.
    Skipped,
    Failed,
    /// Cancelled by a user (distillations).
    Cancelled,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Skipped => "skipped",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "skipped" => JobState::Skipped,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            _ => return None,
        })
    }
}

/// One step of a version's pipeline (`scan`, then `convert`), as `kiln show REF --json` lists it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PipelineJob {
    pub kind: String,
    pub state: JobState,
    /// For `benchmark` jobs: the variant measured, the device class (`cpu`, `cuda`) and the engine
    /// (`kiln`, `onnxruntime`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    /// Tries so far, out of `max_attempts` (a worker that dies mid-job costs one).
    pub attempts: i32,
    pub max_attempts: i32,
    /// Why the job failed, in words a user can act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What the job found or did (formats detected, findings, validation numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// One dimension of a tensor: a number, a symbolic name (`batch`, `sequence`), or unknown (`null`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Dim {
    Fixed(i64),
    Symbolic(String),
    Unknown,
}

/// A graph input or output: name, ONNX element type (`float32`, `int64`, ...) and shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TensorSignature {
    pub name: String,
    pub dtype: String,
    /// `None` when the model does not say (a tensor of unknown rank).
    pub shape: Option<Vec<Dim>>,
}

/// Whether a variant may be deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VariantStatus {
    Deployable,
    Rejected,
}

impl VariantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VariantStatus::Deployable => "deployable",
            VariantStatus::Rejected => "rejected",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "deployable" => VariantStatus::Deployable,
            "rejected" => VariantStatus::Rejected,
            _ => return None,
        })
    }
}

/// Where a variant's bytes come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VariantOrigin {
    /// The model exactly as pushed (the same blobs): served as pushed, not validated by kiln. Also what a
    /// document without the field reads as: a missing claim of proof is no proof.
    #[default]
    Pushed,
    /// Converted by kiln from a pushed checkpoint, and proven against a reference forward pass.
    Converted,
    /// Made by kiln's optimization passes and compression from the `onnx` variant, and validated against
    /// it within its tolerance (a variant outside it is `rejected`).
    Optimized,
}

impl VariantOrigin {
    pub fn as_str(self) -> &'static str {
        match self {
            VariantOrigin::Pushed => "pushed",
            VariantOrigin::Converted => "converted",
            VariantOrigin::Optimized => "optimized",
        }
    }
}

/// A model kiln produced (or checked) from a version's files: `onnx` is the version as one ONNX model.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VariantDetail {
    pub name: String,
    pub status: VariantStatus,
    /// Pushed as it is, converted by kiln, or optimized by kiln.
    #[serde(default)]
    pub origin: VariantOrigin,
    /// The model file's digest and the variant's total bytes (model plus external data).
    pub digest: Sha256Digest,
    pub size: i64,
    pub opset: i32,
    pub inputs: Vec<TensorSignature>,
    pub outputs: Vec<TensorSignature>,
    /// How the variant was proven (engine, reference, max absolute and relative L2 error), when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub validation: Option<serde_json::Value>,
    /// The model file first, then its external-data files.
    pub files: Vec<FileEntry>,
    /// What each optimization pass changed (nodes and bytes before and after), for optimized variants: one record per
    /// pass, in the order they ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub passes: Option<serde_json::Value>,
    /// Measurements on runners, one per device and batch size.
    #[serde(default)]
    pub benchmarks: Vec<crate::deployment::BenchmarkResult>,
}

/// What a push asks of its pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineOptions {
    /// Variants to make from the optimized model: `fp32`, `fp16`, `int8`, `int8-dynamic`, `pruned-N` (N %
    /// of the weights zeroed, 1-99). Default: fp32, fp16, int8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<String>>,
    /// Relative L2 tolerance per variant name, replacing the default for that kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerances: Option<std::collections::BTreeMap<String, f64>>,
    /// Batch sizes runners measure the variants at, for models with a symbolic batch dim: 1 to 4 sizes,
    /// each 1-1024. Default: 1 and 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1, max_items = 4)]
    pub benchmark_batch_sizes: Option<Vec<u32>>,
    /// Sequence lengths runners measure models with token inputs at: 1 to 4 lengths, each 1-65536.
    /// Default: 128.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_items = 1, max_items = 4)]
    pub benchmark_sequence_lengths: Option<Vec<u32>>,
}

impl PipelineOptions {
    pub const MAX_BENCHMARK_SIZES: usize = 4;
    pub const MAX_BENCHMARK_BATCH: u32 = 1024;
    pub const MAX_BENCHMARK_SEQUENCE: u32 = 65_536;
}

/// One file of a version: where it sits in the version's tree and which blob holds its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileEntry {
    pub path: FilePath,
    pub digest: Sha256Digest,
    /// Bytes (at most 5 TiB, S3's largest object).
    #[schema(minimum = 0, maximum = 5497558138880_i64)]
    #[serde(deserialize_with = "crate::whole_number::required")]
    pub size: i64,
}

/// A committed version: `kiln show NS/MODEL:VERSION --json` prints exactly this.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionDetail {
    pub namespace: NamespaceName,
    pub model: ModelName,
    pub version: VersionName,
    pub status: VersionStatus,
    pub files: Vec<FileEntry>,
    pub created_at: DateTime<Utc>,
    /// The pipeline's jobs, oldest first.
    #[serde(default)]
    pub pipeline: Vec<PipelineJob>,
    /// What the pipeline produced, by name.
    #[serde(default)]
    pub variants: Vec<VariantDetail>,
    /// Files the scan would have refused, stored only because the namespace allows it: kiln never opens,
    /// converts or loads them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flagged: Vec<FlaggedFile>,
    /// Why the version is not served: the store check found a blob of it missing or wrong. Pushing the
    /// same files again and `kiln admin fsck --repair` restore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damage: Option<String>,
    /// Where the version came from, as its push declared it, with each kiln reference's status now
    /// (absent when the push declared none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Lineage>,
    /// Versions the caller may read whose lineage names this one (as a parent or a dataset), oldest
    /// first: at most 100; `derived_count` says how many in all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived: Vec<DerivedVersion>,
    /// How many versions the caller may read name this one in their lineage.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schema(minimum = 0)]
    pub derived_count: i64,
}

impl VersionDetail {
    pub const DERIVED_SHOWN: i64 = 100;
}

fn is_zero(count: &i64) -> bool {
    *count == 0
}

/// A file stored only, never loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FlaggedFile {
    pub path: String,
    /// What the scan found, e.g. the pickle globals outside its allowlist.
    pub reason: String,
}

/// Commit a version from blobs already uploaded. Identical content for an existing version is a no-op;
/// different content (files, or a lineage that differs from the recorded one) is refused with 409.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVersionRequest {
    pub version: VersionName,
    /// 1 to 100,000 files.
    #[schema(min_items = 1, max_items = 100_000)]
    pub files: Vec<FileEntry>,
    /// What the pipeline makes of this version (absent: the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineOptions>,
    /// Where the version came from (docs/api.md, "Lineage"). A re-commit of identical files with a
    /// lineage must state the recorded one; without one, it is the same no-op as before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<LineageRequest>,
}

/// Change a model's description or tags; absent fields stay as they are.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateModelRequest {
    /// At most 10,000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 10_000)]
    pub description: Option<String>,
    /// At most 64 tags, each 1-64 characters without control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = tag_list_schema)]
    pub tags: Option<Vec<String>>,
}

/// A model's tags as the server takes them: at most 64, each 1 to 64 characters, no control character
/// (Unicode Cc, as `char::is_control`).
fn tag_list_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let tag = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(64))
        .pattern(Some(r"^[^\u0000-\u001F\u007F-\u009F]*$"));
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(tag)
        .max_items(Some(64))
        .description(Some(
            "At most 64 tags, each 1-64 characters without control characters.",
        ))
        .build()
}

/// Which of these digests the caller may not use yet (not held, or held only for others): upload those.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MissingBlobsRequest {
    /// At most 100,000 digests.
    #[schema(max_items = 100_000)]
    pub digests: Vec<Sha256Digest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MissingBlobsResponse {
    pub missing: Vec<Sha256Digest>,
}

/// Start (or resume) uploading one blob. When an unfinished session for the same digest and size exists,
/// the server returns it, with its offset, instead of starting over.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUploadRequest {
    pub digest: Sha256Digest,
    /// The blob's size in bytes, 0 to 5 TiB.
    #[schema(minimum = 0, maximum = 5_497_558_138_880_i64)]
    #[serde(deserialize_with = "crate::whole_number::required")]
    pub size: i64,
}

/// An upload session. Send chunks with `PATCH` and `Content-Range: bytes START-END/SIZE`, starting at
/// `offset`; every chunk but the last must be a multiple of `part_size` bytes. Then `POST .../commit`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UploadSession {
    pub id: String,
    pub digest: Sha256Digest,
    pub size: i64,
    /// Bytes received and stored so far; the next chunk must start here.
    pub offset: i64,
    /// Chunks must be a multiple of this (except the last one).
    pub part_size: i64,
    /// True when this call found an unfinished session and continues it.
    pub resumed: bool,
    pub created_at: DateTime<Utc>,
}

/// A blob the server holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BlobInfo {
    pub digest: Sha256Digest,
    pub size: i64,
}

/// Liveness and readiness answers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    pub status: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<HealthCheck>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HealthCheck {
    pub name: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Who may read a model: everyone (`public`), or members of its namespace (`private`, the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "public" => Some(Visibility::Public),
            "private" => Some(Visibility::Private),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetVisibilityRequest {
    pub visibility: Visibility,
}

/// A published manifest: the signed document and its compact JWS (`GET .../manifest` with
/// `Accept: application/jose` returns the JWS alone).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ManifestResponse {
    pub sequence: i64,
    /// The signing key's id, as in the JWS header and /.well-known/jwks.json.
    pub kid: String,
    /// The signed document (docs/manifest.md), decoded for humans.
    pub payload: crate::deployment::DeploymentManifest,
    /// Compact JWS (EdDSA) over `payload`: what a deployment system verifies.
    pub jws: String,
}
