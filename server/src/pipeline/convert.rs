//! The `convert` job: the version's `onnx` variant. An ONNX upload is checked and becomes the variant as
//! pushed (same blobs, nothing rewritten); a Hugging Face checkpoint is converted, validated against a
//! reference forward pass, and stored as a new blob.

use kiln_onnx::ModelError;
use kiln_onnx::convert::{self, Plan, SourceFile};
use serde_json::json;

use super::workspace::Workspace;
use super::{JobContext, JobError};
use crate::db::now;
use crate::db::records::{PipelineJobRow, VariantFileRow, VariantRow, VersionFileRow};
use crate::db::repos::{blobs, variants, versions};
use crate::services::version_view::signature_of;

const VARIANT: &str = "onnx";

fn refusal(e: ModelError) -> JobError {
    match e {
        ModelError::Io(message) => JobError::Transient(message),
        other => JobError::Refused(other.to_string()),
    }
}

/// What the job will store.
struct Outcome {
    variant: VariantRow,
    files: Vec<VariantFileRow>,
    report: serde_json::Value,
}

pub async fn run(
    context: &JobContext,
    job: &PipelineJobRow,
    owner: &str,
) -> Result<serde_json::Value, JobError> {
    let version_id = job.version_id.clone();
    let files = context
        .db
        .run(move |conn| Ok(versions::files(conn, &version_id)?))
        .await?;
    let workspace = Workspace::materialize(&context.store, &files).await?;
    let scratch = workspace.scratch.path().to_owned();
    let sources = workspace
        .files
        .iter()
        .map(|(path, local)| {
            Ok(SourceFile {
                path: path.clone(),
                local: local.clone(),
                format: kiln_onnx::format::detect_file(local)
                    .map_err(|e| JobError::Transient(e.to_string()))?,
            })
        })
        .collect::<Result<Vec<_>, JobError>>()?;
    let plan = tokio::task::spawn_blocking(move || convert::plan(&sources))
        .await
        .map_err(|e| JobError::Transient(format!("convert task failed: {e}")))?
        .map_err(refusal)?;
    let outcome = match plan {
        Plan::Onnx {
            model,
            external,
            checked,
        } => onnx_upload(&job.version_id, &files, &model, &external, &checked)?,
        Plan::HuggingFace(checkpoint) => {
            let task_checkpoint = checkpoint.clone();
            let converted = tokio::task::spawn_blocking(move || {
                convert::convert_hf(&task_checkpoint, &scratch)
            })
            .await
            .map_err(|e| JobError::Transient(format!("convert task failed: {e}")))?
            .map_err(refusal)?;
            let mut files = Vec::with_capacity(converted.files.len());
            for (name, path) in &converted.files {
                let (digest, size) = context.store.put_file(path).await?;
                files.push(VariantFileRow {
                    version_id: job.version_id.clone(),
                    variant: VARIANT.to_owned(),
                    path: name.clone(),
                    digest: digest.to_string(),
                    size: size as i64,
                });
            }
            let validation = serde_json::to_value(&converted.validation)
                .map_err(|e| JobError::Transient(e.to_string()))?;
            Outcome {
                variant: variant_row(
                    &job.version_id,
                    "model.onnx",
                    &converted.checked,
                    Some(&validation),
                ),
                files,
                report: json!({
                    "source": "huggingface",
                    "family": checkpoint.family.as_str(),
                    "read": checkpoint.sources,
                    "opset": converted.checked.opset,
                    "nodes": converted.checked.nodes,
                    "validation": validation,
                }),
            }
        }
    };
    let report = outcome.report.clone();
    let (held, owner) = (job.clone(), owner.to_owned());
    context
        .db
        .run(move |conn| {
            use diesel::Connection;
            // Blob rows first and outside the transaction: recording a blob twice is a unique violation
            // that would abort a PostgreSQL transaction (and a blob row without a variant is harmless).
            for file in &outcome.files {
                blobs::record(conn, &file.digest, file.size)?;
            }
            conn.transaction(|conn| {
                super::keep_holding(conn, &held, &owner)?;
                Ok(variants::replace(conn, &outcome.variant, &outcome.files)?)
            })
        })
        .await?;
    Ok(report)
}

fn variant_row(
    version_id: &str,
    model_path: &str,
    checked: &kiln_onnx::model_check::CheckedModel,
    validation: Option<&serde_json::Value>,
) -> VariantRow {
    let signatures = |values: &[kiln_onnx::model_check::ValueSignature]| {
        serde_json::to_string(&values.iter().map(signature_of).collect::<Vec<_>>())
            .expect("signatures serialize")
    };
    VariantRow {
        version_id: version_id.to_owned(),
        name: VARIANT.to_owned(),
        status: kiln_core::api::VariantStatus::Deployable
            .as_str()
            .to_owned(),
        model_path: model_path.to_owned(),
        opset: checked.opset as i32,
        inputs: signatures(&checked.inputs),
        outputs: signatures(&checked.outputs),
        validation: validation.map(|v| v.to_string()),
        created_at: now(),
        passes: None,
    }
}

fn onnx_upload(
    version_id: &str,
    files: &[VersionFileRow],
    model: &str,
    external: &[String],
    checked: &kiln_onnx::model_check::CheckedModel,
) -> Result<Outcome, JobError> {
    let mut variant_files = Vec::new();
    for path in std::iter::once(model).chain(external.iter().map(String::as_str)) {
        let file = files
            .iter()
            .find(|f| f.path == path)
            .ok_or_else(|| JobError::Refused(format!("{path} is missing from the version")))?;
        variant_files.push(VariantFileRow {
            version_id: version_id.to_owned(),
            variant: VARIANT.to_owned(),
            path: path.to_owned(),
            digest: file.digest.clone(),
            size: file.size,
        });
    }
    Ok(Outcome {
        variant: variant_row(version_id, model, checked, None),
        files: variant_files,
        report: json!({
            "source": "onnx",
            "model": model,
            "external_data": external,
            "ir_version": checked.ir_version,
            "opset": checked.opset,
            "nodes": checked.nodes,
            "producer": checked.producer,
        }),
    })
}
