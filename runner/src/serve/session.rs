//! A loaded variant that answers requests: an ONNX Runtime session or kiln's evaluator, fed the protocol's
//! tensors and giving them back. One session per serving instance: ONNX Runtime's `run` takes the session
//! mutably, and an instance runs one batch at a time.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use candle_core::{DType, Device};
use kiln_onnx::proto::ModelProto;
use ort::session::{RunOptions, SelectedOutputMarker, SessionInputValue};
use ort::value::{DynValue, Tensor as OrtTensor};

use super::ServeError;
use super::ort_run_options::{Chosen, OrtRunOptions};
use super::run_watch::Stoppable;
use super::signature::Signature;
use super::tensor::{Datatype, Tensor};
use crate::engine::{Engine, Settings, onnxruntime};

pub struct Session {
    engine: Loaded,
    /// The bytes a run's outputs may hold together (`--max-response-mib`), checked before they are copied
    /// out of the engine: the copy and its encoding come on top of what the engine held.
    max_output_bytes: u64,
    /// Stops the run in progress (`run_watch`).
    stop: Arc<dyn Stoppable>,
}

enum Loaded {
    Ort {
        session: ort::session::Session,
        /// Its runs' options: ONNX Runtime's CPU arena given back once a run is over, a model's tensor
        /// outputs alone, the terminate flag.
        options: OrtRunOptions,
    },
    Kiln(Box<kiln_onnx::eval::Session>),
}

/// What the engine does, once a run is over, with the memory that run grew it into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRun {
    /// Kept for the next run: a repeat of a large run finds its memory ready.
    Keep,
    /// ONNX Runtime's CPU arena frees every region no tensor holds (a no-op on kiln's evaluator, which
    /// frees each value after its last reader); the heaps then return the pages (`returned_memory`). The
    /// arena otherwise keeps all it ever grew into: one request of 1,024 rows left a runner serving a
    /// small BERT at 591 MB resident, from 57 MB, through every small request after it.
    GiveBack,
}

impl Session {
    /// Loads `model_path` (its external data beside it) on `engine`, with `threads` CPU threads (ONNX
    /// Runtime's spinning while they wait, or not).
    pub fn load(
        engine: &Engine,
        model_path: &Path,
        (device, device_spec): (&Device, &str),
        (threads, intra_op_spinning): (usize, bool),
    ) -> Result<Self, String> {
        let (engine, stop) = match engine {
            Engine::OnnxRuntime(runtime) => {
                let settings = Settings {
                    threads,
                    intra_op_spinning,
                    ..Settings::default()
                };
                let (session, _) =
                    onnxruntime::session(runtime, model_path, (device, device_spec), &settings)
                        .map_err(|e| e.to_string())?;
                let options = OrtRunOptions::of(&session, matches!(device, Device::Cpu))
                    .map_err(|e| format!("ONNX Runtime refused a run's options: {e}"))?;
                let stop = options.stop();
                (Loaded::Ort { session, options }, stop)
            }
            Engine::Kiln => {
                let bytes = std::fs::read(model_path)
                    .map_err(|e| format!("cannot read {}: {e}", model_path.display()))?;
                let mut model: ModelProto = prost::Message::decode(bytes.as_slice())
                    .map_err(|e| format!("{} is not an ONNX model: {e}", model_path.display()))?;
                // The outputs the signature leaves out (a classifier's ZipMap) are not computed, as
                // ONNX Runtime's `TensorsOnly` skips them; their operators need not be implemented.
                kiln_onnx::optimize::remove_non_tensor_outputs(&mut model)
                    .map_err(|e| e.to_string())?;
                let session = kiln_onnx::eval::Session::new(&model, model_path.parent(), device)
                    .map_err(|e| match e {
                        kiln_onnx::ModelError::UnsupportedOp(ops) => format!(
                            "kiln's evaluator does not implement {ops}: serve the model with --engine ort"
                        ),
                        other => other.to_string(),
                    })?;
                let flag = Arc::new(AtomicBool::new(false));
                let stop: Arc<dyn Stoppable> = Arc::new(KilnStop(flag.clone()));
                (Loaded::Kiln(Box::new(session.with_stop_flag(flag))), stop)
            }
        };
        Ok(Self {
            engine,
            max_output_bytes: u64::MAX,
            stop,
        })
    }

    /// Refuses a run whose outputs hold more than `bytes` together.
    pub fn with_max_output_bytes(mut self, bytes: u64) -> Self {
        self.max_output_bytes = bytes;
        self
    }

    /// Refuses a run of kiln's evaluator whose tensors would hold more than `bytes` together (ONNX
    /// Runtime's runs are bounded by the arena of `Runtime::limit_cpu_memory`, shared by the instances).
    pub fn with_run_memory_limit(mut self, bytes: Option<u64>) -> Self {
        if let Loaded::Kiln(session) = self.engine {
            self.engine = Loaded::Kiln(Box::new(session.with_memory_limit(bytes)));
        }
        self
    }

    /// What stops this session's run in progress from another thread.
    pub fn stop(&self) -> Arc<dyn Stoppable> {
        self.stop.clone()
    }

    /// Runs checked inputs (in the model's order) and returns every output the signature declares.
    pub fn run(
        &mut self,
        inputs: &[Tensor],
        signature: &Signature,
        after: AfterRun,
    ) -> Result<Vec<Tensor>, ServeError> {
        let limit = self.max_output_bytes;
        match &mut self.engine {
            Loaded::Ort { session, options } => match options.chosen(after == AfterRun::GiveBack) {
                Chosen::TensorsOnly(o) => run_ort(session, o, inputs, signature, limit),
                Chosen::AllOutputs(o) => run_ort(session, o, inputs, signature, limit),
            },
            Loaded::Kiln(session) => run_kiln(session, inputs, signature, limit),
        }
    }
}

/// Whether outputs of these element counts fit in `limit` bytes (a `BYTES` element counted by what it
/// costs while it is read back, `ort_strings::OUTPUT_ELEMENT_BYTES`: its text comes on top, and is
/// bounded by the engine's memory).
fn outputs_fit(
    outputs: impl Iterator<Item = (Datatype, u128)>,
    limit: u64,
) -> Result<(), ServeError> {
    let element_bytes = |datatype: Datatype| {
        datatype
            .size()
            .unwrap_or(super::ort_strings::OUTPUT_ELEMENT_BYTES) as u128
    };
    let bytes: u128 = outputs
        .map(|(datatype, elements)| elements.saturating_mul(element_bytes(datatype)))
        .fold(0, u128::saturating_add);
    if bytes <= u128::from(limit) {
        return Ok(());
    }
    Err(ServeError::Inference(format!(
        "its outputs hold {} MiB, more than this server answers with (kiln-runner serve \
         --max-response-mib {}): send fewer rows or smaller inputs",
        bytes.div_ceil(1 << 20),
        limit >> 20
    )))
}

fn failed(e: impl std::fmt::Display) -> ServeError {
    ServeError::Inference(e.to_string())
}

/// The engine's run was stopped from outside (`run_watch`); the batcher says why.
fn stopped() -> ServeError {
    ServeError::DeadlineExceeded("the run was stopped before it finished".to_owned())
}

/// A run refused by the engine's memory limit, in the request's terms.
const NEEDS_MORE_MEMORY: &str = "they need more memory than this server lets its engine hold \
     (kiln-runner serve --max-engine-memory-mib): send fewer rows or smaller inputs";

/// ONNX Runtime's refusal, said in the request's terms when it is the memory limit that refused: its own
/// text names an arena and a kernel, not what the caller can change.
fn ort_run_failed(e: ort::Error) -> ServeError {
    let text = e.to_string();
    // ONNX Runtime's words for a run its terminate flag ended (its sequential executor's).
    if text.contains("terminate flag") {
        return stopped();
    }
    match text.find("Available memory of") {
        Some(at) => {
            ServeError::Inference(format!("{NEEDS_MORE_MEMORY} ({})", text[at..].trim_end()))
        }
        None => failed(text),
    }
}

/// Reads little-endian elements of `size` bytes.
fn elements<T>(data: &[u8], size: usize, read: impl Fn(&[u8]) -> T) -> Vec<T> {
    data.chunks_exact(size).map(read).collect()
}

fn ort_value(t: &Tensor) -> Result<DynValue, ServeError> {
    let shape = t.shape.clone();
    let d = &t.data;
    let value = match t.datatype {
        Datatype::Bool => {
            OrtTensor::from_array((shape, elements(d, 1, |b| b[0] != 0))).map(|v| v.into_dyn())
        }
        Datatype::Uint8 => OrtTensor::from_array((shape, d.to_vec())).map(|v| v.into_dyn()),
        Datatype::Int8 => {
            OrtTensor::from_array((shape, elements(d, 1, |b| b[0] as i8))).map(|v| v.into_dyn())
        }
        Datatype::Uint16 => {
            OrtTensor::from_array((shape, elements(d, 2, |b| u16::from_le_bytes([b[0], b[1]]))))
                .map(|v| v.into_dyn())
        }
        Datatype::Int16 => {
            OrtTensor::from_array((shape, elements(d, 2, |b| i16::from_le_bytes([b[0], b[1]]))))
                .map(|v| v.into_dyn())
        }
        Datatype::Uint32 => OrtTensor::from_array((
            shape,
            elements(d, 4, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ))
        .map(|v| v.into_dyn()),
        Datatype::Int32 => OrtTensor::from_array((
            shape,
            elements(d, 4, |b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ))
        .map(|v| v.into_dyn()),
        Datatype::Uint64 => OrtTensor::from_array((
            shape,
            elements(d, 8, |b| {
                u64::from_le_bytes(b.try_into().unwrap_or_default())
            }),
        ))
        .map(|v| v.into_dyn()),
        Datatype::Int64 => OrtTensor::from_array((
            shape,
            elements(d, 8, |b| {
                i64::from_le_bytes(b.try_into().unwrap_or_default())
            }),
        ))
        .map(|v| v.into_dyn()),
        Datatype::Fp16 => OrtTensor::from_array((
            shape,
            elements(d, 2, |b| half::f16::from_le_bytes([b[0], b[1]])),
        ))
        .map(|v| v.into_dyn()),
        Datatype::Bf16 => OrtTensor::from_array((
            shape,
            elements(d, 2, |b| half::bf16::from_le_bytes([b[0], b[1]])),
        ))
        .map(|v| v.into_dyn()),
        Datatype::Fp32 => OrtTensor::from_array((
            shape,
            elements(d, 4, |b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        ))
        .map(|v| v.into_dyn()),
        Datatype::Bytes => super::ort_strings::to_value(&shape, d),
        Datatype::Fp64 => OrtTensor::from_array((
            shape,
            elements(d, 8, |b| {
                f64::from_le_bytes(b.try_into().unwrap_or_default())
            }),
        ))
        .map(|v| v.into_dyn()),
    };
    value.map_err(|e| failed(format!("input {:?}: {e}", t.name)))
}

/// An output's shape and values as little-endian bytes.
fn ort_output(
    value: &ort::value::DynValue,
    datatype: Datatype,
) -> ort::Result<(Vec<i64>, Vec<u8>)> {
    fn bytes_of<T: ort::value::PrimitiveTensorElementType + Copy, const N: usize>(
        value: &ort::value::DynValue,
        to_le: impl Fn(T) -> [u8; N],
    ) -> ort::Result<(Vec<i64>, Vec<u8>)> {
        let (shape, data) = value.try_extract_tensor::<T>()?;
        Ok((
            shape.to_vec(),
            data.iter().flat_map(|&x| to_le(x)).collect(),
        ))
    }
    match datatype {
        Datatype::Bool => bytes_of::<bool, 1>(value, |x| [u8::from(x)]),
        Datatype::Uint8 => bytes_of::<u8, 1>(value, |x| [x]),
        Datatype::Int8 => bytes_of::<i8, 1>(value, i8::to_le_bytes),
        Datatype::Uint16 => bytes_of::<u16, 2>(value, u16::to_le_bytes),
        Datatype::Int16 => bytes_of::<i16, 2>(value, i16::to_le_bytes),
        Datatype::Uint32 => bytes_of::<u32, 4>(value, u32::to_le_bytes),
        Datatype::Int32 => bytes_of::<i32, 4>(value, i32::to_le_bytes),
        Datatype::Uint64 => bytes_of::<u64, 8>(value, u64::to_le_bytes),
        Datatype::Int64 => bytes_of::<i64, 8>(value, i64::to_le_bytes),
        Datatype::Fp16 => bytes_of::<half::f16, 2>(value, half::f16::to_le_bytes),
        Datatype::Bf16 => bytes_of::<half::bf16, 2>(value, half::bf16::to_le_bytes),
        Datatype::Fp32 => bytes_of::<f32, 4>(value, f32::to_le_bytes),
        Datatype::Fp64 => bytes_of::<f64, 8>(value, f64::to_le_bytes),
        Datatype::Bytes => super::ort_strings::from_value(value),
    }
}

fn run_ort<O: SelectedOutputMarker>(
    session: &mut ort::session::Session,
    options: &RunOptions<O>,
    inputs: &[Tensor],
    signature: &Signature,
    max_output_bytes: u64,
) -> Result<Vec<Tensor>, ServeError> {
    let values: Vec<(String, DynValue)> = inputs
        .iter()
        .map(|t| Ok((t.name.clone(), ort_value(t)?)))
        .collect::<Result<_, ServeError>>()?;
    // Lent, not given: `values` must outlive `outputs` (declared after it, dropped before it). An output
    // that is also an input of the graph comes back sharing the input's buffer, which each value owns;
    // moved into `run`, the inputs were freed when it returned and such an output was read from freed
    // memory (whatever the process had put there since: garbage in the check, another request's data at
    // worst).
    let feeds: Vec<(&str, SessionInputValue)> = values
        .iter()
        .map(|(name, value)| (name.as_str(), SessionInputValue::from(value)))
        .collect();
    let outputs = session
        .run_with_options(feeds, options)
        .map_err(ort_run_failed)?;
    let elements = |name: &str| -> u128 {
        match outputs.get(name).map(|v| v.dtype()) {
            Some(ort::value::ValueType::Tensor { shape, .. }) => shape
                .iter()
                .map(|&d| u128::try_from(d).unwrap_or(0))
                .fold(1, u128::saturating_mul),
            _ => 0,
        }
    };
    outputs_fit(
        signature
            .outputs
            .iter()
            .map(|spec| (spec.datatype, elements(&spec.name))),
        max_output_bytes,
    )?;
    signature
        .outputs
        .iter()
        .map(|spec| {
            let value = outputs.get(spec.name.as_str()).ok_or_else(|| {
                failed(format!("ONNX Runtime computed no output {:?}", spec.name))
            })?;
            let (shape, data) = ort_output(value, spec.datatype)
                .map_err(|e| failed(format!("output {:?}: {e}", spec.name)))?;
            Ok(Tensor {
                name: spec.name.clone(),
                datatype: spec.datatype,
                shape,
                data: Bytes::from(data),
            })
        })
        .collect()
}

/// The candle type kiln's evaluator holds a protocol datatype in: it keeps ONNX's narrower integers as
/// i64 and booleans as u8.
fn candle_dtype(datatype: Datatype) -> Option<DType> {
    Some(match datatype {
        Datatype::Bool | Datatype::Uint8 => DType::U8,
        Datatype::Uint32 => DType::U32,
        Datatype::Fp16 => DType::F16,
        Datatype::Bf16 => DType::BF16,
        Datatype::Fp32 => DType::F32,
        Datatype::Fp64 => DType::F64,
        Datatype::Int8
        | Datatype::Int16
        | Datatype::Int32
        | Datatype::Int64
        | Datatype::Uint16
        | Datatype::Uint64 => DType::I64,
        Datatype::Bytes => return None,
    })
}

fn candle_input(t: &Tensor, device: &Device) -> candle_core::Result<candle_core::Tensor> {
    let dims: Vec<usize> = t.shape.iter().map(|&d| d as usize).collect();
    let d = &t.data;
    let widened: Vec<i64> = match t.datatype {
        Datatype::Int8 => elements(d, 1, |b| i64::from(b[0] as i8)),
        Datatype::Int16 => elements(d, 2, |b| i64::from(i16::from_le_bytes([b[0], b[1]]))),
        Datatype::Uint16 => elements(d, 2, |b| i64::from(u16::from_le_bytes([b[0], b[1]]))),
        Datatype::Int32 => elements(d, 4, |b| {
            i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }),
        Datatype::Uint64 => elements(d, 8, |b| {
            u64::from_le_bytes(b.try_into().unwrap_or_default()) as i64
        }),
        Datatype::Bool => {
            let bools: Vec<u8> = d.iter().map(|&b| u8::from(b != 0)).collect();
            return candle_core::Tensor::from_vec(bools, dims, device);
        }
        _ => {
            let dtype = candle_dtype(t.datatype).ok_or_else(no_strings)?;
            return candle_core::Tensor::from_raw_buffer(d, dtype, &dims, device);
        }
    };
    candle_core::Tensor::from_vec(widened, dims, device)
}

fn no_strings() -> candle_core::Error {
    candle_core::Error::Msg(
        "kiln's evaluator has no string tensors; serve with --engine ort".into(),
    )
}

fn candle_output(t: &candle_core::Tensor, datatype: Datatype) -> candle_core::Result<Vec<u8>> {
    let flat = t.to_device(&Device::Cpu)?.flatten_all()?;
    Ok(match datatype {
        Datatype::Bytes => return Err(no_strings()),
        Datatype::Bool => flat
            .to_dtype(DType::U8)?
            .to_vec1::<u8>()?
            .into_iter()
            .map(|b| u8::from(b != 0))
            .collect(),
        Datatype::Uint8 => flat.to_dtype(DType::U8)?.to_vec1::<u8>()?,
        Datatype::Uint32 => flat
            .to_dtype(DType::U32)?
            .to_vec1::<u32>()?
            .into_iter()
            .flat_map(u32::to_le_bytes)
            .collect(),
        Datatype::Fp16 => flat
            .to_dtype(DType::F16)?
            .to_vec1::<half::f16>()?
            .into_iter()
            .flat_map(half::f16::to_le_bytes)
            .collect(),
        Datatype::Bf16 => flat
            .to_dtype(DType::BF16)?
            .to_vec1::<half::bf16>()?
            .into_iter()
            .flat_map(half::bf16::to_le_bytes)
            .collect(),
        Datatype::Fp32 => flat
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?
            .into_iter()
            .flat_map(f32::to_le_bytes)
            .collect(),
        Datatype::Fp64 => flat
            .to_dtype(DType::F64)?
            .to_vec1::<f64>()?
            .into_iter()
            .flat_map(f64::to_le_bytes)
            .collect(),
        Datatype::Int8 => flat
            .to_dtype(DType::I64)?
            .to_vec1::<i64>()?
            .into_iter()
            .map(|x| x as i8 as u8)
            .collect(),
        Datatype::Int16 => flat
            .to_dtype(DType::I64)?
            .to_vec1::<i64>()?
            .into_iter()
            .flat_map(|x| (x as i16).to_le_bytes())
            .collect(),
        Datatype::Uint16 => flat
            .to_dtype(DType::I64)?
            .to_vec1::<i64>()?
            .into_iter()
            .flat_map(|x| (x as u16).to_le_bytes())
            .collect(),
        Datatype::Int32 => flat
            .to_dtype(DType::I64)?
            .to_vec1::<i64>()?
            .into_iter()
            .flat_map(|x| (x as i32).to_le_bytes())
            .collect(),
        Datatype::Int64 => flat
            .to_dtype(DType::I64)?
            .to_vec1::<i64>()?
            .into_iter()
            .flat_map(i64::to_le_bytes)
            .collect(),
        Datatype::Uint64 => flat
            .to_dtype(DType::I64)?
            .to_vec1::<i64>()?
            .into_iter()
            .flat_map(|x| (x as u64).to_le_bytes())
            .collect(),
    })
}

/// Stops kiln's evaluator before its next node (`kiln_onnx::eval::Session::with_stop_flag`).
struct KilnStop(Arc<AtomicBool>);

impl Stoppable for KilnStop {
    fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn clear(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

fn run_kiln(
    session: &kiln_onnx::eval::Session,
    inputs: &[Tensor],
    signature: &Signature,
    max_output_bytes: u64,
) -> Result<Vec<Tensor>, ServeError> {
    let device = session.device().clone();
    let feed: HashMap<String, candle_core::Tensor> = inputs
        .iter()
        .map(|t| Ok((t.name.clone(), candle_input(t, &device).map_err(failed)?)))
        .collect::<Result<_, ServeError>>()?;
    let outputs = session.run(&feed).map_err(|e| match e {
        kiln_onnx::ModelError::MemoryLimit { needed, .. } => ServeError::Inference(format!(
            "{NEEDS_MORE_MEMORY} (kiln's evaluator: its tensors need {} MiB at least)",
            needed.div_ceil(1 << 20)
        )),
        kiln_onnx::ModelError::Stopped => stopped(),
        other => failed(other),
    })?;
    outputs_fit(
        signature.outputs.iter().map(|spec| {
            let elements = outputs
                .iter()
                .find(|(name, _)| *name == spec.name)
                .map_or(0, |(_, value)| value.elem_count() as u128);
            (spec.datatype, elements)
        }),
        max_output_bytes,
    )?;
    signature
        .outputs
        .iter()
        .map(|spec| {
            let (_, value) = outputs
                .iter()
                .find(|(name, _)| *name == spec.name)
                .ok_or_else(|| failed(format!("kiln computed no output {:?}", spec.name)))?;
            let data = candle_output(value, spec.datatype)
                .map_err(|e| failed(format!("output {:?}: {e}", spec.name)))?;
            Ok(Tensor {
                name: spec.name.clone(),
                datatype: spec.datatype,
                shape: value.dims().iter().map(|&d| d as i64).collect(),
                data: Bytes::from(data),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_fit_up_to_the_limit_counting_every_output_and_overflow_refused() {
        let two = [(Datatype::Fp32, 1 << 18), (Datatype::Int64, 1 << 17)];
        assert!(outputs_fit(two.into_iter(), 2 << 20).is_ok());
        let refused = outputs_fit(two.into_iter(), (2 << 20) - 1).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("its outputs hold 2 MiB, more than this server answers with"),
            "{refused}"
        );
        assert!(outputs_fit([(Datatype::Fp64, u128::MAX)].into_iter(), u64::MAX).is_err());
        assert!(outputs_fit([(Datatype::Bytes, 3)].into_iter(), 3 * 44).is_ok());
        assert!(outputs_fit([(Datatype::Bytes, 3)].into_iter(), 3 * 44 - 1).is_err());
    }
}
