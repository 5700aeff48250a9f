//! The `optimize` job: the `onnx` variant optimized by every pass, then the variants the push asked for
//! (default fp32, fp16, int8), each validated against the `onnx` model on the same generated inputs and
//! stored as `deployable` or `rejected` with its numbers.

use std::path::{Path, PathBuf};

use kiln_core::Sha256Digest;
use kiln_core::api::{PipelineOptions, VariantStatus};
use kiln_onnx::ModelError;
use kiln_onnx::variants::{DEFAULT_VARIANTS, VariantKind};
use serde_json::json;

use super::{JobContext, JobError};
use crate::db::now;
use crate::db::records::{PipelineJobRow, VariantFileRow, VariantRow};
use crate::db::repos::{blobs, variants};
use crate::services::version_view::signature_of;

/// One variant made and judged, with its files on local disk.
struct Made {
    name: String,
    status: VariantStatus,
    checked: kiln_onnx::model_check::CheckedModel,
    validation: serde_json::Value,
    files: Vec<(String, PathBuf)>,
}

fn blocking_failure(e: ModelError) -> JobError {
    match e {
        ModelError::Io(message) => JobError::Transient(message),
        ModelError::UnsupportedOp(ops) => JobError::Refused(format!(
            "cannot validate: op {ops} is not implemented by kiln's evaluator; no optimized variants were made"
        )),
        other => JobError::Refused(other.to_string()),
    }
}

/// Places the `onnx` variant's files under `dir` at their paths (the model finds its external data by
/// relative path): links to the local store's blobs, or downloads from S3.
async fn materialize(
    context: &JobContext,
    files: &[VariantFileRow],
    dir: &Path,
) -> Result<(), JobError> {
    for file in files {
        let target = dir.join(&file.path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| JobError::Transient(e.to_string()))?;
        }
        let digest: Sha256Digest = file
            .digest
            .parse()
            .map_err(|e| JobError::Transient(format!("{e}")))?;
        match context.store.local_blob_path(&digest) {
            Some(blob) => std::os::unix::fs::symlink(&blob, &target)
                .map_err(|e| JobError::Transient(e.to_string()))?,
            None => context.store.download_to(&digest, &target).await?,
        }
    }
    Ok(())
}

/// The pushed sample inputs, checked against the model's inputs.
fn pushed_inputs(
    path: &Path,
    model: &kiln_onnx::proto::ModelProto,
) -> Result<
    (
        std::collections::HashMap<String, candle_core::Tensor>,
        String,
    ),
    ModelError,
> {
    let tensors: std::collections::HashMap<String, candle_core::Tensor> =
        candle_core::safetensors::load(path, &candle_core::Device::Cpu)
            .map_err(|e| {
                ModelError::InvalidModel(format!("{}: {e}", kiln_onnx::convert::SAMPLE_INPUTS))
            })?
            .into_iter()
            .collect();
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| ModelError::InvalidModel("no graph".to_owned()))?;
    let initializers: std::collections::HashSet<&str> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    let mut described = Vec::new();
    for input in graph
        .input
        .iter()
        .filter_map(|v| v.name.as_deref())
        .filter(|n| !initializers.contains(n))
    {
        let tensor = tensors.get(input).ok_or_else(|| {
            ModelError::InvalidModel(format!(
                "{} has no tensor named {input:?}, an input of the model",
                kiln_onnx::convert::SAMPLE_INPUTS
            ))
        })?;
        described.push(format!("{input} {:?}", tensor.dims()));
    }
    Ok((
        tensors,
        format!(
            "pushed in {}: {}",
            kiln_onnx::convert::SAMPLE_INPUTS,
            described.join(", ")
        ),
    ))
}

fn make_variants(
    model_file: &Path,
    sample_inputs: Option<&Path>,
    out_dir: &Path,
    kinds: &[(VariantKind, f64)],
) -> Result<(Vec<Made>, serde_json::Value), ModelError> {
    let mut model = kiln_onnx::model_check::decode(std::fs::read(model_file)?.into())?;
    let base = model_file.parent().unwrap_or(Path::new("."));
    kiln_onnx::model_writer::internalize(&mut model, base)?;
    let original = kiln_onnx::eval::Session::new(&model, None, &candle_core::Device::Cpu)?;
    let (inputs, described) = match sample_inputs {
        Some(path) => pushed_inputs(path, &model)?,
        None => kiln_onnx::variants::inputs::generate(&model)?,
    };
    let mut optimized = model.clone();
    let reports = kiln_onnx::optimize::optimize(&mut optimized)?;
    let passes = serde_json::to_value(&reports).expect("reports serialize");
    let mut made = Vec::new();
    let mut skipped = Vec::new();
    for &(kind, tolerance) in kinds {
        // One variant that cannot be made or checked is reported, and the others are still made.
        let variant = match kind
            .make(&optimized)
            .and_then(|v| kiln_onnx::model_check::check_model(&v).map(|checked| (v, checked)))
        {
            Ok(made) => made,
            Err(e) => {
                skipped
                    .push(serde_json::json!({ "variant": kind.name(), "reason": e.to_string() }));
                continue;
            }
        };
        let (variant, checked) = variant;
        let (passed, validation) = match kiln_onnx::variants::validate(
            &original, &variant, &inputs, &described, tolerance,
        ) {
            Ok(v) => (
                v.passed,
                serde_json::to_value(&v).expect("validation serializes"),
            ),
            Err(e) => (
                false,
                serde_json::json!({
                    "passed": false,
                    "tolerance_rel_l2": tolerance,
                    "error": format!("the variant could not be evaluated: {e}"),
                }),
            ),
        };
        let dir = out_dir.join(kind.name());
        std::fs::create_dir_all(&dir)?;
        let mut variant = variant;
        let files = kiln_onnx::model_writer::write(
            &mut variant,
            &dir,
            "model.onnx",
            kiln_onnx::model_writer::MAX_INLINE_BYTES,
        )?;
        made.push(Made {
            name: kind.name(),
            status: if passed {
                VariantStatus::Deployable
            } else {
                VariantStatus::Rejected
            },
            checked,
            validation,
            files,
        });
    }
    Ok((
        made,
        serde_json::json!({ "passes": passes, "not_made": skipped }),
    ))
}

pub async fn run(
    context: &JobContext,
    job: &PipelineJobRow,
    owner: &str,
) -> Result<serde_json::Value, JobError> {
    let options: PipelineOptions = job
        .options
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| JobError::Refused(format!("pipeline options: {e}")))?
        .unwrap_or_default();
    let names = options
        .variants
        .clone()
        .unwrap_or_else(|| DEFAULT_VARIANTS.iter().map(|s| (*s).to_owned()).collect());
    let kinds: Vec<(VariantKind, f64)> = names
        .iter()
        .map(|name| {
            let kind = VariantKind::parse(name)
                .ok_or_else(|| JobError::Refused(format!("unknown variant {name:?}")))?;
            let tolerance = options
                .tolerances
                .as_ref()
                .and_then(|t| t.get(name))
                .copied()
                .unwrap_or(kind.default_tolerance());
            Ok((kind, tolerance))
        })
        .collect::<Result<_, JobError>>()?;
    let version_id = job.version_id.clone();
    let source = context
        .db
        .run(move |conn| Ok(variants::for_version(conn, &version_id)?))
        .await?
        .into_iter()
        .find(|(v, _)| v.name == "onnx")
        .ok_or_else(|| {
            JobError::Refused("the version has no onnx variant to optimize".to_owned())
        })?;
    let scratch = tempfile::Builder::new()
        .prefix("kiln-optimize-")
        .tempdir()
        .map_err(|e| JobError::Transient(e.to_string()))?;
    let source_dir = scratch.path().join("source");
    materialize(context, &source.1, &source_dir).await?;
    let model_file = source_dir.join(&source.0.model_path);
    let version_id = job.version_id.clone();
    let sample_row = context
        .db
        .run(move |conn| {
            Ok(crate::db::repos::versions::find_file(
                conn,
                &version_id,
                kiln_onnx::convert::SAMPLE_INPUTS,
            )?)
        })
        .await?;
    let sample_inputs = match sample_row {
        Some(row) => {
            let target = scratch.path().join(kiln_onnx::convert::SAMPLE_INPUTS);
            let digest: Sha256Digest = row
                .digest
                .parse()
                .map_err(|e| JobError::Transient(format!("{e}")))?;
            context.store.download_to(&digest, &target).await?;
            Some(target)
        }
        None => None,
    };
    let out_dir = scratch.path().join("variants");
    let (made, outcome) = tokio::task::spawn_blocking(move || {
        make_variants(&model_file, sample_inputs.as_deref(), &out_dir, &kinds)
    })
    .await
    .map_err(|e| JobError::Transient(format!("optimize task failed: {e}")))?
    .map_err(blocking_failure)?;
    let passes = outcome["passes"].clone();
    let mut rows = Vec::new();
    for variant in &made {
        let mut files = Vec::new();
        for (name, path) in &variant.files {
            let (digest, size) = context.store.put_file(path).await?;
            files.push(VariantFileRow {
                version_id: job.version_id.clone(),
                variant: variant.name.clone(),
                path: name.clone(),
                digest: digest.to_string(),
                size: size as i64,
            });
        }
        let signatures = |values: &[kiln_onnx::model_check::ValueSignature]| {
            serde_json::to_string(&values.iter().map(signature_of).collect::<Vec<_>>())
                .expect("signatures serialize")
        };
        rows.push((
            VariantRow {
                version_id: job.version_id.clone(),
                name: variant.name.clone(),
                status: variant.status.as_str().to_owned(),
                model_path: "model.onnx".to_owned(),
                opset: variant.checked.opset as i32,
                inputs: signatures(&variant.checked.inputs),
                outputs: signatures(&variant.checked.outputs),
                validation: Some(variant.validation.to_string()),
                created_at: now(),
                passes: Some(passes.to_string()),
            },
            files,
        ));
    }
    let summary: Vec<serde_json::Value> = made
        .iter()
        .map(|m| json!({ "variant": m.name, "status": m.status.as_str(), "rel_l2_error": m.validation["rel_l2_error"] }))
        .collect();
    let (held, owner) = (job.clone(), owner.to_owned());
    context
        .db
        .run(move |conn| {
            use diesel::Connection;
            for (_, files) in &rows {
                for file in files {
                    blobs::record(conn, &file.digest, file.size)?;
                }
            }
            conn.transaction(|conn| {
                super::keep_holding(conn, &held, &owner)?;
                for (row, files) in &rows {
                    variants::replace(conn, row, files)?;
                }
                Ok(())
            })
        })
        .await?;
    Ok(json!({ "passes": passes, "variants": summary, "not_made": outcome["not_made"] }))
}
