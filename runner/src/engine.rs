//! Measuring one variant the way trtexec and onnxruntime_perf_test do: load once with the weights resident
//! on the device (kiln's evaluator on candle tensors: `kiln_onnx::eval::Session`), warm up, then time
//! iterations with the device synchronised before the clock is read; report p50/p90/p99 and throughput per
//! batch size, peak memory, and how far the device's outputs are from a CPU reference. A decoder is also
//! timed generating with its cache ([`crate::generation`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use candle_core::{DType, Device, Tensor};
use kiln_core::deployment::BenchmarkResult;
use kiln_onnx::eval::Session;
use kiln_onnx::proto::ModelProto;
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
    /// Batch sizes for models with a symbolic batch dim (those without run their own).
    pub batch_sizes: Vec<usize>,
    /// The size given to other symbolic dims (sequence length, image side).
    pub symbolic_size: usize,
    /// CPU threads the engine runs on (a rayon pool of this size).
    pub threads: usize,
    /// Report the process's peak resident set as the memory of CPU runs (a standalone runner); the server's
    /// embedded runner cannot tell its own memory from the server's and reports none.
    pub process_memory: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            warmup: 5,
            min_iterations: 10,
            max_iterations: 200,
            time_budget: Duration::from_secs(3),
            batch_sizes: vec![1, 8],
            symbolic_size: 16,
            threads: 1,
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

fn unsupported(e: kiln_onnx::ModelError) -> EngineError {
    EngineError::Unsupported(e.to_string())
}

/// Latency percentiles by nearest rank over the sorted samples (milliseconds).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Whether any graph input has a symbolic (or unknown) first dim: a batch to vary.
fn has_batch_dim(model: &ModelProto) -> bool {
    let Some(graph) = &model.graph else {
        return false;
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
        .any(
            |input| match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
                Some(type_proto::Value::TensorType(t)) => t
                    .shape
                    .as_ref()
                    .and_then(|s| s.dim.first())
                    .is_some_and(|d| !matches!(d.value, Some(DimValue::DimValue(v)) if v > 0)),
                _ => false,
            },
        )
}

/// The largest absolute difference between the device's outputs and the CPU's; a NaN or infinity in one
/// where the other has a number (or a different set of outputs) is a failure, not a small number.
fn max_abs_difference(
    device: &[(String, Tensor)],
    cpu: &[(String, Tensor)],
) -> Result<f64, EngineError> {
    if device.len() != cpu.len() {
        return Err(EngineError::Unsupported(format!(
            "the device computed {} outputs, the CPU {}",
            device.len(),
            cpu.len()
        )));
    }
    let mut worst = 0f64;
    for ((name, x), (_, y)) in device.iter().zip(cpu) {
        if !x.dtype().is_float() {
            continue;
        }
        let x = x
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F64)?
            .flatten_all()?;
        let y = y
            .to_device(&Device::Cpu)?
            .to_dtype(DType::F64)?
            .flatten_all()?;
        for (a, b) in x.to_vec1::<f64>()?.into_iter().zip(y.to_vec1::<f64>()?) {
            let diff = (a - b).abs();
            if diff.is_nan() && !(a.is_nan() && b.is_nan()) || diff.is_infinite() {
                return Err(EngineError::Unsupported(format!(
                    "output {name:?} on the device is {a} where the CPU computes {b}"
                )));
            }
            if diff.is_finite() {
                worst = worst.max(diff);
            }
        }
    }
    Ok(worst)
}

/// Peak memory probes: what is in use on the GPU, or the process's peak resident set.
mod memory {
    use candle_core::Device;

    /// Bytes in use on the device now (GPU only).
    #[cfg(feature = "cuda")]
    pub fn device_used(device: &Device) -> Option<i64> {
        if !device.is_cuda() {
            return None;
        }
        let (free, total) =
            candle_core::cuda_backend::cudarc::driver::result::mem_get_info().ok()?;
        Some((total - free) as i64)
    }

    #[cfg(not(feature = "cuda"))]
    pub fn device_used(_device: &Device) -> Option<i64> {
        None
    }

    /// Resets the kernel's peak-RSS mark for this process (Linux `clear_refs` 5), so VmHWM measures from now.
    pub fn reset_process_peak() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    pub fn process_peak() -> Option<i64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}

/// Measures the model at `model_path` (its external data beside it) on `device`.
pub fn benchmark(
    model_path: &Path,
    device: &Device,
    info: &DeviceInfo,
    runner: &str,
    settings: &Settings,
    cancel: &AtomicBool,
) -> Result<Vec<BenchmarkResult>, EngineError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(settings.threads.max(1))
        .build()
        .map_err(|e| {
            EngineError::Device(format!("cannot start {} threads: {e}", settings.threads))
        })?;
    pool.install(|| measure(model_path, device, info, runner, settings, cancel))
}

fn measure(
    model_path: &Path,
    device: &Device,
    info: &DeviceInfo,
    runner: &str,
    settings: &Settings,
    cancel: &AtomicBool,
) -> Result<Vec<BenchmarkResult>, EngineError> {
    // On a CPU an evaluation error is the model's (deterministic: final); on a GPU it may be the device's
    // (out of memory, a driver error): retried.
    let failed = |e: kiln_onnx::ModelError| match e {
        kiln_onnx::ModelError::Evaluation(m) if !matches!(device, Device::Cpu) => {
            EngineError::Device(m)
        }
        other => unsupported(other),
    };
    let bytes = std::fs::read(model_path)
        .map_err(|e| EngineError::Device(format!("{}: {e}", model_path.display())))?;
    let model = ModelProto::decode(bytes.as_slice())
        .map_err(|e| EngineError::Unsupported(format!("not an ONNX model: {e}")))?;
    let base = model_path.parent();
    let on_cpu = matches!(device, Device::Cpu);
    if on_cpu && settings.process_memory {
        memory::reset_process_peak();
    }
    let device_before = memory::device_used(device);
    let session = Session::new(&model, base, device).map_err(failed)?;
    // The CPU is the reference: a GPU's outputs are checked against a CPU session of the same variant.
    let reference = if on_cpu {
        None
    } else {
        Some(Session::new(&model, base, &Device::Cpu).map_err(unsupported)?)
    };
    let decoder = crate::generation::cache_inputs(&model);
    let batches: Vec<usize> = if has_batch_dim(&model) {
        settings.batch_sizes.clone()
    } else {
        vec![0]
    };
    let mut results = Vec::new();
    for batch in batches {
        // 0: the model fixes its own batch; the generator then uses the declared dims.
        let (inputs, _) = kiln_onnx::variants::inputs::generate_shaped(
            &model,
            batch.max(1),
            settings.symbolic_size,
        )
        .map_err(unsupported)?;
        let input_shapes: BTreeMap<String, Vec<i64>> = inputs
            .iter()
            .map(|(name, t)| (name.clone(), t.dims().iter().map(|&d| d as i64).collect()))
            .collect();
        let batch_size = if batch == 0 {
            input_shapes
                .values()
                .next()
                .and_then(|s| s.first().copied())
                .unwrap_or(1)
        } else {
            batch as i64
        };
        let on_device: HashMap<String, Tensor> = inputs
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.to_device(device)?)))
            .collect::<Result<_, candle_core::Error>>()?;
        let run = || -> Result<Vec<(String, Tensor)>, EngineError> {
            if cancel.load(Ordering::Relaxed) {
                return Err(EngineError::Device("cancelled".to_owned()));
            }
            let outputs = session.run(&on_device).map_err(failed)?;
            device.synchronize()?;
            Ok(outputs)
        };
        let first = run()?;
        let max_abs_error = match &reference {
            Some(cpu) => Some(max_abs_difference(
                &first,
                &cpu.run(&inputs).map_err(unsupported)?,
            )?),
            None => None,
        };
        for _ in 1..settings.warmup {
            run()?;
        }
        let (samples, peak_device) = timed(settings, device, device_before, run)?;
        let generation = match &decoder {
            Some(cache) => Some(crate::generation::measure(
                &session,
                cache,
                (batch.max(1), settings.symbolic_size),
                device,
                cancel,
                &failed,
            )?),
            None => None,
        };
        let p50 = percentile(&samples, 50.0);
        let peak_memory_bytes = if on_cpu {
            settings.process_memory.then(memory::process_peak).flatten()
        } else {
            peak_device
                .zip(device_before)
                .map(|(peak, before)| peak - before)
        };
        results.push(BenchmarkResult {
            device: info.device.clone(),
            device_name: info.device_name.clone(),
            driver: info.driver.clone(),
            engine: info.engine.clone(),
            threads: on_cpu.then_some(settings.threads as u32),
            batch_size,
            input_shapes,
            warmup_iterations: settings.warmup.max(1),
            iterations: samples.len() as u32,
            p50_ms: p50,
            p90_ms: percentile(&samples, 90.0),
            p99_ms: percentile(&samples, 99.0),
            throughput: batch_size as f64 / (p50 / 1000.0),
            peak_memory_bytes,
            max_abs_error,
            runner: runner.to_owned(),
            measured_at: chrono::Utc::now(),
            generation,
        });
    }
    Ok(results)
}

/// The timed iterations: at least `min_iterations`, then until `max_iterations` or the time budget. Returns
/// the sorted latencies (ms) and the most device memory seen in use.
fn timed(
    settings: &Settings,
    device: &Device,
    device_before: Option<i64>,
    mut run: impl FnMut() -> Result<Vec<(String, Tensor)>, EngineError>,
) -> Result<(Vec<f64>, Option<i64>), EngineError> {
    let mut peak_device = device_before;
    let mut samples = Vec::new();
    let started = Instant::now();
    while (samples.len() as u32) < settings.min_iterations
        || ((samples.len() as u32) < settings.max_iterations
            && started.elapsed() < settings.time_budget)
    {
        let t0 = Instant::now();
        run()?;
        samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        if let Some(used) = memory::device_used(device) {
            peak_device = Some(peak_device.map_or(used, |p| p.max(used)));
        }
    }
    samples.sort_by(f64::total_cmp);
    Ok((samples, peak_device))
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
    fn a_tiny_model_gets_sane_numbers_at_two_batch_sizes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        std::fs::write(
            &path,
            kiln_onnx::sample_models::mlp_graph(false).encode_to_vec(),
        )
        .unwrap();
        let settings = Settings {
            warmup: 2,
            min_iterations: 20,
            max_iterations: 20,
            process_memory: true,
            ..Settings::default()
        };
        let info = DeviceInfo::cpu(settings.threads);
        let results = benchmark(
            &path,
            &Device::Cpu,
            &info,
            "test",
            &settings,
            &AtomicBool::new(false),
        )
        .unwrap();
        let batches: Vec<i64> = results.iter().map(|r| r.batch_size).collect();
        assert_eq!(batches, [1, 8]);
        for r in &results {
            assert_eq!(r.iterations, 20);
            assert!(
                0.0 < r.p50_ms && r.p50_ms <= r.p90_ms && r.p90_ms <= r.p99_ms,
                "{r:?}"
            );
            let expected = r.batch_size as f64 * 1000.0 / r.p50_ms;
            assert!((r.throughput - expected).abs() < 1e-9 * expected, "{r:?}");
            assert_eq!(r.input_shapes["x"], [r.batch_size, 8]);
            assert_eq!(r.threads, Some(1));
            assert!(r.peak_memory_bytes.is_some_and(|b| b > 0));
            assert_eq!(r.max_abs_error, None, "the CPU is its own reference");
        }
    }

    #[test]
    fn an_operator_the_engine_lacks_is_a_final_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.onnx");
        let mut model = kiln_onnx::sample_models::mlp_graph(false);
        model.graph.as_mut().unwrap().node[0].op_type = Some("NoSuchOp".to_owned());
        std::fs::write(&path, model.encode_to_vec()).unwrap();
        let info = DeviceInfo::cpu(1);
        let err = benchmark(
            &path,
            &Device::Cpu,
            &info,
            "test",
            &Settings::default(),
            &AtomicBool::new(false),
        )
        .unwrap_err();
        assert!(
            matches!(err, EngineError::Unsupported(ref m) if m.contains("NoSuchOp")),
            "{err}"
        );
    }
}
