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
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunnerHeartbeat {
    /// The job being worked on, whose lease this extends.
    pub job_id: Option<String>,
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
