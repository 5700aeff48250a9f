//! The manifest document (docs/manifest.md): what a deployment system needs to pull exactly the bytes kiln
//! proved, and nothing it has to trust beyond the signature.

use chrono::{DateTime, Utc};
use kiln_core::api::{VariantStatus, VersionDetail};
use serde_json::{Value, json};

pub fn build(
    detail: &VersionDetail,
    sequence: i64,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Value {
    let base = format!(
        "/api/v1/models/{}/{}/versions/{}",
        detail.namespace, detail.model, detail.version
    );
    let variants: Vec<Value> = detail
        .variants
        .iter()
        .filter(|v| v.status == VariantStatus::Deployable)
        .map(|v| {
            json!({
                "name": v.name,
                "sha256": v.digest,
                "size": v.size,
                "opset": v.opset,
                "inputs": v.inputs,
                "outputs": v.outputs,
                "files": v.files.iter().map(|f| json!({
                    "path": f.path,
                    "sha256": f.digest,
                    "size": f.size,
                    "uri": format!("{base}/variants/{}/files/{}", v.name, f.path),
                })).collect::<Vec<_>>(),
                "validation": v.validation,
                "passes": v.passes,
                "benchmarks": [],
            })
        })
        .collect();
    json!({
        "model": format!("{}/{}", detail.namespace, detail.model),
        "version": detail.version,
        "alias": Value::Null,
        "sequence": sequence,
        "issued_at": issued_at.to_rfc3339(),
        "expires_at": expires_at.to_rfc3339(),
        // The registered JWT claims, so any JOSE library checks expiry on its own.
        "iat": issued_at.timestamp(),
        "exp": expires_at.timestamp(),
        "variants": variants,
        "sources": detail.files.iter().map(|f| json!({ "path": f.path, "sha256": f.digest, "size": f.size })).collect::<Vec<_>>(),
        "provenance": {
            "kiln": env!("CARGO_PKG_VERSION"),
            "converter": format!("kiln-onnx {}", env!("CARGO_PKG_VERSION")),
            "pipeline": detail.pipeline.iter().map(|j| json!({ "job": j.kind, "state": j.state, "finished_at": j.finished_at })).collect::<Vec<_>>(),
        },
    })
}
