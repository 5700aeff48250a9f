//! The `optimize` job: the `onnx` variant optimized by every pass, then the variants the push asked for
//! (default fp32, fp16, int8), each validated against the `onnx` model on the same generated inputs and
//! stored as `deployable` or `rejected` with its numbers.

use std::path::Path;

use kiln_core::api::{PipelineOptions, VariantStatus};
use kiln_onnx::ModelError;
use kiln_onnx::variants::{DEFAULT_VARIANTS, Reference, VariantKind};
use serde_json::json;

use serde::{Deserialize, Serialize};

use super::isolation::run_isolated;
use super::step::{MadeVariant, StepOutput, StepRequest};
use super::workspace::Workspace;
use super::{HeldJob, Job, JobContext, JobError, unexpected, variant_store};
use crate::db::repos::{variants, versions};

/// The last step on push: the variants the push's options ask for.
#[derive(Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Optimize {
    pub options: PipelineOptions,
}

impl Job for Optimize {
    const KIND: &'static str = "optimize";

    async fn run(
        self,
        context: &JobContext,
        held: &HeldJob,
    ) -> Result<serde_json::Value, JobError> {
        run(context, held, self.options).await
    }
}

fn blocking_failure(e: ModelError) -> JobError {
    match e {
        ModelError::UnsupportedOp(ops) => JobError::Skipped(format!(
            "cannot validate: op {ops} is not implemented by kiln's evaluator; no optimized variants \
             were made, and the onnx variant is served as pushed"
        )),
        other => JobError::from_model(other),
    }
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
    // A decoder's prompt alone is enough: the cache inputs of a first step are derived from it.
    let mut tensors = tensors;
    let derived = kiln_onnx::convert::decoder::complete_prompt_inputs(model, &mut tensors)?;
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
        if !derived.iter().any(|d| d == input) {
            described.push(format!("{input} {:?}", tensor.dims()));
        }
    }
    let mut description = format!(
        "pushed in {}: {}",
        kiln_onnx::convert::SAMPLE_INPUTS,
        described.join(", ")
    );
    if !derived.is_empty() {
        description.push_str(&format!(
            "; derived for a prompt with an empty cache: {}",
            kiln_onnx::convert::decoder::summarize(&derived)
        ));
    }
    Ok((tensors, description))
}

fn make_all(
    model_file: &Path,
    sample_inputs: Option<&Path>,
    out_dir: &Path,
    kinds: &[(VariantKind, f64)],
) -> Result<(Vec<MadeVariant>, serde_json::Value), ModelError> {
    let mut model = kiln_onnx::model_check::decode(std::fs::read(model_file)?.into())?;
    let base = model_file.parent().unwrap_or(Path::new("."));
    kiln_onnx::model_writer::internalize(&mut model, base)?;
    let original = kiln_onnx::eval::Session::new(&model, None, &candle_core::Device::Cpu)?;
    let reference = match sample_inputs {
        Some(path) => {
            let (inputs, described) = pushed_inputs(path, &model)?;
            Reference::compute(&original, inputs, described)?
        }
        None => kiln_onnx::variants::inputs::reference_on_generated(&model, &original)?,
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
        let (passed, validation) = match reference.judge(&variant, tolerance) {
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
        made.push(MadeVariant {
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

async fn run(
    context: &JobContext,
    held: &HeldJob,
    options: PipelineOptions,
) -> Result<serde_json::Value, JobError> {
    let job = &held.row;
    let names = options
        .variants
        .clone()
        .unwrap_or_else(|| DEFAULT_VARIANTS.iter().map(|s| (*s).to_owned()).collect());
    if names.is_empty() {
        return Err(JobError::Skipped(
            "no variants were asked for (kiln push --variants none)".to_owned(),
        ));
    }
    let mut variants = Vec::with_capacity(names.len());
    for name in &names {
        let kind = VariantKind::parse(name)
            .ok_or_else(|| JobError::Refused(format!("unknown variant {name:?}")))?;
        let tolerance = options
            .tolerances
            .as_ref()
            .and_then(|t| t.get(name))
            .copied()
            .unwrap_or(kind.default_tolerance());
        variants.push((name.clone(), tolerance));
    }
    let version_id = job.version_id.clone();
    let source = context
        .db
        .run(move |conn| Ok(variants::for_version(conn, &version_id)?))
        .await?
        .into_iter()
        .find(|(v, _)| v.name == "onnx")
        .ok_or_else(|| {
            JobError::Skipped(
                "nothing to optimize: the version has no ONNX model (see the convert step)"
                    .to_owned(),
            )
        })?;
    let version_id = job.version_id.clone();
    let sample = context
        .db
        .run(move |conn| {
            Ok(versions::find_file(
                conn,
                &version_id,
                kiln_onnx::convert::SAMPLE_INPUTS,
            )?)
        })
        .await?;
    // The onnx variant's files, and the pushed sample inputs beside them under their own name.
    const SAMPLE: &str = ".kiln/sample_inputs.safetensors";
    let workspace = Workspace::materialize(
        &context.store,
        source
            .1
            .iter()
            .map(|f| (f.path.clone(), f.digest.clone()))
            .chain(sample.iter().map(|f| (SAMPLE.to_owned(), f.digest.clone())))
            .collect(),
    )
    .await?;
    let request = StepRequest::Optimize {
        model_file: workspace.path(&source.0.model_path),
        sample_inputs: sample.is_some().then(|| workspace.path(SAMPLE)),
        out_dir: workspace.scratch().join("variants"),
        variants,
    };
    let StepOutput::Optimized {
        made,
        passes,
        not_made,
    } = run_isolated(&context.step_limits, Optimize::KIND, &request).await?
    else {
        return Err(unexpected(Optimize::KIND));
    };
    let mut rows = Vec::with_capacity(made.len());
    for variant in &made {
        let files =
            variant_store::upload_files(context, &job.version_id, &variant.name, &variant.files)
                .await?;
        let row = variant_store::variant_row(
            &job.version_id,
            &variant.name,
            variant.status,
            "model.onnx",
            &variant.checked,
            Some(&variant.validation),
            Some(&passes),
        );
        rows.push((row, files));
    }
    let summary: Vec<serde_json::Value> = made
        .iter()
        .map(|m| json!({ "variant": m.name, "status": m.status.as_str(), "rel_l2_error": m.validation["rel_l2_error"] }))
        .collect();
    variant_store::store(context, held, rows).await?;
    Ok(json!({ "passes": passes, "variants": summary, "not_made": not_made }))
}

/// Optimizes the model and makes the asked variants, each judged against it (in the step's child
/// process).
pub(super) fn make_variants(
    model_file: &Path,
    sample_inputs: Option<&Path>,
    out_dir: &Path,
    variants: &[(String, f64)],
) -> Result<StepOutput, JobError> {
    let kinds = variants
        .iter()
        .map(|(name, tolerance)| {
            VariantKind::parse(name)
                .map(|kind| (kind, *tolerance))
                .ok_or_else(|| JobError::Refused(format!("unknown variant {name:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (made, outcome) =
        make_all(model_file, sample_inputs, out_dir, &kinds).map_err(blocking_failure)?;
    Ok(StepOutput::Optimized {
        made,
        passes: outcome["passes"].clone(),
        not_made: outcome["not_made"].clone(),
    })
}
