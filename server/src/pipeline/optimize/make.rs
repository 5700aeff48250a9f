//! The optimize step's work in its child process: the reference outputs, the optimized model and the
//! variants, each judged against the reference. Models too large to hold run streamed, and get the
//! variants made weight by weight.

use std::collections::BTreeMap;
use std::path::Path;

use kiln_core::api::VariantStatus;
use kiln_onnx::ModelError;
use kiln_onnx::variants::{Reference, VariantKind};

use crate::pipeline::JobError;
use crate::pipeline::step::{MadeVariant, StepOutput};

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

/// The original's outputs on the validation inputs, and the model optimized for the in-memory variants
/// (None when the model is too large to hold: then the reference ran streamed).
fn reference(
    model: &kiln_onnx::proto::ModelProto,
    base: &Path,
    sample_inputs: Option<&Path>,
    whole: bool,
) -> Result<
    (
        Reference,
        Option<kiln_onnx::proto::ModelProto>,
        serde_json::Value,
    ),
    ModelError,
> {
    if !whole {
        let (inputs, described) = match sample_inputs {
            Some(path) => pushed_inputs(path, model)?,
            None => kiln_onnx::variants::inputs::generate(model)?,
        };
        let reference = Reference::compute_streamed(model, base, inputs, described)?;
        let passes = serde_json::json!([]);
        return Ok((reference, None, passes));
    }
    let mut model = model.clone();
    kiln_onnx::model_writer::internalize(&mut model, base)?;
    // A classifier's ZipMap (no tensor) is left out of what is compared; the variants keep it.
    let original = kiln_onnx::eval::Session::new(
        &*kiln_onnx::optimize::tensor_outputs_only(&model)?,
        None,
        &candle_core::Device::Cpu,
    )?;
    let reference = match sample_inputs {
        Some(path) => {
            let (inputs, described) = pushed_inputs(path, &model)?;
            Reference::compute(&original, inputs, described)?
        }
        None => kiln_onnx::variants::inputs::reference_on_generated(&model, &original)?,
    };
    drop(original);
    let reports = kiln_onnx::optimize::optimize(&mut model)?;
    let passes = serde_json::to_value(&reports).expect("reports serialize");
    Ok((reference, Some(model), passes))
}

/// A variant written from the model's files weight by weight and judged streamed: the weight-only
/// ones always, fp16 for a model too large to hold.
fn from_files(
    model_file: &Path,
    out_dir: &Path,
    kind: VariantKind,
    reference: &Reference,
    tolerance: f64,
) -> Result<MadeVariant, ModelError> {
    let dir = out_dir.join(kind.name());
    std::fs::create_dir_all(&dir)?;
    let files = match kind {
        VariantKind::WeightOnly(how) => {
            kiln_onnx::variants::weight_only::write(model_file, &dir, how)?.0
        }
        VariantKind::Fp16 => kiln_onnx::variants::write_fp16_streamed(model_file, &dir)?,
        other => {
            return Err(ModelError::Unsupported(format!(
                "{} is made in memory only",
                other.name()
            )));
        }
    };
    let variant = kiln_onnx::model_check::decode(std::fs::read(&files[0].1)?.into())?;
    let checked = kiln_onnx::model_check::check_model(&variant)?;
    let (passed, validation) = verdict(
        reference.judge_streamed(&variant, &dir, tolerance),
        tolerance,
    );
    Ok(made(kind, passed, checked, validation, files))
}

/// A made variant, deployable when it passed its validation, rejected (kept with its numbers) when not.
fn made(
    kind: VariantKind,
    passed: bool,
    checked: kiln_onnx::model_check::CheckedModel,
    validation: serde_json::Value,
    files: Vec<(String, std::path::PathBuf)>,
) -> MadeVariant {
    MadeVariant {
        name: kind.name(),
        status: if passed {
            VariantStatus::Deployable
        } else {
            VariantStatus::Rejected
        },
        checked,
        validation,
        files,
    }
}

fn verdict(
    judged: Result<kiln_onnx::variants::VariantValidation, ModelError>,
    tolerance: f64,
) -> (bool, serde_json::Value) {
    match judged {
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
    }
}

/// Makes `kinds`. A model whose weights take more than `streamed_above_bytes` is not loaded whole: its
/// reference and variants are computed streamed (weights read when a node needs them), and only the
/// variants made weight by weight (fp16 and the weight-only ones) are made. The whole-model path holds
/// about five fp32 copies of the weights (docs/benchmarks.md: 2.2 GiB for BERT-base's 438 MB), hence
/// the default of an eighth of the step's memory.
fn make_all(
    model_file: &Path,
    model: &kiln_onnx::proto::ModelProto,
    (sample_inputs, out_dir): (Option<&Path>, &Path),
    kinds: &[(VariantKind, f64)],
    streamed_above_bytes: u64,
) -> Result<(Vec<MadeVariant>, serde_json::Value), ModelError> {
    let base = model_file.parent().unwrap_or(Path::new("."));
    let weight_bytes = kiln_onnx::model_check::initializer_bytes(model);
    let whole = weight_bytes <= streamed_above_bytes;
    let (reference, optimized, passes) = reference(model, base, sample_inputs, whole)?;
    let mut made = Vec::new();
    let mut skipped = Vec::new();
    for &(kind, tolerance) in kinds {
        let streamed = matches!(kind, VariantKind::WeightOnly(_))
            || (kind == VariantKind::Fp16 && optimized.is_none());
        if streamed {
            match from_files(model_file, out_dir, kind, &reference, tolerance) {
                Ok(variant) => made.push(variant),
                Err(e) => skipped
                    .push(serde_json::json!({ "variant": kind.name(), "reason": e.to_string() })),
            }
            continue;
        }
        let Some(optimized) = optimized.as_ref() else {
            let reason = format!(
                "the model's weights take {} MiB, more than the {} MiB made in memory \
                 (KILN_STREAMED_VARIANTS_ABOVE_MB); fp16 and the weight-only variants (int4, int8-bN) \
                 are made weight by weight",
                weight_bytes >> 20,
                streamed_above_bytes >> 20
            );
            skipped.push(serde_json::json!({ "variant": kind.name(), "reason": reason }));
            continue;
        };
        // One variant that cannot be made or checked is reported, and the others are still made.
        let variant = match kind
            .make(optimized)
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
        let (passed, validation) = verdict(reference.judge(&variant, tolerance), tolerance);
        let dir = out_dir.join(kind.name());
        std::fs::create_dir_all(&dir)?;
        let mut variant = variant;
        let files = kiln_onnx::model_writer::write(
            &mut variant,
            &dir,
            "model.onnx",
            kiln_onnx::model_writer::MAX_INLINE_BYTES,
        )?;
        made.push(self::made(kind, passed, checked, validation, files));
    }
    Ok((
        made,
        serde_json::json!({ "passes": passes, "not_made": skipped }),
    ))
}

/// Optimizes the model and makes the asked variants (`None`: the defaults for this model), each judged
/// against it (in the step's child process). `tolerances` replaces the variants' default tolerances.
pub(in crate::pipeline) fn make_variants(
    model_file: &Path,
    sample_inputs: Option<&Path>,
    out_dir: &Path,
    (variants, tolerances): (Option<&[String]>, &BTreeMap<String, f64>),
    streamed_above_bytes: u64,
) -> Result<StepOutput, JobError> {
    let model = kiln_onnx::model_check::decode(
        std::fs::read(model_file)
            .map_err(ModelError::from)
            .map_err(JobError::from_model)?
            .into(),
    )
    .map_err(JobError::from_model)?;
    let names = match variants {
        Some(names) => names.to_vec(),
        None => kiln_onnx::variants::default_variants(&model),
    };
    let kinds = names
        .iter()
        .map(|name| {
            VariantKind::parse(name)
                .map(|kind| {
                    let tolerance = tolerances.get(name).copied();
                    (kind, tolerance.unwrap_or(kind.default_tolerance()))
                })
                .ok_or_else(|| JobError::Refused(format!("unknown variant {name:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (made, outcome) = make_all(
        model_file,
        &model,
        (sample_inputs, out_dir),
        &kinds,
        streamed_above_bytes,
    )
    .map_err(blocking_failure)?;
    Ok(StepOutput::Optimized {
        made,
        passes: outcome["passes"].clone(),
        not_made: outcome["not_made"].clone(),
    })
}
