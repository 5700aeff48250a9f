//! Distillation jobs (docs/distillation.md): a user asks for a student of a teacher version; a runner
//! claims the job under a lease, trains, checkpoints its state to the server every few minutes, reports
//! progress in its heartbeats, uploads the student's files and reports; the server commits the student as a
//! new version with its lineage, which then runs through the normal pipeline.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::FileEntry;

/// `POST /api/v1/models/{namespace}/{model}/versions/{version}/distillations`: distill that version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DistillationRequest {
    /// Where the student goes, `namespace/model:version` (a version that does not exist yet; the caller
    /// must be able to write there).
    #[schema(
        max_length = 512,
        pattern = "^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?/[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?:[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$",
        examples("acme/bert-small:1.0")
    )]
    pub into: String,
    /// `layers=N` (every k-th teacher layer kept, from the first) or `keep=I,J,...`; default `layers=2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 256,
        pattern = "^(layers=[1-9][0-9]{0,5}|keep=(0|[1-9][0-9]{0,4})(,(0|[1-9][0-9]{0,4})){0,41})$",
        examples("layers=6")
    )]
    pub student: Option<String>,
    /// A kiln version holding the dataset (token ids as .safetensors or .npy, or .txt/.jsonl text for the
    /// teacher's tokenizer.json); none: sequences sampled from the teacher, marked as such in the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 512,
        pattern = "^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?/[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?:[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$",
        examples("acme/web-text:2024-05")
    )]
    pub data: Option<String>,
    /// Optimizer steps, 1 to 1,000,000 (default 500).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole_number::optional"
    )]
    #[schema(minimum = 1, maximum = 1000000)]
    pub steps: Option<u32>,
    /// Sequences per step, 1 to 4096 (default 8).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole_number::optional"
    )]
    #[schema(minimum = 1, maximum = 4096)]
    pub batch_size: Option<u32>,
    /// Tokens per sequence, 2 to 65536 (default 64; at most the teacher's positions).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole_number::optional"
    )]
    #[schema(minimum = 2, maximum = 65536)]
    pub sequence_length: Option<u32>,
    /// AdamW's learning rate, above 0 and at most 1 (default 5e-4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(exclusive_minimum = 0.0, maximum = 1.0)]
    pub learning_rate: Option<f64>,
    /// Softens both distributions in the KL term, 0.1 to 100 (default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.1, maximum = 100.0)]
    pub temperature: Option<f64>,
    /// Seeds the split, the batches and made-up data (default 0).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole_number::optional"
    )]
    pub seed: Option<u64>,
    /// Seconds between checkpoints of the training state, 1 to 3600 (default 180).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::whole_number::optional"
    )]
    #[schema(minimum = 1, maximum = 3600)]
    pub checkpoint_every_seconds: Option<u32>,
    /// Which runners may take the job: `cpu` (default) or `cuda`, or a device such as `cuda:0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^(cpu|cuda(:[0-9]{1,5})?)$")]
    pub device: Option<String>,
}

/// Where a distillation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DistillationState {
    /// Waiting for a runner of its device class that distills.
    Queued,
    Running,
    /// The student is committed (`student`); its own pipeline runs on.
    Succeeded,
    Failed,
    Cancelled,
}

/// How far a running distillation is, as its runner last reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DistillationProgress {
    /// Steps done, of `steps`.
    pub step: u64,
    pub steps: u64,
    /// The mean loss since the previous report.
    pub loss: f64,
    /// Optimizer steps a second, since the job (re)started.
    pub steps_per_second: f64,
    /// Seconds left at that rate.
    pub eta_seconds: u64,
    /// The step of the last checkpoint kept by the server, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_step: Option<u64>,
}

/// A distillation job, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Distillation {
    pub id: String,
    /// The teacher, `namespace/model:version`.
    pub teacher: String,
    /// Where the student goes, `namespace/model:version`.
    pub into: String,
    pub state: DistillationState,
    /// The request as given (defaults left out).
    pub request: DistillationRequest,
    /// 1 for the first runner; more when a runner died and another resumed from the last checkpoint.
    pub attempt: i32,
    /// The runner holding it, while running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<DistillationProgress>,
    /// Why it failed, or who cancelled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The report (docs/distillation.md, "The report"): the loss curve, held-out agreement with the
    /// teacher before and after training, parameter counts and sizes. Once succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub report: Option<serde_json::Value>,
    /// The student next to the teacher, once it is committed: parameters and weight bytes from the
    /// report, and the latency of each benchmark both have (read when shown: the student's benchmarks
    /// arrive as its pipeline runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<DistillationComparison>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// A student next to its teacher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DistillationComparison {
    /// The student, `namespace/model:version`.
    pub student: String,
    pub teacher_parameters: u64,
    pub student_parameters: u64,
    pub teacher_bytes: u64,
    pub student_bytes: u64,
    /// Held-out top-1 agreement of the student's logits with the teacher's, after training.
    pub top1_agreement: f64,
    /// Benchmarks measured for both, matched by variant, device, engine, batch size and sequence length.
    pub latency: Vec<LatencyPair>,
}

/// One benchmark both the teacher and the student have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatencyPair {
    pub variant: String,
    pub device: String,
    pub engine: String,
    pub batch_size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence_length: Option<i64>,
    pub teacher_p50_ms: f64,
    pub student_p50_ms: f64,
}

/// A claimed distillation, as a runner gets it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DistillationJob {
    pub job_id: String,
    /// The teacher, `namespace/model:version`.
    pub teacher: String,
    /// The teacher's files; fetch each from `/api/v1/runners/{runner}/distillations/{job}/teacher/{path}`.
    pub teacher_files: Vec<FileEntry>,
    /// The dataset version, when the request named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Its files; fetch each from `/api/v1/runners/{runner}/distillations/{job}/data/{path}`.
    #[serde(default)]
    pub data_files: Vec<FileEntry>,
    pub request: DistillationRequest,
    /// The step of the training state kept by the server, to resume from
    /// (`GET /api/v1/runners/{runner}/distillations/{job}/checkpoint`); none: start from the teacher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_step: Option<u64>,
    pub attempt: i32,
    pub lease_expires_at: DateTime<Utc>,
}

/// What a runner reports at the end of a distillation it holds.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case", deny_unknown_fields)]
pub enum DistillationResult {
    /// The student's files, each uploaded first to
    /// `PUT /api/v1/runners/{runner}/distillations/{job}/files/{path}`, and the report.
    Succeeded {
        #[schema(min_items = 1, max_items = 64)]
        files: Vec<FileEntry>,
        #[schema(value_type = Object)]
        report: serde_json::Value,
    },
    /// The job cannot succeed (a teacher kiln cannot distill, a dataset it cannot read): final.
    Failed { message: String },
}
