//! Measuring one variant the way trtexec and onnxruntime_perf_test do: load once with the weights resident
//! on the device, warm up, then time iterations with the device synchronised before the clock is read;
//! report p50/p90/p99 and throughput per batch size and sequence length, and peak memory. Two engines:
//! kiln's own evaluator ([`kiln`], needs nothing installed) and ONNX Runtime ([`onnxruntime`], loaded at
//! run time from the library `scripts/fetch-onnxruntime.sh` unpacks).

pub mod kiln;
mod memory;
pub mod onnxruntime;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use candle_core::Device;
use kiln_core::deployment::BenchmarkResult;
use kiln_core::runners::EngineInfo;
use kiln_onnx::proto::ModelProto;
use kiln_onnx::proto::tensor_proto::DataType;
use kiln_onnx::proto::tensor_shape_proto::dimension::Value as DimValue;
use kiln_onnx::proto::type_proto;
use prost::Message;

use crate::device::DeviceInfo;

/// How long and how hard to measure.
#[derive(Debug, Clone)]
pub struct Settings {
    pub warmup: u32,
    /// At least this many timed iterations...
    pub min_iterations: u32,
    /// ...and at most this many, stopping earlier once `time_budget` is spent.
    pub max_iterations: u32,
    pub time_budget: Duration,
    /// Batch sizes for models with a symbolic batch dim (those without run their own), unless the push
    /// asked for others.
    pub batch_sizes: Vec<usize>,
    /// Sequence lengths for models with token inputs, unless the push asked for others; capped at the
    /// longest sequence a model converted by kiln declares.
    pub sequence_lengths: Vec<usize>,
    /// The size given to other symbolic dims (image sides, a model without token inputs).
    pub symbolic_size: usize,
    /// CPU threads the engine runs on (kiln: a rayon pool of this size; ONNX Runtime: its intra-op pool).
    pub threads: usize,
    /// Whether ONNX Runtime's intra-op threads spin while they wait for work (its default): faster to
    /// wake, but an idle pool keeps its cores busy, which a CPU-limited container pays for.
    pub intra_op_spinning: bool,
    /// Report the process's peak resident set as the memory of CPU runs (a standalone runner); the server's
    /// embedded runner cannot tell its own memory from the server's and reports none.
    pub process_memory: bool,
}

/// The sequence length runners measure token models at unless told otherwise.
pub const DEFAULT_SEQUENCE_LENGTH: usize = 128;

impl Default for Settings {
    fn default() -> Self {
        Self {
            warmup: 5,
            min_iterations: 10,
            max_iterations: 200,
            time_budget: Duration::from_secs(3),
            batch_sizes: vec![1, 8],
            sequence_lengths: vec![DEFAULT_SEQUENCE_LENGTH],
            symbolic_size: 16,
            threads: 1,
            intra_op_spinning: true,
            process_memory: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The variant cannot run on this engine (an operator it lacks, an input it cannot make): final.
    #[error("{0}")]
    Unsupported(String),
    /// The device or the machine failed; another try may succeed.
    #[error("{0}")]
    Device(String),
}

impl From<candle_core::Error> for EngineError {
    fn from(e: candle_core::Error) -> Self {
        EngineError::Device(e.to_string())
    }
}

/// An engine this runner measures with.
#[derive(Clone)]
pub enum Engine {
    /// kiln's evaluator on candle.
    Kiln,
    /// ONNX Runtime, its library loaded once per process.
    OnnxRuntime(Arc<onnxruntime::Runtime>),
}

impl Engine {
    /// The name jobs are queued under and results carry.
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Kiln => EngineInfo::KILN,
            Engine::OnnxRuntime(_) => EngineInfo::ONNXRUNTIME,
        }
    }

    /// How the runner registers it on `device` (`cpu` or `cuda:N`).
    pub fn info(&self, device: &str) -> EngineInfo {
        match self {
            Engine::Kiln => EngineInfo {
                name: EngineInfo::KILN.to_owned(),
                version: kiln::version(),
                execution_providers: vec![kiln::provider(device).to_owned()],
            },
            Engine::OnnxRuntime(runtime) => EngineInfo {
                name: EngineInfo::ONNXRUNTIME.to_owned(),
                version: runtime.version().to_owned(),
                execution_providers: runtime.providers_for(device),
            },
        }
    }
}

/// The engines named on a command line (`kiln`, `ort`), ONNX Runtime loaded from `library` when asked for.
pub fn open(names: &[String], library: Option<&Path>, device: &str) -> Result<Vec<Engine>, String> {
    let mut engines: Vec<Engine> = Vec::new();
    for name in names {
        let engine = match name.as_str() {
            "kiln" => Engine::Kiln,
            "ort" | "onnxruntime" => {
                let Some(library) = library else {
                    return Err(
                        "--engine ort needs ONNX Runtime's shared library: run scripts/fetch-onnxruntime.sh \
                         and pass the path it prints as --onnxruntime-lib PATH (or KILN_ONNXRUNTIME_LIB)"
                            .to_owned(),
                    );
                };
                let runtime = onnxruntime::Runtime::load(library)?;
                runtime.check_device(device)?;
                Engine::OnnxRuntime(Arc::new(runtime))
            }
            other => {
                return Err(format!(
                    "--engine {other:?}: use kiln or ort (several with commas, e.g. kiln,ort)"
                ));
            }
        };
        if engines.iter().any(|e| e.name() == engine.name()) {
            return Err(format!("--engine lists {name} twice"));
        }
        engines.push(engine);
    }
    if engines.is_empty() {
        return Err("--engine needs at least one engine: kiln or ort".to_owned());
    }
    Ok(engines)
}

/// The shapes one job measures at: batch sizes and sequence lengths, the push's when it gave them.
#[derive(Debug, Clone, Default)]
pub struct Requested {
    pub batch_sizes: Vec<usize>,
    pub sequence_lengths: Vec<usize>,
}

/// One shape to measure at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// The batch; 0 when the model fixes its own.
    pub batch: usize,
    /// The size of the other symbolic dims.
    pub rest: usize,
    /// Set for models with token inputs: `rest` is their sequence length.
    pub sequence: Option<usize>,
}

/// Measures the model at `model_path` (its external data beside it) with `engine` on `device`.
pub fn benchmark(
    engine: &Engine,
    model_path: &Path,
    device: &Device,
    info: &DeviceInfo,
    runner: &str,
    (settings, requested): (&Settings, &Requested),
    cancel: &AtomicBool,
) -> Result<Vec<BenchmarkResult>, EngineError> {
    let bytes = std::fs::read(model_path)
        .map_err(|e| EngineError::Device(format!("{}: {e}", model_path.display())))?;
    let model = ModelProto::decode(bytes.as_slice())
        .map_err(|e| EngineError::Unsupported(format!("not an ONNX model: {e}")))?;
    let shapes = shapes(&model, settings, requested);
    let on_cpu = matches!(device, Device::Cpu);
    if on_cpu && settings.process_memory {
        memory::reset_process_peak();
    }
    let mut results = match engine {
        Engine::Kiln => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(settings.threads.max(1))
                .build()
                .map_err(|e| {
                    EngineError::Device(format!("cannot start {} threads: {e}", settings.threads))
                })?;
            pool.install(|| kiln::measure(&model, model_path, device, settings, &shapes, cancel))?
        }
        Engine::OnnxRuntime(runtime) => onnxruntime::measure(
            runtime,
            model_path,
            (device, &info.device),
            settings,
            &model,
            &shapes,
            cancel,
        )?,
    };
    let engine_info = engine.info(&info.device);
    for result in &mut results {
        result.device.clone_from(&info.device);
        result.device_name.clone_from(&info.device_name);
        result.driver.clone_from(&info.driver);
        result.engine = engine_info.name.clone();
        result.engine_version = Some(engine_info.version.clone());
        result.threads = on_cpu.then_some(settings.threads as u32);
        result.runner = runner.to_owned();
        if on_cpu {
            result.peak_memory_bytes = settings.process_memory.then(memory::process_peak).flatten();
        }
    }
    Ok(results)
}

/// The shapes to measure `model` at: each batch size (when the model has a symbolic batch) by each
/// sequence length (when it has token inputs), at most 16 (what a report carries).
pub fn shapes(model: &ModelProto, settings: &Settings, requested: &Requested) -> Vec<Shape> {
    let batches: Vec<usize> = if !has_batch_dim(model) {
        vec![0]
    } else if requested.batch_sizes.is_empty() {
        settings.batch_sizes.clone()
    } else {
        requested.batch_sizes.clone()
    };
    let sequences: Vec<Option<usize>> = if !has_token_inputs(model) {
        vec![None]
    } else if requested.sequence_lengths.is_empty() {
        // The runner's defaults stay within what the model can take; a length the push asked for is
        // measured as asked (and fails with the engine's error when the model cannot take it).
        let cap = max_sequence(model).unwrap_or(usize::MAX);
        let mut lengths: Vec<usize> = settings
            .sequence_lengths
            .iter()
            .map(|&l| l.min(cap))
            .collect();
        lengths.sort_unstable();
        lengths.dedup();
        lengths.into_iter().map(Some).collect()
    } else {
        requested
            .sequence_lengths
            .iter()
            .copied()
            .map(Some)
            .collect()
    };
    let mut shapes = Vec::new();
    for &batch in &batches {
        for &sequence in &sequences {
            shapes.push(Shape {
                batch,
                rest: sequence.unwrap_or(settings.symbolic_size),
                sequence,
            });
        }
    }
    shapes.truncate(16);
    shapes
}

/// The longest sequence a model kiln converted can be measured at: its position table; a decoder's
/// forward pass takes a past of the same length (twice the positions) and its generation adds tokens.
fn max_sequence(model: &ModelProto) -> Option<usize> {
    let declared: usize = model
        .metadata_props
        .iter()
        .find(|p| p.key.as_deref() == Some(kiln_onnx::convert::MAX_SEQUENCE_KEY))?
        .value
        .as_deref()?
        .parse()
        .ok()?;
    let longest = if crate::generation::cache_inputs(model).is_some() {
        (declared / 2).min(declared.saturating_sub(crate::generation::GENERATED_TOKENS))
    } else {
        declared
    };
    Some(longest.max(1))
}

/// The graph's inputs that are not initializers, with their tensor types.
fn graph_inputs(model: &ModelProto) -> Vec<&type_proto::Tensor> {
    let Some(graph) = &model.graph else {
        return Vec::new();
    };
    let initializers: std::collections::HashSet<&str> = graph
        .initializer
        .iter()
        .filter_map(|t| t.name.as_deref())
        .collect();
    graph
        .input
        .iter()
        .filter(|i| !initializers.contains(i.name.as_deref().unwrap_or("")))
        .filter_map(|i| match i.r#type.as_ref()?.value.as_ref()? {
            type_proto::Value::TensorType(t) => Some(t),
            _ => None,
        })
        .collect()
}

fn symbolic(dim: &kiln_onnx::proto::tensor_shape_proto::Dimension) -> bool {
    !matches!(dim.value, Some(DimValue::DimValue(v)) if v > 0)
}

/// Whether any graph input has a symbolic (or unknown) first dim: a batch to vary.
fn has_batch_dim(model: &ModelProto) -> bool {
    graph_inputs(model).iter().any(|t| {
        t.shape
            .as_ref()
            .and_then(|s| s.dim.first())
            .is_some_and(symbolic)
    })
}

/// Whether the model takes tokens: an integer input with a symbolic dim after the batch (ids, masks).
fn has_token_inputs(model: &ModelProto) -> bool {
    graph_inputs(model).iter().any(|t| {
        let integer = [DataType::Int64 as i32, DataType::Int32 as i32].contains(&t.elem_type());
        integer
            && t.shape
                .as_ref()
                .is_some_and(|s| s.dim.iter().skip(1).any(symbolic))
    })
}

/// Latency percentiles by nearest rank over the sorted samples (milliseconds).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The timed iterations: at least `min_iterations`, then until `max_iterations` or the time budget;
/// `after_each` runs outside the clock (a device memory probe). Returns the sorted latencies (ms).
pub fn timed(
    settings: &Settings,
    mut run: impl FnMut() -> Result<(), EngineError>,
    mut after_each: impl FnMut(),
) -> Result<Vec<f64>, EngineError> {
    let mut samples = Vec::new();
    let started = Instant::now();
    while (samples.len() as u32) < settings.min_iterations
        || ((samples.len() as u32) < settings.max_iterations
            && started.elapsed() < settings.time_budget)
    {
        let t0 = Instant::now();
        run()?;
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        after_each();
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples)
}

/// A result with the timing filled in; the caller adds what the device and engine say about themselves.
pub fn result(
    shape: Shape,
    input_shapes: std::collections::BTreeMap<String, Vec<i64>>,
    warmup: u32,
    samples: &[f64],
) -> BenchmarkResult {
    let batch_size = if shape.batch == 0 {
        input_shapes
            .values()
            .next()
            .and_then(|s| s.first().copied())
            .unwrap_or(1)
    } else {
        shape.batch as i64
    };
    let p50 = percentile(samples, 50.0);
    BenchmarkResult {
        device: String::new(),
        device_name: String::new(),
        driver: None,
        engine: String::new(),
        engine_version: None,
        execution_provider: None,
        engine_options: Default::default(),
        threads: None,
        batch_size,
        sequence_length: shape.sequence.map(|s| s as i64),
        input_shapes,
        warmup_iterations: warmup.max(1),
        iterations: samples.len() as u32,
        p50_ms: p50,
        p90_ms: percentile(samples, 90.0),
        p99_ms: percentile(samples, 99.0),
        throughput: batch_size as f64 / (p50 / 1000.0),
        peak_memory_bytes: None,
        max_abs_error: None,
        runner: String::new(),
        measured_at: chrono::Utc::now(),
        generation: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), 50.0);
        assert_eq!(percentile(&samples, 90.0), 90.0);
        assert_eq!(percentile(&samples, 99.0), 99.0);
        assert_eq!(percentile(&[3.0], 99.0), 3.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn token_models_get_sequence_lengths_capped_by_their_position_table_unless_asked() {
        let sample = kiln_onnx::sample_models::bert(50, 16, 1, 2).unwrap();
        let weights = kiln_onnx::checkpoint::Checkpoint::from_tensors(sample.tensors);
        let model = kiln_onnx::convert::bert::build(&sample.config, &weights).unwrap();
        let settings = Settings::default();
        let by_default = shapes(&model, &settings, &Requested::default());
        let pairs: Vec<_> = by_default.iter().map(|s| (s.batch, s.sequence)).collect();
        assert_eq!(pairs, [(1, Some(64)), (8, Some(64))], "64 positions");
        let asked = Requested {
            batch_sizes: vec![2],
            sequence_lengths: vec![8, 32],
        };
        let pairs: Vec<_> = shapes(&model, &settings, &asked)
            .iter()
            .map(|s| (s.batch, s.rest, s.sequence))
            .collect();
        assert_eq!(pairs, [(2, 8, Some(8)), (2, 32, Some(32))]);
        let mlp = kiln_onnx::sample_models::mlp_graph(false);
        let pairs: Vec<_> = shapes(&mlp, &settings, &asked)
            .iter()
            .map(|s| (s.batch, s.sequence))
            .collect();
        assert_eq!(pairs, [(2, None)], "no token inputs: no sequence length");
    }
}
