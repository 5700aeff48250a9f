//! What deployment systems consume: the signed manifest's document (docs/manifest.md) and the aliases that
//! name the version a manifest deploys. The server builds these, the CLI and any verifier read them; unknown
//! fields are ignored on reading so that verifiers keep working when the document grows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::TensorSignature;
use crate::{AliasName, FilePath, Sha256Digest, VersionName};

/// The signed document: exactly which bytes to run, what they were proven to do, and where they came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentManifest {
    /// The registry that issued it (JWT `iss`): its configured public URL, or `urn:kiln:` and the kid of
    /// its first signing key. Verifiers keep their sequence state per issuer and subject. Absent from
    /// manifests of registries older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// `namespace/model`, e.g. `acme/sentiment`.
    pub model: String,
    pub version: VersionName,
    /// The alias this manifest was issued for (`production`), or null for a version's own manifest.
    pub alias: Option<AliasName>,
    /// Strictly increasing per alias (per version for version manifests): a verifier that has seen a higher
    /// one refuses this one as a rollback.
    pub sequence: i64,
    pub issued_at: DateTime<Utc>,
    /// Verifiers refuse the manifest afterwards, so a frozen mirror cannot serve it forever.
    pub expires_at: DateTime<Utc>,
    /// `issued_at` and `expires_at` as JWT registered claims (seconds), so that any JOSE library checks expiry.
    pub iat: i64,
    pub exp: i64,
    /// Every deployable variant; rejected ones are never listed.
    pub variants: Vec<ManifestVariant>,
    /// The files as pushed.
    pub sources: Vec<ManifestFile>,
    pub provenance: Provenance,
    /// Where the model came from, as its push declared it and the registry resolved it: parents by
    /// reference and role, kiln datasets with their files' digests, external datasets, the training run,
    /// the producing tool and the hyperparameters. Absent when the version declared none (and from
    /// manifests of registries older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<crate::api::Lineage>,
}

impl DeploymentManifest {
    /// `acme/sentiment@production` or `acme/sentiment:1.0.0`: what this manifest is for.
    pub fn subject(&self) -> String {
        match &self.alias {
            Some(alias) => format!("{}@{alias}", self.model),
            None => format!("{}:{}", self.model, self.version),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ManifestVariant {
    /// `onnx`, `fp32`, `fp16`, `int8`, `int8-dynamic`, `pruned-N`.
    pub name: String,
    /// `pushed` (the bytes as pushed, not validated by kiln), `converted` or `optimized` (both proven:
    /// see `validation`).
    #[serde(default)]
    pub origin: crate::api::VariantOrigin,
    /// The model file's digest.
    pub sha256: Sha256Digest,
    /// Model plus external-data bytes.
    pub size: i64,
    pub opset: i32,
    pub inputs: Vec<TensorSignature>,
    pub outputs: Vec<TensorSignature>,
    /// The model file first, then its external-data files.
    pub files: Vec<ManifestFile>,
    /// How the variant was proven: engine, reference, max absolute and relative L2 error, tolerance.
    #[schema(value_type = Option<Object>)]
    pub validation: Option<serde_json::Value>,
    /// What each optimization pass changed, for optimized variants: one record per
    /// pass, in the order they ran.
    #[schema(value_type = Option<Vec<Object>>)]
    pub passes: Option<serde_json::Value>,
    /// Measurements on runners, one per device and batch size.
    #[serde(default)]
    pub benchmarks: Vec<BenchmarkResult>,
}

/// One file a deployment pulls: its bytes must hash to `sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ManifestFile {
    pub path: FilePath,
    pub sha256: Sha256Digest,
    pub size: i64,
    /// Where the registry serves it, relative to the server (`/api/v1/models/...`).
    pub uri: String,
    /// Set for a file the scan would have refused (e.g. a pickle that could run code), stored only because
    /// its namespace allows it: kiln never opened it, and a deployment should not load it blindly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flagged: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Provenance {
    /// The kiln server that published the manifest.
    pub kiln: String,
    /// The converter and optimizer that made the variants.
    pub converter: String,
    /// The pipeline's jobs, as run.
    pub pipeline: Vec<PipelineStep>,
    /// The runners that measured the benchmarks, by name.
    #[serde(default)]
    pub runners: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineStep {
    pub job: String,
    pub state: String,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A variant measured on one device at one batch size, the way trtexec and onnxruntime_perf_test measure:
/// warm-up first, then timed iterations with the device synchronised before the clock is read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BenchmarkResult {
    /// `cpu` or `cuda:0`.
    pub device: String,
    /// E.g. `NVIDIA H200` or the CPU model.
    pub device_name: String,
    /// GPU driver and CUDA versions, when on a GPU.
    pub driver: Option<String>,
    /// The engine that ran it: `kiln` or `onnxruntime` (results from before engines were registered carry
    /// a description of kiln's evaluator here).
    pub engine: String,
    /// The engine's version, e.g. `1.32.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_version: Option<String>,
    /// Where the engine ran it, e.g. `CPUExecutionProvider`, `CUDAExecutionProvider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_provider: Option<String>,
    /// The engine settings a deployment would reproduce, e.g. `graph_optimization_level`,
    /// `intra_op_threads`, `cuda_graph`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub engine_options: std::collections::BTreeMap<String, String>,
    /// CPU threads the engine was pinned to.
    pub threads: Option<u32>,
    #[schema(minimum = 1)]
    pub batch_size: i64,
    /// The length given to token inputs' sequence dim, for models with token inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub sequence_length: Option<i64>,
    /// The shape of each input the variant was run with (symbolic dims made concrete).
    pub input_shapes: std::collections::BTreeMap<String, Vec<i64>>,
    pub warmup_iterations: u32,
    #[schema(minimum = 1)]
    pub iterations: u32,
    #[schema(minimum = 0)]
    pub p50_ms: f64,
    #[schema(minimum = 0)]
    pub p90_ms: f64,
    #[schema(minimum = 0)]
    pub p99_ms: f64,
    /// Items per second at the median latency: batch_size / p50.
    #[schema(minimum = 0)]
    pub throughput: f64,
    /// Peak memory while running: GPU memory in use on the device, or the runner process's peak resident
    /// set on a CPU; None where it cannot be told apart (the server's embedded runner).
    #[schema(minimum = 0)]
    pub peak_memory_bytes: Option<i64>,
    /// Largest absolute difference of the outputs on this device from kiln's CPU reference.
    #[schema(minimum = 0)]
    pub max_abs_error: Option<f64>,
    /// The runner that measured it.
    pub runner: String,
    pub measured_at: DateTime<Utc>,
    /// For a decoder (a model with a key/value cache): generating with the cache at this batch size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<GenerationResult>,
}

/// A decoder generating greedily with its key/value cache, what fleets are sized by: the prompt's
/// forward pass (time to first token) and the token-by-token steps after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GenerationResult {
    /// Tokens in each sequence's prompt.
    #[schema(minimum = 1)]
    pub prompt_tokens: i64,
    /// Tokens generated after the first, one step each.
    #[schema(minimum = 1)]
    pub generated_tokens: i64,
    /// Median time of the prompt's forward pass, which yields the first token.
    #[schema(minimum = 0)]
    pub time_to_first_token_ms: f64,
    /// Median time of one decoding step (one token for each sequence of the batch).
    #[schema(minimum = 0)]
    pub per_token_ms: f64,
    /// Tokens per second over the batch while decoding: batch_size / per_token_ms.
    #[schema(minimum = 0)]
    pub tokens_per_second: f64,
}

/// An alias and the version it names now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AliasView {
    pub name: AliasName,
    pub version: VersionName,
    /// The sequence of the alias's newest manifest.
    pub sequence: i64,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// One move of an alias: who, when, from which version to which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AliasEvent {
    pub alias: AliasName,
    /// None when the move created the alias.
    pub from: Option<VersionName>,
    pub to: VersionName,
    /// The sequence of the manifest this move issued.
    pub sequence: i64,
    pub actor: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAliasRequest {
    /// The version the alias is to name; it must be ready (its files stored and scanned; a version its
    /// scan refused, or still being scanned, cannot be named).
    pub version: VersionName,
}
