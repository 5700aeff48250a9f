//! The manifest document (docs/manifest.md): what a deployment system needs to pull exactly the bytes kiln
//! proved, and nothing it has to trust beyond the signature.

use chrono::{DateTime, Utc};
use kiln_core::AliasName;
use kiln_core::api::{FileEntry, VariantStatus, VersionDetail};
use kiln_core::deployment::{
    DeploymentManifest, ManifestFile, ManifestVariant, PipelineStep, Provenance,
};

pub struct Issue<'a> {
    pub issuer: &'a str,
    pub alias: Option<&'a AliasName>,
    pub sequence: i64,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub fn build(detail: &VersionDetail, issue: Issue<'_>) -> DeploymentManifest {
    let base = format!(
        "/api/v1/models/{}/{}/versions/{}",
        detail.namespace, detail.model, detail.version
    );
    let variants = detail
        .variants
        .iter()
        .filter(|v| v.status == VariantStatus::Deployable)
        .map(|v| ManifestVariant {
            name: v.name.clone(),
            origin: v.origin,
            sha256: v.digest,
            size: v.size,
            opset: v.opset,
            inputs: v.inputs.clone(),
            outputs: v.outputs.clone(),
            files: v
                .files
                .iter()
                .map(|f| manifest_file(f, &format!("{base}/variants/{}", v.name)))
                .collect(),
            validation: v.validation.clone(),
            passes: v.passes.clone(),
            benchmarks: v.benchmarks.clone(),
        })
        .collect();
    DeploymentManifest {
        iss: Some(issue.issuer.to_owned()),
        model: format!("{}/{}", detail.namespace, detail.model),
        version: detail.version.clone(),
        alias: issue.alias.cloned(),
        sequence: issue.sequence,
        issued_at: issue.issued_at,
        expires_at: issue.expires_at,
        iat: issue.issued_at.timestamp(),
        exp: issue.expires_at.timestamp(),
        variants,
        sources: detail
            .files
            .iter()
            .map(|f| ManifestFile {
                flagged: detail
                    .flagged
                    .iter()
                    .find(|flag| flag.path == f.path.as_str())
                    .map(|flag| format!("stored only, never loaded by kiln: {}", flag.reason)),
                ..manifest_file(f, &base)
            })
            .collect(),
        provenance: Provenance {
            kiln: env!("CARGO_PKG_VERSION").to_owned(),
            converter: format!("kiln-onnx {}", env!("CARGO_PKG_VERSION")),
            pipeline: detail
                .pipeline
                .iter()
                .map(|j| PipelineStep {
                    job: j.kind.clone(),
                    state: j.state.as_str().to_owned(),
                    finished_at: j.finished_at,
                })
                .collect(),
            runners: runners(detail),
        },
        // As recorded at push: statuses move, the signed document states only what was fixed then.
        lineage: detail.lineage.as_ref().map(|l| l.as_recorded()),
    }
}

/// The runners that measured the deployable variants, by name, once each.
fn runners(detail: &VersionDetail) -> Vec<String> {
    let names: std::collections::BTreeSet<&str> = detail
        .variants
        .iter()
        .filter(|v| v.status == VariantStatus::Deployable)
        .flat_map(|v| v.benchmarks.iter().map(|b| b.runner.as_str()))
        .collect();
    names.into_iter().map(str::to_owned).collect()
}

fn manifest_file(file: &FileEntry, under: &str) -> ManifestFile {
    ManifestFile {
        path: file.path.clone(),
        sha256: file.digest,
        size: file.size,
        uri: format!("{under}/files/{}", file.path),
        flagged: None,
    }
}
