//! ONNX Runtime through the `ort` crate, its shared library loaded at run time (`load-dynamic`) from the
//! file `--onnxruntime-lib` / `KILN_ONNXRUNTIME_LIB` names: the official wheel's library, unpacked and
//! checked by `scripts/fetch-onnxruntime.sh`. Sessions are made the way a deployment makes them (all graph
//! optimizations, a fixed intra-op pool, sequential execution) and those settings go into every result.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{DType, Device, Tensor};
use kiln_core::deployment::BenchmarkResult;
use kiln_onnx::proto::ModelProto;
use kiln_onnx::proto::tensor_proto::DataType;
use kiln_onnx::proto::type_proto;
use ort::AsPointer;
use ort::ep::{self, ExecutionProvider};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{DynValue, Tensor as OrtTensor};

use super::{EngineError, Settings, Shape, memory};

/// The setting that names the library.
pub const LIBRARY_SETTING: &str = "KILN_ONNXRUNTIME_LIB";

const CPU: &str = "CPUExecutionProvider";
const CUDA: &str = "CUDAExecutionProvider";
const TENSORRT: &str = "TensorrtExecutionProvider";

/// ONNX Runtime, loaded: its version and what its build can run on.
pub struct Runtime {
    library: PathBuf,
    version: String,
    /// The execution providers the library was built with (CUDA and TensorRT in onnxruntime-gpu).
    available: Vec<String>,
    environment: ort::environment::Environment,
    /// The bytes every CPU session of this process may hold together, once set ([`Runtime::limit_cpu_memory`]).
    cpu_memory_limit: OnceLock<usize>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("library", &self.library)
            .field("version", &self.version)
            .field("available", &self.available)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Loads the library at `library` (once per process: ONNX Runtime cannot be unloaded).
    pub fn load(library: &Path) -> Result<Self, String> {
        let how = "run scripts/fetch-onnxruntime.sh and point --onnxruntime-lib (or KILN_ONNXRUNTIME_LIB) \
                   at the libonnxruntime.so.VERSION it prints";
        if !library.is_file() {
            return Err(format!(
                "ONNX Runtime's library {} does not exist; {how}",
                library.display()
            ));
        }
        let version = library_version(library).map_err(|e| {
            format!(
                "{} is not ONNX Runtime's library ({e}); {how}",
                library.display()
            )
        })?;
        let builder = ort::init_from(library).map_err(|e| {
            format!(
                "cannot load ONNX Runtime from {}: {e}; {how}",
                library.display()
            )
        })?;
        let environment = builder
            .with_name("kiln-runner")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("ONNX Runtime {version} did not start: {e}"))?;
        let mut available = vec![CPU.to_owned()];
        if ep::CUDA::is_available().unwrap_or(false) {
            available.push(CUDA.to_owned());
        }
        if ep::TensorRT::is_available().unwrap_or(false) {
            available.push(TENSORRT.to_owned());
        }
        Ok(Self {
            library: library.to_owned(),
            version,
            available,
            environment,
            cpu_memory_limit: OnceLock::new(),
        })
    }

    /// Holds every CPU session made after this call to `bytes` in all (weights, intermediate tensors and
    /// outputs): one arena registered on the environment and shared by the sessions, with ONNX Runtime's
    /// own limit (`max_mem`). A run that would pass it fails with ONNX Runtime's "Available memory of N is
    /// smaller than requested bytes of M" and the process goes on, where the kernel would have killed it.
    /// Once per process: the environment keeps the first arena.
    pub fn limit_cpu_memory(&self, bytes: usize) -> Result<(), String> {
        if let Some(&set) = self.cpu_memory_limit.get() {
            return if set == bytes {
                Ok(())
            } else {
                Err(format!(
                    "ONNX Runtime's CPU memory is already limited to {set} bytes"
                ))
            };
        }
        let info = MemoryInfo::new(
            AllocationDevice::CPU,
            0,
            AllocatorType::Arena,
            MemoryType::Default,
        )
        .map_err(|e| e.to_string())?;
        let api = ort::api();
        let key = c"max_mem";
        let mut config: *mut ort::sys::OrtArenaCfg = std::ptr::null_mut();
        // SAFETY: one key and one value, both live for the call; `config` is written by ONNX Runtime and
        // released below whether registering succeeds or not (the environment copies what it needs).
        unsafe {
            ort::Error::result_from_status((api.CreateArenaCfgV2)(
                &key.as_ptr(),
                &bytes,
                1,
                &mut config,
            ))
            .map_err(|e| format!("ONNX Runtime refused the arena's settings: {e}"))?;
            let registered = ort::Error::result_from_status((api.CreateAndRegisterAllocator)(
                self.environment.ptr().cast_mut(),
                info.ptr(),
                config,
            ));
            (api.ReleaseArenaCfg)(config);
            registered.map_err(|e| format!("ONNX Runtime did not take the memory limit: {e}"))?;
        }
        let _ = self.cpu_memory_limit.set(bytes);
        Ok(())
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The execution provider this runner measures with on `device` (`cpu` or `cuda:N`), as registered.
    pub fn providers_for(&self, device: &str) -> Vec<String> {
        if device == "cpu" {
            return vec![CPU.to_owned()];
        }
        vec![CUDA.to_owned()]
    }

    /// Whether this build can run on `device`; the message says what to install when it cannot.
    pub fn check_device(&self, device: &str) -> Result<(), String> {
        if device == "cpu" || self.available.iter().any(|p| p == CUDA) {
            return Ok(());
        }
        Err(format!(
            "ONNX Runtime {} at {} has no CUDA execution provider (it offers {}); for --device {device} \
             use the onnxruntime-gpu build's library",
            self.version,
            self.library.display(),
            self.available.join(", ")
        ))
    }
}

/// The version the library reports (`OrtGetApiBase()->GetVersionString()`), read before `ort` loads it.
fn library_version(library: &Path) -> Result<String, String> {
    // SAFETY: loading runs the library's initializers: that is what loading ONNX Runtime means (ort loads
    // the same file next). The symbol is ONNX Runtime's C entry point, with this signature in every
    // release; the version string it returns is static.
    unsafe {
        let lib = libloading::Library::new(library).map_err(|e| e.to_string())?;
        let base: libloading::Symbol<unsafe extern "C" fn() -> *const ort::sys::OrtApiBase> = lib
            .get(b"OrtGetApiBase")
            .map_err(|_| "it does not export OrtGetApiBase".to_owned())?;
        let base = base();
        if base.is_null() {
            return Err("OrtGetApiBase returned nothing".to_owned());
        }
        let version = ((*base).GetVersionString)();
        if version.is_null() {
            return Err("it reports no version".to_owned());
        }
        Ok(CStr::from_ptr(version).to_string_lossy().into_owned())
    }
}

fn ort_error(on_cpu: bool) -> impl Fn(ort::Error) -> EngineError {
    // On a CPU ONNX Runtime's refusal is the model's (final); on a GPU it may be the device's (retried).
    move |e| {
        if on_cpu {
            EngineError::Unsupported(format!("ONNX Runtime: {e}"))
        } else {
            EngineError::Device(format!("ONNX Runtime: {e}"))
        }
    }
}

/// What a deployment would set to reproduce the numbers.
fn session_options(settings: &Settings, provider: &str) -> BTreeMap<String, String> {
    let mut options = BTreeMap::from([
        ("graph_optimization_level".to_owned(), "all".to_owned()),
        ("intra_op_threads".to_owned(), settings.threads.to_string()),
        ("inter_op_threads".to_owned(), "1".to_owned()),
        ("execution_mode".to_owned(), "sequential".to_owned()),
    ]);
    if !settings.intra_op_spinning {
        options.insert("intra_op_spinning".to_owned(), "false".to_owned());
    }
    if provider == CUDA {
        // CUDA graphs need inputs bound at fixed addresses (I/O binding), which these runs do not use.
        options.insert("cuda_graph".to_owned(), "false".to_owned());
    }
    options
}

pub(crate) fn session(
    runtime: &Runtime,
    model_path: &Path,
    (device, device_spec): (&Device, &str),
    settings: &Settings,
) -> Result<(Session, &'static str), EngineError> {
    let on_cpu = matches!(device, Device::Cpu);
    let failed = ort_error(on_cpu);
    let failed = |e: ort::Error<ort::session::builder::SessionBuilder>| failed(e.into());
    let mut builder = Session::builder(&runtime.environment)
        .map_err(ort_error(on_cpu))?
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(failed)?
        .with_intra_threads(settings.threads.max(1))
        .map_err(failed)?
        .with_inter_threads(1)
        .map_err(failed)?
        .with_parallel_execution(false)
        .map_err(failed)?;
    if !settings.intra_op_spinning {
        builder = builder.with_intra_op_spinning(false).map_err(failed)?;
    }
    if on_cpu && runtime.cpu_memory_limit.get().is_some() {
        builder = builder.with_env_allocators().map_err(failed)?;
    }
    let provider = match device {
        Device::Cpu => CPU,
        Device::Cuda(_) => {
            let ordinal: i32 = device_spec
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            builder = builder
                .with_execution_providers([ep::CUDA::default()
                    .with_device_id(ordinal)
                    .build()
                    .error_on_failure()])
                .map_err(failed)?;
            CUDA
        }
        other => {
            return Err(EngineError::Unsupported(format!(
                "ONNX Runtime does not run on {other:?} here"
            )));
        }
    };
    let session = builder
        .commit_from_file(model_path)
        .map_err(ort_error(on_cpu))?;
    Ok((session, provider))
}

/// kiln's generated inputs as ONNX Runtime values of the element type each input declares.
fn values(
    model: &ModelProto,
    inputs: &std::collections::HashMap<String, Tensor>,
) -> Result<Vec<(String, DynValue)>, EngineError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| EngineError::Unsupported("the model has no graph".to_owned()))?;
    let mut out = Vec::new();
    for input in &graph.input {
        let name = input.name.clone().unwrap_or_default();
        let Some(tensor) = inputs.get(&name) else {
            continue;
        };
        let elem = match input.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(type_proto::Value::TensorType(t)) => t.elem_type(),
            _ => 0,
        };
        let shape: Vec<i64> = tensor.dims().iter().map(|&d| d as i64).collect();
        let flat = tensor.flatten_all()?;
        let value: DynValue = if elem == DataType::Float as i32 {
            let data = flat.to_dtype(DType::F32)?.to_vec1::<f32>()?;
            OrtTensor::from_array((shape, data)).map(|t| t.into_dyn())
        } else if elem == DataType::Int64 as i32 {
            let data = flat.to_dtype(DType::I64)?.to_vec1::<i64>()?;
            OrtTensor::from_array((shape, data)).map(|t| t.into_dyn())
        } else if elem == DataType::Int32 as i32 {
            let data: Vec<i32> = flat
                .to_dtype(DType::I64)?
                .to_vec1::<i64>()?
                .into_iter()
                .map(|v| v as i32)
                .collect();
            OrtTensor::from_array((shape, data)).map(|t| t.into_dyn())
        } else if elem == DataType::Bool as i32 {
            let data: Vec<bool> = flat
                .to_dtype(DType::U8)?
                .to_vec1::<u8>()?
                .into_iter()
                .map(|v| v != 0)
                .collect();
            OrtTensor::from_array((shape, data)).map(|t| t.into_dyn())
        } else {
            return Err(EngineError::Unsupported(format!(
                "cannot make input {name:?} of element type {elem} for ONNX Runtime"
            )));
        }
        .map_err(|e| EngineError::Device(format!("input {name:?}: {e}")))?;
        out.push((name, value));
    }
    Ok(out)
}

pub(super) fn measure(
    runtime: &Runtime,
    model_path: &Path,
    (device, device_spec): (&Device, &str),
    settings: &Settings,
    model: &ModelProto,
    shapes: &[Shape],
    cancel: &AtomicBool,
) -> Result<Vec<BenchmarkResult>, EngineError> {
    let on_cpu = matches!(device, Device::Cpu);
    let loaded_from = memory::DevicePeak::start(device);
    let (mut session, provider) = session(runtime, model_path, (device, device_spec), settings)?;
    let failed = ort_error(on_cpu);
    let mut results = Vec::new();
    for &shape in shapes {
        let (inputs, _) =
            kiln_onnx::variants::inputs::generate_shaped(model, shape.batch.max(1), shape.rest)
                .map_err(|e| EngineError::Unsupported(e.to_string()))?;
        let input_shapes: BTreeMap<String, Vec<i64>> = inputs
            .iter()
            .map(|(name, t)| (name.clone(), t.dims().iter().map(|&d| d as i64).collect()))
            .collect();
        let values = values(model, &inputs)?;
        // The outputs are dropped inside the timed call: what a server does with each request's results.
        let mut run = || -> Result<(), EngineError> {
            if cancel.load(Ordering::Relaxed) {
                return Err(EngineError::Device("cancelled".to_owned()));
            }
            let feed: Vec<(&str, &DynValue)> =
                values.iter().map(|(n, v)| (n.as_str(), v)).collect();
            session.run(feed).map(drop).map_err(&failed)
        };
        for _ in 0..settings.warmup.max(1) {
            run()?;
        }
        let mut peak = loaded_from.clone();
        let samples = super::timed(settings, &mut run, || peak.sample(device))?;
        let mut result = super::result(shape, input_shapes, settings.warmup, &samples);
        result.execution_provider = Some(provider.to_owned());
        result.engine_options = session_options(settings, provider);
        if !on_cpu {
            result.peak_memory_bytes = peak.growth();
        }
        results.push(result);
    }
    Ok(results)
}
