//! Where a version came from: the versions it was made from (a teacher, a base model, the source of a
//! conversion), the datasets it was trained on, the training run, the tool that made it and its
//! hyperparameters. A push declares it ([`LineageRequest`]); the server resolves every kiln reference,
//! pins each kiln dataset's file digests, and shows the result ([`Lineage`]) in the version, in the version
//! it names (`derived`) and in the signed deployment manifest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{FileEntry, VersionStatus};
use crate::Sha256Digest;

mod check;

pub use check::version_reference;

/// Text without control characters (Unicode Cc, as `char::is_control`): the schemas' pattern for names and
/// text the server refuses control characters in.
const NO_CONTROL_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";

/// Hyperparameters by name: strings, numbers and booleans only.
pub type Hyperparameters = BTreeMap<String, serde_json::Value>;

/// Where a version came from, as a push declares it. Every field is optional; the lineage is fixed with
/// the version (a version is immutable, and so is what it says it came from).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineageRequest {
    /// Versions this one was made from, each with its role: at most 16.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 16)]
    pub parents: Vec<ParentRequest>,
    /// Datasets it was trained or calibrated on: at most 16, each a kiln version or an external URI.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(max_items = 16)]
    pub datasets: Vec<DatasetRequest>,
    /// The training run: a URL or an id, 1 to 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub training_run: Option<String>,
    /// The tool that made the version, and its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<Producer>,
    /// At most 64, by name (1-64 characters); each a string (at most 256 characters), a number or a boolean.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = hyperparameters_schema)]
    pub hyperparameters: Option<Hyperparameters>,
}

/// A version this one was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParentRequest {
    /// The version, `namespace/model:version`; the pusher must be able to read it.
    #[schema(
        max_length = 512,
        pattern = "^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?/[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?:[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$",
        examples("acme/bert-base:1.0")
    )]
    pub reference: String,
    /// What it was to this version: `teacher`, `base`, `source`, `fine-tuned-from`, ... (1-32 characters:
    /// lowercase letters, digits, `-` and `_`, starting with a letter).
    #[schema(min_length = 1, max_length = 32, pattern = "^[a-z][a-z0-9_-]*$")]
    pub role: String,
}

/// A dataset: a kiln version holding it (`reference`), or an external one (`uri`, with its digest if known).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DatasetRequest {
    /// A kiln version holding the dataset, `namespace/model:version` (the pusher must be able to read it):
    /// the server records its files' digests. Either this or `uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        max_length = 512,
        pattern = "^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?/[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?:[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$",
        examples("acme/web-text:2024-05")
    )]
    pub reference: Option<String>,
    /// An external dataset (`s3://...`, `https://...`, `hf://datasets/...`): 1 to 2048 characters, with a
    /// scheme. Either this or `reference`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub uri: Option<String>,
    /// The external dataset's digest, when known; only with `uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256Digest>,
}

/// The tool that made a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Producer {
    /// E.g. `torchrun`, `kiln-distill`: 1 to 64 characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// E.g. `2.5.1`: 1 to 64 characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub version: String,
}

/// Where a version came from, as recorded at its push: references as given, each kiln dataset's files as
/// they were then. `status` is read when the version is shown (absent in manifests).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Lineage {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<LineageParent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub datasets: Vec<LineageDataset>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<Producer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = hyperparameters_schema)]
    pub hyperparameters: Option<Hyperparameters>,
}

/// A version this one was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LineageParent {
    /// `namespace/model:version`, as it was when this version was pushed.
    pub reference: String,
    pub role: String,
    /// The parent's status now; absent when it has been deleted since (its reference stays), and in a
    /// manifest, which signs only what was fixed at push.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<VersionStatus>,
}

/// A dataset this version was made from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LineageDataset {
    /// A kiln version holding the dataset, `namespace/model:version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// An external dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The external dataset's digest, as the push gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Sha256Digest>,
    /// A kiln dataset's files (path, digest, size) when this version was pushed: the exact bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
    /// A kiln dataset version's status now; absent when it has been deleted since, and in a manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<VersionStatus>,
}

/// How a derived version names this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LineageLink {
    Parent,
    Dataset,
}

impl LineageLink {
    pub fn as_str(self) -> &'static str {
        match self {
            LineageLink::Parent => "parent",
            LineageLink::Dataset => "dataset",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "parent" => Some(LineageLink::Parent),
            "dataset" => Some(LineageLink::Dataset),
            _ => None,
        }
    }
}

/// A version whose lineage names this one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DerivedVersion {
    /// `namespace/model:version`.
    pub reference: String,
    /// As a parent or as a dataset.
    pub link: LineageLink,
    /// The parent's role (`teacher`, `base`, ...); `dataset` for a dataset.
    pub role: String,
}

/// What is wrong with a lineage, and where: `field` is its path in the request (`lineage.parents[0].role`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct LineageProblem {
    pub field: String,
    pub message: String,
}

impl LineageRequest {
    pub const MAX_PARENTS: usize = 16;
    pub const MAX_DATASETS: usize = 16;
    pub const MAX_REFERENCE_CHARS: usize = 512;
    pub const MAX_ROLE_CHARS: usize = 32;
    pub const MAX_URI_CHARS: usize = 2048;
    pub const MAX_RUN_CHARS: usize = 2048;
    pub const MAX_PRODUCER_CHARS: usize = 64;
    pub const MAX_HYPERPARAMETERS: usize = 64;
    pub const MAX_HYPERPARAMETER_NAME_CHARS: usize = 64;
    pub const MAX_HYPERPARAMETER_TEXT_CHARS: usize = 256;
    /// A kiln dataset with more files than this cannot be pinned file by file in a manifest.
    pub const MAX_DATASET_FILES: usize = 1000;
}

impl Lineage {
    /// The request this lineage was recorded from: what a re-commit of the version is compared with.
    pub fn as_request(&self) -> LineageRequest {
        LineageRequest {
            parents: self
                .parents
                .iter()
                .map(|p| ParentRequest {
                    reference: p.reference.clone(),
                    role: p.role.clone(),
                })
                .collect(),
            datasets: self
                .datasets
                .iter()
                .map(|d| DatasetRequest {
                    reference: d.reference.clone(),
                    uri: d.uri.clone(),
                    sha256: d.sha256,
                })
                .collect(),
            training_run: self.training_run.clone(),
            producer: self.producer.clone(),
            hyperparameters: self.hyperparameters.clone(),
        }
    }

    /// The lineage without what is read at showing time (statuses): what a manifest signs.
    pub fn as_recorded(&self) -> Lineage {
        let mut recorded = self.clone();
        recorded.parents.iter_mut().for_each(|p| p.status = None);
        recorded.datasets.iter_mut().for_each(|d| d.status = None);
        recorded
    }
}
/// Hyperparameters as the server takes them: an object of at most 64 scalars.
fn hyperparameters_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type};
    let value = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(LineageRequest::MAX_HYPERPARAMETER_TEXT_CHARS)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Number))
        .item(ObjectBuilder::new().schema_type(Type::Boolean));
    let name = ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(NO_CONTROL_PATTERN))
        .min_length(Some(1))
        .max_length(Some(LineageRequest::MAX_HYPERPARAMETER_NAME_CHARS));
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .additional_properties(Some(Schema::OneOf(value.build())))
        .property_names(Some(name))
        .max_properties(Some(LineageRequest::MAX_HYPERPARAMETERS))
        .description(Some(
            "At most 64 hyperparameters by name (1-64 characters), each a string (at most 256 characters), a number or a boolean.",
        ))
        .build()
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(value: serde_json::Value) -> LineageRequest {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_full_lineage_passes_and_reads_back_as_its_request() {
        let lineage = request(json!({
            "parents": [{"reference": "acme/teacher:1.0", "role": "teacher"},
                        {"reference": "acme/teacher:1.0", "role": "fine-tuned-from"}],
            "datasets": [{"reference": "acme/web-text:2024-05"},
                         {"uri": "s3://corpus/shard-*.parquet", "sha256": format!("sha256:{}", "a".repeat(64))}],
            "training_run": "https://ci.example/runs/42",
            "producer": {"name": "torchrun", "version": "2.5.1"},
            "hyperparameters": {"lr": 3e-4, "steps": 10000, "fused": true, "schedule": "cosine"},
        }));
        lineage.check().unwrap();
        let recorded: Lineage =
            serde_json::from_value(serde_json::to_value(&lineage).unwrap()).unwrap();
        assert_eq!(recorded.as_request(), lineage);
    }

    #[test]
    fn a_manifest_signs_no_status() {
        let lineage = Lineage {
            parents: vec![LineageParent {
                reference: "a/p:1".into(),
                role: "base".into(),
                status: Some(VersionStatus::Ready),
            }],
            ..Lineage::default()
        };
        let recorded = serde_json::to_value(lineage.as_recorded()).unwrap();
        assert_eq!(
            recorded,
            json!({"parents": [{"reference": "a/p:1", "role": "base"}]})
        );
    }
}
