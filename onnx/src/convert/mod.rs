//! From a version's files to one ONNX model: decide what the version holds ([`plan`]), then either check
//! the ONNX model it already is, or build an ONNX graph from a Hugging Face checkpoint and prove it
//! computes what the checkpoint computes ([`convert_hf`]).

pub mod bert;
pub mod decoder;
pub mod gpt2;
pub mod hf_config;
pub mod llama;
pub mod llama_eager;
mod transformer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::checkpoint::{Checkpoint, ShardIndex, WeightFiles};
use crate::external_data::ExternalDataWriter;
use crate::format::ModelFormat;
use crate::graph_builder::GraphBuilder;
use crate::model_check::{self, CheckedModel};
use crate::model_writer;
use crate::validate::Validation;
use crate::{ModelError, proto};

/// What kiln can turn into an ONNX model, for messages that refuse everything else.
pub const SUPPORTED: &str = "kiln converts an ONNX model (one .onnx file, with its external data), \
    or a Hugging Face checkpoint of the BERT, GPT-2 or Llama family (config.json with model.safetensors, \
    sharded safetensors with model.safetensors.index.json, or a PyTorch state dict such as pytorch_model.bin)";

/// A version file with this path holds the inputs validation runs the model on (safetensors, one tensor
/// per graph input) instead of generated ones.
pub const SAMPLE_INPUTS: &str = "sample_inputs.safetensors";

/// One file of the version: its path in the version, where its bytes are, and its detected format.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: String,
    pub local: PathBuf,
    pub format: ModelFormat,
}

impl SourceFile {
    /// The files directly in `dir` (a checkpoint or model folder), by name, each with its detected format.
    pub fn list(dir: &Path) -> Result<Vec<SourceFile>, ModelError> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let local = entry?.path();
            if !local.is_file() {
                continue;
            }
            let path = local
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| {
                    ModelError::InvalidModel(format!("{} has no usable name", local.display()))
                })?
                .to_owned();
            files.push(SourceFile {
                path,
                format: crate::format::detect_file(&local)?,
                local,
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }
}

/// The transformer families kiln builds ONNX graphs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Bert,
    Gpt2,
    Llama,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::Gpt2 => "gpt2",
            Family::Llama => "llama",
        }
    }
}

/// A Hugging Face checkpoint found in a version.
#[derive(Debug, Clone)]
pub struct HfCheckpoint {
    pub family: Family,
    pub config: serde_json::Value,
    pub weights: WeightFiles,
    /// The version paths the checkpoint was read from, config first.
    pub sources: Vec<String>,
}

#[derive(Debug, Clone)]
pub enum Plan {
    /// The version holds an ONNX model: it is the `onnx` variant as pushed.
    Onnx {
        model: String,
        /// Version paths of its external-data files.
        external: Vec<String>,
        checked: CheckedModel,
    },
    HuggingFace(HfCheckpoint),
}

fn folder(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Decides what the version's files are and how its `onnx` variant is made.
pub fn plan(files: &[SourceFile]) -> Result<Plan, ModelError> {
    let by_path: HashMap<&str, &SourceFile> = files.iter().map(|f| (f.path.as_str(), f)).collect();
    let onnx: Vec<&SourceFile> = files
        .iter()
        .filter(|f| f.format == ModelFormat::Onnx)
        .collect();
    if !onnx.is_empty() {
        let model = match onnx.as_slice() {
            [one] => *one,
            several => several
                .iter()
                .copied()
                .find(|f| f.path == "model.onnx")
                .ok_or_else(|| {
                    let names: Vec<&str> = several.iter().map(|f| f.path.as_str()).collect();
                    ModelError::Unsupported(format!(
                        "the version holds several ONNX models ({}); name the one to deploy model.onnx, \
                         or push one model per version",
                        names.join(", ")
                    ))
                })?,
        };
        let (_, checked) = model_check::check(Bytes::from(std::fs::read(&model.local)?))?;
        let external = checked
            .external_files
            .iter()
            .map(|location| {
                let path = join(folder(&model.path), location);
                if by_path.contains_key(path.as_str()) {
                    Ok(path)
                } else {
                    Err(ModelError::InvalidModel(format!(
                        "{} keeps weights in {location:?}, but the version has no file {path:?}; \
                         push the external-data file beside the model",
                        model.path
                    )))
                }
            })
            .collect::<Result<_, _>>()?;
        return Ok(Plan::Onnx {
            model: model.path.clone(),
            external,
            checked,
        });
    }
    let configs: Vec<&SourceFile> = files
        .iter()
        .filter(|f| f.format == ModelFormat::HfConfig)
        .collect();
    let config_file = match configs.as_slice() {
        [] => return Err(ModelError::Unsupported(format!("nothing to convert. {SUPPORTED}"))),
        [one] => *one,
        several => several
            .iter()
            .copied()
            .find(|f| f.path == "config.json")
            .ok_or_else(|| {
                ModelError::Unsupported(format!(
                    "the version holds several config.json files; push one model per version. {SUPPORTED}"
                ))
            })?,
    };
    let config: serde_json::Value = serde_json::from_slice(&std::fs::read(&config_file.local)?)
        .map_err(|e| ModelError::InvalidModel(format!("{}: {e}", config_file.path)))?;
    let model_type = config
        .get("model_type")
        .and_then(|v| v.as_str())
        .unwrap_or("(none)");
    let family = match model_type {
        "bert" => Family::Bert,
        "gpt2" => Family::Gpt2,
        "llama" => Family::Llama,
        other => {
            return Err(ModelError::Unsupported(format!(
                "model_type {other:?} in {}. {SUPPORTED}",
                config_file.path
            )));
        }
    };
    let dir = folder(&config_file.path);
    let in_dir = |format: ModelFormat| -> Vec<&SourceFile> {
        files
            .iter()
            .filter(|f| f.format == format && folder(&f.path) == dir && f.path != SAMPLE_INPUTS)
            .collect()
    };
    let mut sources = vec![config_file.path.clone()];
    let weights = if let Some(index) = in_dir(ModelFormat::SafetensorsIndex).first() {
        let parsed = ShardIndex::parse(&std::fs::read(&index.local)?)?;
        sources.push(index.path.clone());
        let mut shards = Vec::new();
        for shard in parsed.shards() {
            let path = join(dir, shard);
            let file = by_path.get(path.as_str()).ok_or_else(|| {
                ModelError::InvalidModel(format!(
                    "{} names shard {shard:?}, but the version has no file {path:?}",
                    index.path
                ))
            })?;
            if file.format != ModelFormat::Safetensors {
                return Err(ModelError::InvalidModel(format!(
                    "{path} is not a safetensors file"
                )));
            }
            sources.push(path);
            shards.push(file.local.clone());
        }
        WeightFiles::Safetensors(shards)
    } else if let Some(ranks) = written_by_ranks(&in_dir(ModelFormat::Safetensors))? {
        sources.extend(ranks.iter().map(|f| f.path.clone()));
        WeightFiles::Safetensors(ranks.iter().map(|f| f.local.clone()).collect())
    } else if let [single] = in_dir(ModelFormat::Safetensors).as_slice() {
        sources.push(single.path.clone());
        WeightFiles::Safetensors(vec![single.local.clone()])
    } else if let [checkpoint] = in_dir(ModelFormat::PytorchZip).as_slice() {
        sources.push(checkpoint.path.clone());
        WeightFiles::Pytorch(checkpoint.local.clone())
    } else {
        return Err(ModelError::Unsupported(format!(
            "{} has no weights beside it (one model.safetensors, shards with model.safetensors.index.json, \
             or one PyTorch state dict). {SUPPORTED}",
            config_file.path
        )));
    };
    Ok(Plan::HuggingFace(HfCheckpoint {
        family,
        config,
        weights,
        sources,
    }))
}

/// Several safetensors files that each hold one rank's pieces of the tensors (PyTorch's distributed
/// checkpoint, as an FSDP job saves it; [`crate::dcp_shards`]); None for anything else.
fn written_by_ranks<'f>(
    files: &[&'f SourceFile],
) -> Result<Option<Vec<&'f SourceFile>>, ModelError> {
    if files.len() < 2 {
        return Ok(None);
    }
    for file in files {
        let mut handle = std::fs::File::open(&file.local)?;
        let size = handle.metadata()?.len();
        let header = crate::safetensors::read_header(&mut handle, size)?;
        if crate::dcp_shards::piece_offsets(&header.metadata)?.is_none() {
            return Ok(None);
        }
    }
    Ok(Some(files.to_vec()))
}

/// A converted model, written and proven.
#[derive(Debug, Clone)]
pub struct Converted {
    /// (file name, path): `model.onnx`, then `model.onnx.data` when the weights had to go beside it.
    pub files: Vec<(String, PathBuf)>,
    pub checked: CheckedModel,
    pub validation: Validation,
}

/// Builds the ONNX graph for a Hugging Face checkpoint, validates it against the reference forward pass
/// (a model outside the tolerance is an error, never a variant), and writes it to `out_dir`.
pub fn convert_hf(checkpoint: &HfCheckpoint, out_dir: &Path) -> Result<Converted, ModelError> {
    convert_hf_with(checkpoint, out_dir, CONVERTED_MAX_INLINE_BYTES)
}

/// A converted model whose weights are larger than this keeps them in `model.onnx.data`: an inline model
/// is encoded whole in memory, a model with external data never holds more than a weight at a time.
pub const CONVERTED_MAX_INLINE_BYTES: u64 = 256 * 1024 * 1024;

/// [`convert_hf`] with the size above which weights go to an external-data file. The checkpoint is read
/// one tensor at a time and each weight is written once, in the checkpoint's own precision: into the
/// data file as the graph is built when the weights are larger than `max_inline`, inline otherwise.
pub fn convert_hf_with(
    checkpoint: &HfCheckpoint,
    out_dir: &Path,
    max_inline: u64,
) -> Result<Converted, ModelError> {
    let weights = Checkpoint::open(&checkpoint.weights)?;
    let data_file = "model.onnx.data";
    let external = weights.stored_bytes() > max_inline;
    let g = if external {
        GraphBuilder::with_external_data(ExternalDataWriter::create(out_dir, data_file)?)
    } else {
        GraphBuilder::new()
    };
    let base_dir = external.then_some(out_dir);
    let config = &checkpoint.config;
    let (mut model, validation) = match checkpoint.family {
        Family::Bert => bert::convert(config, &weights, g, base_dir)?,
        Family::Gpt2 => gpt2::convert(config, &weights, g, base_dir)?,
        Family::Llama => llama::convert(config, &weights, g, base_dir)?,
    };
    drop(weights);
    let mut files = model_writer::write(&mut model, out_dir, "model.onnx", u64::MAX)?;
    if external {
        files.push((data_file.to_owned(), out_dir.join(data_file)));
    }
    let checked = model_check::check_model(&model)?;
    Ok(Converted {
        files,
        checked,
        validation,
    })
}

/// The metadata key naming the longest sequence a converted model's position table holds: runners cap the
/// sequence length they measure at by default with it.
pub const MAX_SEQUENCE_KEY: &str = "kiln.max_sequence_length";

/// The longest sequence the model's position table holds, as metadata.
pub fn max_sequence(positions: usize) -> proto::StringStringEntryProto {
    proto::StringStringEntryProto {
        key: Some(MAX_SEQUENCE_KEY.to_owned()),
        value: Some(positions.to_string()),
    }
}

/// The `producer_name` kiln writes into the models it builds.
pub fn producer() -> proto::StringStringEntryProto {
    proto::StringStringEntryProto {
        key: Some("kiln.converter".to_owned()),
        value: Some(format!("kiln-onnx {}", env!("CARGO_PKG_VERSION"))),
    }
}
