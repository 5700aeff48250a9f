//! Where models are being served: each `kiln-runner serve` process reports what it serves (the alias or
//! version, the variant and its digest, the manifest's sequence, the engine and device, the endpoints)
//! and refreshes the report while it serves; `kiln show`, the web UI and the API list the live reports.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{AliasName, ModelName, NamespaceName, Sha256Digest, VersionName};

/// What a serving process reports, with a runner-scoped token, every half minute while it serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServingReport {
    pub namespace: NamespaceName,
    pub model: ModelName,
    /// The alias it follows; absent when it serves a fixed version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<AliasName>,
    /// The version it serves now.
    pub version: VersionName,
    /// The variant (`fp32`, `int8`, ...).
    pub variant: String,
    /// The variant's model file.
    pub sha256: Sha256Digest,
    /// The sequence of the signed manifest it verified.
    pub sequence: i64,
    /// `onnxruntime` or `kiln`.
    pub engine: String,
    /// `cpu` or `cuda:N`.
    pub device: String,
    /// The process's name (its host name, unless set).
    pub name: String,
    /// Where it answers: the Open Inference Protocol's REST and gRPC addresses, as clients reach them
    /// (1 to 8, each at most 200 characters).
    pub endpoints: Vec<String>,
}

/// A live serving process, as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServingView {
    /// The serving process's id, chosen by it.
    pub id: String,
    #[serde(flatten)]
    pub report: ServingReport,
    /// Who owns the runner token it reports with.
    pub reported_by: String,
    pub started_at: DateTime<Utc>,
    /// Its last report; a process silent for 90 s is no longer listed.
    pub last_seen_at: DateTime<Utc>,
}
