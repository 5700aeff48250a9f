//! Turns a verified manifest into a [`Served`] model: the variant chosen, its files fetched by digest,
//! one session per instance loaded on the engine, and their batcher started.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use candle_core::Device;
use kiln_core::ModelRef;

use super::batch_probe;
use super::batcher::{BatchPolicy, Batcher};
use super::config_labels::{CONFIG_FILE, MAX_CONFIG_BYTES};
use super::labels::{self, ClassLabels, LabelFile};
use super::registry::{self, Fetched, Registry};
use super::request_memory::RequestMemory;
use super::session::Session;
use super::signature::Signature;
use super::{ServeArgs, ServeError, Served};
use crate::engine::{self, Engine};
use kiln_core::variant_layout::shallowest_config;

pub struct Loader {
    engine: Engine,
    device: Device,
    device_spec: String,
    instances: usize,
    threads_per_instance: usize,
    policy: BatchPolicy,
    variant: Option<String>,
    cache: PathBuf,
    label_files: Vec<LabelFile>,
    /// The bytes the engine may hold on the CPU (`--max-engine-memory-mib`), when limited: ONNX Runtime's
    /// arena, or kiln's evaluator's runs, each instance's a share.
    memory_limit: Option<u64>,
    /// The bytes one run's outputs may hold (`--max-response-mib`), when limited.
    response_limit: Option<u64>,
    /// The bytes the requests in flight may hold together (`--max-in-flight-mib`), when limited.
    in_flight_limit: Option<u64>,
    /// Shared by the front ends and every version's batcher (which counts a batch's stacked inputs).
    request_memory: RequestMemory,
    intra_op_spinning: bool,
}

impl Loader {
    pub fn new(args: &ServeArgs, cores: usize) -> Result<Self, String> {
        if args.instances == 0 || args.max_batch_size == 0 || args.max_queue == 0 {
            return Err(
                "--instances, --max-batch-size and --max-queue must be at least 1".to_owned(),
            );
        }
        let label_files = args
            .labels
            .iter()
            .map(|a| LabelFile::read(a))
            .collect::<Result<Vec<_>, _>>()?;
        let threads = args
            .threads
            .unwrap_or_else(|| (cores / args.instances).max(1));
        let (device, info) = crate::device::open(&args.device, threads)?;
        let name = match (&args.engine, &args.onnxruntime_lib) {
            (Some(name), _) => name.clone(),
            (None, Some(_)) => "ort".to_owned(),
            (None, None) => "kiln".to_owned(),
        };
        let engine = engine::open(&[name], args.onnxruntime_lib.as_deref(), &info.device)?
            .into_iter()
            .next()
            .ok_or("no engine")?;
        let limits = super::memory_limit::limits(
            args.max_engine_memory_mib,
            args.max_response_mib,
            args.max_in_flight_mib,
        );
        let engine_limit = limits.engine;
        let memory_limit = match &engine {
            Engine::OnnxRuntime(runtime) if info.device == "cpu" => {
                if let Some(bytes) = engine_limit {
                    runtime.limit_cpu_memory(usize::try_from(bytes).unwrap_or(usize::MAX))?;
                }
                engine_limit
            }
            // kiln's evaluator counts each run's values against its instance's share.
            Engine::Kiln if info.device == "cpu" => engine_limit,
            _ => None,
        };
        Ok(Self {
            engine,
            device,
            device_spec: info.device,
            instances: args.instances,
            threads_per_instance: threads,
            policy: BatchPolicy {
                max_batch: args.max_batch_size,
                delay: Duration::from_micros(args.batch_delay_us),
                max_queue: args.max_queue,
                give_back_memory: !args.keep_engine_memory,
                run_timeout: (args.run_timeout_s > 0.0)
                    .then(|| Duration::from_secs_f64(args.run_timeout_s)),
            },
            variant: args.variant.clone(),
            cache: args.cache.clone(),
            label_files,
            memory_limit,
            response_limit: limits.response,
            in_flight_limit: limits.in_flight,
            request_memory: RequestMemory::waiting(
                limits.in_flight,
                Duration::from_millis(args.max_memory_wait_ms),
            ),
            intra_op_spinning: args.intra_op_spinning,
        })
    }

    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    /// The bytes the engine may hold, when it is limited (on the CPU).
    pub fn memory_limit(&self) -> Option<u64> {
        self.memory_limit
    }

    /// The bytes one run's outputs may hold, when limited.
    pub fn response_limit(&self) -> Option<u64> {
        self.response_limit
    }

    /// The bytes the requests in flight may hold together, when limited.
    pub fn in_flight_limit(&self) -> Option<u64> {
        self.in_flight_limit
    }

    /// What the requests in flight hold (`--max-in-flight-mib`).
    pub fn request_memory(&self) -> RequestMemory {
        self.request_memory.clone()
    }

    /// `cpu` or `cuda:N`.
    pub fn device(&self) -> &str {
        &self.device_spec
    }

    /// Sessions of the model at `model_path`, their batcher, and the names of its outputs' classes (from the
    /// model, `config`: the text of the `config.json` that came with it, and `--labels`).
    async fn start(
        &self,
        model_path: PathBuf,
        signature: Signature,
        config: Option<String>,
        version: &str,
    ) -> Result<(Batcher, Arc<ClassLabels>, Arc<Signature>), String> {
        let (engine, device, spec) = (
            self.engine.clone(),
            self.device.clone(),
            self.device_spec.clone(),
        );
        let has_strings = signature
            .inputs
            .iter()
            .chain(&signature.outputs)
            .any(|t| t.datatype == super::tensor::Datatype::Bytes);
        if has_strings && matches!(self.engine, Engine::Kiln) {
            return Err(
                "the model has string (BYTES) tensors, which kiln's evaluator does not hold; serve it with --engine ort"
                    .to_owned(),
            );
        }
        let (instances, threads) = (self.instances, self.threads_per_instance);
        let spinning = self.intra_op_spinning;
        let files = self.label_files.clone();
        let max_output_bytes = self.response_limit.unwrap_or(u64::MAX);
        let run_memory = self
            .memory_limit
            .map(|bytes| bytes / instances.max(1) as u64);
        let (sessions, labels, signature) = tokio::task::spawn_blocking(move || {
            let model = labels::read_model(&model_path);
            let labels_of = |signature: &Signature| {
                ClassLabels::new(model.as_ref(), config.as_deref(), &files, signature)
            };
            // A row's classes are its own values only when rows are batched: the labels for both
            // answers of the probe below, known before the model goes.
            let labels = labels_of(&signature)?;
            let if_batchable = if signature.may_batch() {
                let mut batchable = signature.clone();
                batchable.batchable = true;
                Some((labels_of(&batchable)?, batchable))
            } else {
                None
            };
            // Gone before the engine reads the file: a large model is not held twice.
            drop(model);
            let mut sessions = (0..instances)
                .map(|_| {
                    Session::load(&engine, &model_path, (&device, &spec), (threads, spinning)).map(
                        |s| {
                            s.with_max_output_bytes(max_output_bytes)
                                .with_run_memory_limit(run_memory)
                        },
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let (labels, signature) = match (if_batchable, sessions.first_mut()) {
                (Some((batched_labels, batchable)), Some(session)) => {
                    match batch_probe::rows_are_independent(session, &batchable) {
                        Ok(()) => (batched_labels, batchable),
                        Err(why) => {
                            tracing::info!(
                                file = %model_path.display(),
                                "requests run one at a time: {why}"
                            );
                            (labels, signature)
                        }
                    }
                }
                _ => (labels, signature),
            };
            Ok::<_, String>((sessions, labels, Arc::new(signature)))
        })
        .await
        .map_err(|e| e.to_string())??;
        Ok((
            Batcher::start(
                sessions,
                signature.clone(),
                self.policy,
                version,
                self.request_memory.clone(),
            ),
            Arc::new(labels),
            signature,
        ))
    }

    /// Loads the one ONNX model in `folder` (or the file `folder` names), its signature read from the
    /// model itself: what KServe's storage initializer or an OCI model image placed.
    pub async fn load_folder(&self, folder: &Path, version: &str) -> Result<Served, String> {
        let model_path = if folder.is_file() {
            folder.to_owned()
        } else {
            let found: Vec<PathBuf> = walkdir::WalkDir::new(folder)
                .into_iter()
                .filter_map(Result::ok)
                .filter(|e| {
                    e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "onnx")
                })
                .map(|e| e.into_path())
                .collect();
            match found.as_slice() {
                [one] => one.clone(),
                [] => return Err(format!("{} holds no .onnx model", folder.display())),
                many => {
                    return Err(format!(
                        "{} holds {} .onnx models; name one: --model-dir {}",
                        folder.display(),
                        many.len(),
                        many[0].display()
                    ));
                }
            }
        };
        let bytes = std::fs::read(&model_path)
            .map_err(|e| format!("cannot read {}: {e}", model_path.display()))?;
        let sha256 = kiln_core::Sha256Digest::of(&bytes);
        let (_, checked) = kiln_onnx::model_check::check(bytes.into())
            .map_err(|e| format!("{}: {e}", model_path.display()))?;
        let signature = Signature::from_onnx(&checked.inputs, &checked.outputs)?;
        let config = model_path
            .parent()
            .and_then(|folder| read_config(&folder.join(CONFIG_FILE)));
        let (batcher, labels, signature) = self
            .start(model_path.clone(), signature, config, version)
            .await?;
        tracing::info!(file = %model_path.display(), engine = self.engine.name(), batchable = signature.batchable, "loaded");
        Ok(Served {
            reference: model_path.display().to_string(),
            version: version.to_owned(),
            variant: "file".to_owned(),
            sha256,
            sequence: 0,
            payload_sha256: sha256,
            expires_at: None,
            signature,
            labels,
            batcher: Arc::new(batcher),
        })
    }

    /// Loads the variant `fetched` names; the model being served (if any) keeps serving meanwhile.
    pub async fn load(
        &self,
        registry: &Registry,
        subject: &ModelRef,
        fetched: Fetched,
    ) -> Result<Served, ServeError> {
        let manifest = &fetched.verified.manifest;
        let variant = registry::choose_variant(manifest, self.variant.as_deref())
            .map_err(ServeError::Refused)?;
        let signature = Signature::new(&variant.inputs, &variant.outputs)
            .map_err(|why| ServeError::Refused(format!("variant {}: {why}", variant.name)))?;
        let model_path = registry
            .fetch_variant(variant, &self.cache)
            .await
            .map_err(ServeError::Registry)?;
        let config = self.source_config(registry, manifest).await;
        let (batcher, labels, signature) = self
            .start(
                model_path.clone(),
                signature,
                config,
                &manifest.version.to_string(),
            )
            .await
            .map_err(|why| {
                ServeError::Refused(format!(
                    "variant {} of version {} does not load on {}: {why}",
                    variant.name,
                    manifest.version,
                    self.engine.name()
                ))
            })?;
        tracing::info!(
            model = %subject,
            version = %manifest.version,
            variant = %variant.name,
            file = %model_path.display(),
            engine = self.engine.name(),
            batchable = signature.batchable,
            "loaded"
        );
        Ok(Served {
            reference: subject.to_string(),
            version: manifest.version.to_string(),
            variant: variant.name.clone(),
            sha256: variant.sha256,
            sequence: manifest.sequence,
            payload_sha256: fetched.verified.payload_sha256,
            expires_at: Some(manifest.expires_at),
            signature,
            labels,
            batcher: Arc::new(batcher),
        })
    }

    /// The text of the `config.json` among the version's files (the one at the top when there are
    /// several), for its class names; `None` when there is none, or it cannot be had (logged: the model is
    /// served all the same, its classes numbered).
    async fn source_config(
        &self,
        registry: &Registry,
        manifest: &kiln_core::deployment::DeploymentManifest,
    ) -> Option<String> {
        let sources = &manifest.sources;
        let file = &sources[shallowest_config(sources.iter().map(|f| f.path.as_str()))?];
        if file.size as u64 > MAX_CONFIG_BYTES {
            return None;
        }
        match registry.fetch_file(file, &self.cache).await {
            Ok(path) => read_config(&path),
            Err(why) => {
                tracing::warn!(file = %file.path, error = %why, "cannot fetch the version's config.json; its classes stay unnamed");
                None
            }
        }
    }
}

/// A `config.json`'s text, when it is there and small enough to be a configuration.
fn read_config(path: &Path) -> Option<String> {
    let size = std::fs::metadata(path).ok()?.len();
    (size <= MAX_CONFIG_BYTES)
        .then(|| std::fs::read_to_string(path).ok())
        .flatten()
}
