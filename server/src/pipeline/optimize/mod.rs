//! The `optimize` job: the `onnx` variant optimized by every pass, then the variants the push asked for
//! (default fp32, fp16, int8; for a decoder also int8-b128 and int4; no fp32 for a 16-bit model), each
//! validated against the `onnx` model on the same inputs and stored as `deployable` or `rejected` with
//! its numbers.

use kiln_core::api::PipelineOptions;
use kiln_onnx::variants::VariantKind;
use serde_json::json;

use serde::{Deserialize, Serialize};

mod make;

pub(super) use make::make_variants;

use super::isolation::run_isolated;
use super::step::{StepOutput, StepRequest};
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

async fn run(
    context: &JobContext,
    held: &HeldJob,
    options: PipelineOptions,
) -> Result<serde_json::Value, JobError> {
    let job = &held.row;
    // The defaults depend on the model (a decoder's, a 16-bit model's), so the step decides them.
    let names = options.variants.clone();
    if names.as_ref().is_some_and(Vec::is_empty) {
        return Err(JobError::Skipped(
            "no variants were asked for (kiln push --variants none)".to_owned(),
        ));
    }
    for name in names.iter().flatten() {
        if VariantKind::parse(name).is_none() {
            return Err(JobError::Refused(format!("unknown variant {name:?}")));
        }
    }
    let tolerances: std::collections::BTreeMap<String, f64> = options
        .tolerances
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
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
        variants: names,
        tolerances,
        streamed_above_bytes: context.step_limits.streamed_above_bytes,
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
