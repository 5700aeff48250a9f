//! kiln's own evaluator (`kiln_onnx::eval::Session` on candle tensors): the engine that needs nothing
//! installed. On a GPU its outputs are checked against a CPU session of the same variant; a decoder is also
//! timed generating with its cache ([`crate::generation`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Device, Tensor};
use kiln_core::deployment::BenchmarkResult;
use kiln_onnx::eval::Session;
use kiln_onnx::proto::ModelProto;

use super::{EngineError, Settings, Shape, memory};

fn unsupported(e: kiln_onnx::ModelError) -> EngineError {
    EngineError::Unsupported(e.to_string())
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

/// kiln's version: what results name the engine's version with.
pub fn version() -> String {
    format!(
        "{} (candle-core 0.11{})",
        env!("CARGO_PKG_VERSION"),
        if cfg!(feature = "cuda") { ", cuda" } else { "" }
    )
}

/// Where kiln's evaluator runs on `device`: candle's CPU or CUDA backend.
pub fn provider(device: &str) -> &'static str {
    if device == "cpu" {
        "candle-cpu"
    } else {
        "candle-cuda"
    }
}

pub(super) fn measure(
    model: &ModelProto,
    model_path: &Path,
    device: &Device,
    settings: &Settings,
    shapes: &[Shape],
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
    let base = model_path.parent();
    let on_cpu = matches!(device, Device::Cpu);
    let loaded_from = memory::DevicePeak::start(device);
    let session = Session::new(model, base, device).map_err(failed)?;
    // The CPU is the reference: a GPU's outputs are checked against a CPU session of the same variant.
    let reference = if on_cpu {
        None
    } else {
        Some(Session::new(model, base, &Device::Cpu).map_err(unsupported)?)
    };
    let decoder = crate::generation::cache_inputs(model);
    let mut results = Vec::new();
    for &shape in shapes {
        // Batch 0: the model fixes its own batch; the generator then uses the declared dims.
        let (inputs, _) =
            kiln_onnx::variants::inputs::generate_shaped(model, shape.batch.max(1), shape.rest)
                .map_err(unsupported)?;
        let input_shapes: BTreeMap<String, Vec<i64>> = inputs
            .iter()
            .map(|(name, t)| (name.clone(), t.dims().iter().map(|&d| d as i64).collect()))
            .collect();
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
        let mut peak = loaded_from.clone();
        let samples = super::timed(settings, || run().map(drop), || peak.sample(device))?;
        let generation = match &decoder {
            Some(cache) => Some(crate::generation::measure(
                &session,
                cache,
                (shape.batch.max(1), shape.rest),
                device,
                cancel,
                &failed,
            )?),
            None => None,
        };
        let mut result = super::result(shape, input_shapes, settings.warmup, &samples);
        result.execution_provider = Some(provider(if on_cpu { "cpu" } else { "cuda" }).to_owned());
        result.max_abs_error = max_abs_error;
        result.generation = generation;
        if !on_cpu {
            result.peak_memory_bytes = peak.growth();
        }
        results.push(result);
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use candle_core::Device;
    use prost::Message;

    use crate::device::DeviceInfo;
    use crate::engine::{Engine, EngineError, Requested, Settings, benchmark};

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
            &Engine::Kiln,
            &path,
            &Device::Cpu,
            &info,
            "test",
            (&settings, &Requested::default()),
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
            &Engine::Kiln,
            &path,
            &Device::Cpu,
            &info,
            "test",
            (&Settings::default(), &Requested::default()),
            &AtomicBool::new(false),
        )
        .unwrap_err();
        assert!(
            matches!(err, EngineError::Unsupported(ref m) if m.contains("NoSuchOp")),
            "{err}"
        );
    }
}
