//! The runner protocol (docs/runners.md): a runner registers what it is, claims benchmark jobs
//! under a lease it keeps by heartbeat, fetches the variant's files by digest, and reports measurements.
//! Shared by the server, the `kiln-runner` binary and the server's embedded CPU runner.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::VersionName;
use crate::api::FileEntry;
use crate::deployment::BenchmarkResult;

/// What a runner says about itself when it registers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunnerRegistration {
    /// E.g. the host name; several runners may share one.
    #[schema(min_length = 1, max_length = 128)]
    pub name: String,
    /// `cpu` or `cuda:N`.
    #[schema(pattern = "^(cpu|cuda:[0-9]{1,5})$")]
    pub device: String,
    /// The CPU model or GPU name.
    #[schema(min_length = 1, max_length = 256)]
    pub device_name: String,
    /// Device memory (GPU) or system memory (CPU), when known.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 0)]
    pub memory_bytes: Option<i64>,
    /// GPU driver and CUDA versions.
    #[schema(max_length = 256)]
    pub driver: Option<String>,
    /// The inference engine and its version.
    #[schema(min_length = 1, max_length = 256)]
    pub engine: String,
    #[schema(min_length = 1, max_length = 256)]
    pub kiln_version: String,
    /// What the runner can do, e.g. `benchmark`, `fp16`: at most 32, each 1-64 characters.
    #[schema(max_items = 32)]
    pub capabilities: Vec<String>,
    /// CPU threads benchmarks are pinned to.
    #[serde(default, deserialize_with = "crate::whole_number::optional")]
    #[schema(minimum = 1, maximum = 4096)]
    pub threads: Option<u32>,
    /// The engines it measures with; benchmarks are queued per device class and engine. Absent or empty:
    /// kiln's own evaluator (what runners before engines were registered ran).
    #[serde(default)]
    #[schema(max_items = 8)]
    pub engines: Vec<EngineInfo>,
}

/// An inference engine a runner measures with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EngineInfo {
    /// `kiln` (kiln's evaluator) or `onnxruntime`.
    #[schema(pattern = "^[a-z][a-z0-9_-]{0,31}$")]
    pub name: String,
    /// The engine's own version, e.g. `1.32.0`.
    #[schema(min_length = 1, max_length = 64)]
    pub version: String,
    /// What it can run on, best first, e.g. `CUDAExecutionProvider`, `CPUExecutionProvider`: 1 to 16.
    #[schema(min_items = 1, max_items = 16)]
    pub execution_providers: Vec<String>,
}

impl EngineInfo {
    /// kiln's own evaluator.
    pub const KILN: &str = "kiln";
    /// ONNX Runtime, through the `ort` crate.
    pub const ONNXRUNTIME: &str = "onnxruntime";
}

impl RunnerRegistration {
    /// More threads than any host has; keeps the stored count in range.
    pub const MAX_THREADS: u32 = 4096;

    /// The device class jobs are queued for: `cpu` or `cuda`.
    pub fn device_kind(&self) -> &str {
        device_kind(&self.device)
    }
}

/// `cuda:0` → `cuda`; `cpu` → `cpu`.
pub fn device_kind(device: &str) -> &str {
    device.split(':').next().unwrap_or(device)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunnerState {
    /// Heartbeating, holding no job.
    Idle,
    /// Holding a job's lease.
    Busy,
    /// No heartbeat within a lease period: stopped, crashed or cut off.
    Lost,
}

/// A registered runner, as `GET /api/v1/runners` lists it: its registration's fields beside its state.
// The registration's fields are written out rather than `#[serde(flatten)]`ed: the OpenAPI schema of a
// flattened struct is an `allOf` with the registration's `additionalProperties: false` (it refuses
// unknown fields), which no listed runner could satisfy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunnerView {
    pub id: String,
    pub name: String,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// The CPU model or GPU name.
    pub device_name: String,
    /// Device memory (GPU) or system memory (CPU), when known.
    pub memory_bytes: Option<i64>,
    /// GPU driver and CUDA versions.
    pub driver: Option<String>,
    /// The inference engine and its version.
    pub engine: String,
    pub kiln_version: String,
    /// What the runner can do, e.g. `benchmark`, `fp16`.
    pub capabilities: Vec<String>,
    /// CPU threads benchmarks are pinned to.
    pub threads: Option<u32>,
    /// The engines it measures with.
    pub engines: Vec<EngineInfo>,
    pub state: RunnerState,
    pub registered_at: DateTime<Utc>,
    pub last_heartbeat_at: DateTime<Utc>,
    /// The job it holds, when busy.
    pub current_job: Option<String>,
}

/// The answer to a registration: the runner's id and the timing it must keep.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RegisteredRunner {
    pub id: String,
    /// A claimed job is lost unless a heartbeat extends it within this many seconds.
    pub lease_seconds: u64,
    /// How often to heartbeat.
    pub heartbeat_seconds: u64,
}

/// A claimed benchmark job: measure `variant` of `model:version`, whose files are listed with digests.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BenchmarkJob {
    pub job_id: String,
    /// `namespace/model`.
    pub model: String,
    pub version: VersionName,
    pub variant: String,
    /// 1 for the first try; more when an earlier runner lost the job.
    pub attempt: i32,
    pub lease_expires_at: DateTime<Utc>,
    /// The model file first, then its external-data files; fetch each from
    /// `/api/v1/runners/{runner}/jobs/{job}/files/{path}` and check its digest.
    pub files: Vec<FileEntry>,
    /// The engine to measure with, one the runner registered.
    #[serde(default = "kiln_engine")]
    pub engine: String,
    /// Batch sizes the push asked for (empty: the runner's own).
    #[serde(default)]
    pub batch_sizes: Vec<u32>,
    /// Sequence lengths for token inputs the push asked for (empty: the runner's own).
    #[serde(default)]
    pub sequence_lengths: Vec<u32>,
}

fn kiln_engine() -> String {
    EngineInfo::KILN.to_owned()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunnerHeartbeat {
    /// The job being worked on, whose lease this extends.
    pub job_id: Option<String>,
    /// How far a distillation job has got (shown by `kiln show` and the API while it runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<crate::api::DistillationProgress>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatAck {
    /// The job's new lease end, when a job was named.
    pub lease_expires_at: Option<DateTime<Utc>>,
}

/// What a runner reports for a job it holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum BenchmarkReport {
    Succeeded {
        #[schema(min_items = 1, max_items = 16)]
        results: Vec<BenchmarkResult>,
    },
    /// The variant cannot be measured on this runner (e.g. an operator its engine lacks): final.
    Failed { message: String },
}
