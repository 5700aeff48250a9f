//! The `convert` job: the version's `onnx` variant. An ONNX upload is checked and becomes the variant as
//! pushed (same blobs, nothing rewritten); a Hugging Face checkpoint is converted, validated against a
//! reference forward pass, and stored as a new blob.

use kiln_core::api::{PipelineOptions, VariantStatus};
use kiln_onnx::convert::{self, Plan, SourceFile};
use serde::{Deserialize, Serialize};
use serde_json::json;

use std::path::{Path, PathBuf};

use super::isolation::run_isolated;
use super::step::{StepOutput, StepRequest};
use super::workspace::Workspace;
use super::{HeldJob, Job, JobContext, JobError, unexpected, variant_store};
use crate::db::records::{VariantFileRow, VariantRow, VersionFileRow};

const VARIANT: &str = "onnx";

/// The step after the scan; its payload is the push's options, passed on.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Convert {
    pub options: PipelineOptions,
}

impl Job for Convert {
    const KIND: &'static str = "convert";

    async fn run(
        self,
        context: &JobContext,
        held: &HeldJob,
    ) -> Result<serde_json::Value, JobError> {
        run(context, held).await
    }
}

/// What the job will store.
struct Outcome {
    variant: VariantRow,
    files: Vec<VariantFileRow>,
    report: serde_json::Value,
}

async fn run(context: &JobContext, held: &HeldJob) -> Result<serde_json::Value, JobError> {
    let job = &held.row;
    let (files, workspace) = Workspace::of_version(context, held.version_id()).await?;
    // Files stored only (flagged by the scan) are never opened again: the step does not get them.
    let version_id = held.version_id().to_owned();
    let flagged: Vec<String> = context
        .db
        .run(move |conn| crate::db::views::flagged_files(conn, &version_id))
        .await?
        .into_iter()
        .map(|f| f.path)
        .collect();
    let request = StepRequest::Convert {
        files: workspace
            .files
            .iter()
            .filter(|(path, _)| !flagged.contains(path))
            .cloned()
            .collect(),
        out_dir: workspace.scratch().join("converted"),
    };
    let outcome = match run_isolated(&context.step_limits, Convert::KIND, &request).await? {
        StepOutput::OnnxAsPushed {
            model,
            external,
            checked,
        } => onnx_upload(&job.version_id, &files, &model, &external, &checked)?,
        StepOutput::Converted {
            files,
            checked,
            validation,
            report,
        } => {
            let files =
                variant_store::upload_files(context, &job.version_id, VARIANT, &files).await?;
            Outcome {
                variant: variant_store::variant_row(
                    &job.version_id,
                    VARIANT,
                    VariantStatus::Deployable,
                    "model.onnx",
                    &checked,
                    Some(&validation),
                    None,
                ),
                files,
                report,
            }
        }
        _ => return Err(unexpected(Convert::KIND)),
    };
    variant_store::store(context, held, vec![(outcome.variant, outcome.files)]).await?;
    Ok(outcome.report)
}

/// Finds the model among the version's files; an ONNX model is its own variant, a checkpoint is converted
/// into `out_dir` and proven against its reference (in the step's child process).
pub(super) fn find_or_convert(
    files: &[(String, PathBuf)],
    out_dir: &Path,
) -> Result<StepOutput, JobError> {
    let sources = files
        .iter()
        .map(|(path, local)| {
            Ok(SourceFile {
                path: path.clone(),
                local: local.clone(),
                format: kiln_onnx::format::detect_file(local).map_err(crate::error::Error::from)?,
            })
        })
        .collect::<Result<Vec<_>, JobError>>()?;
    let plan = convert::plan(&sources).map_err(|e| match e {
        // A folder kiln has no converter for (a tokenizer, a dataset card) is stored and served as
        // pushed; conversion just does not apply to it.
        kiln_onnx::ModelError::Unsupported(_) => JobError::Skipped(format!("not converted: {e}")),
        other => JobError::from_model(other),
    })?;
    let checkpoint = match plan {
        Plan::Onnx {
            model,
            external,
            checked,
        } => {
            return Ok(StepOutput::OnnxAsPushed {
                model,
                external,
                checked,
            });
        }
        Plan::HuggingFace(checkpoint) => checkpoint,
    };
    std::fs::create_dir_all(out_dir).map_err(crate::error::Error::from)?;
    let converted = convert::convert_hf(&checkpoint, out_dir).map_err(JobError::from_model)?;
    let validation =
        serde_json::to_value(&converted.validation).map_err(crate::error::Error::from)?;
    Ok(StepOutput::Converted {
        report: json!({
            "source": "huggingface",
            "family": checkpoint.family.as_str(),
            "read": checkpoint.sources,
            "opset": converted.checked.opset,
            "nodes": converted.checked.nodes,
            "validation": validation,
        }),
        files: converted.files,
        checked: converted.checked,
        validation,
    })
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
        variant: variant_store::variant_row(
            version_id,
            VARIANT,
            VariantStatus::Deployable,
            model,
            checked,
            None,
            None,
        ),
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
