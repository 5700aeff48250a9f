//! The scan job's unit of work: one file, recognised by its content and checked by the scanner for its
//! format. Any refusal is final and names the reason; findings that do not make a file unsafe (NaN
//! weights) are reported as notes.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use bytes::Bytes;

use crate::format::{ModelFormat, detect, read_head};
use crate::{ModelError, model_check, pickle, pytorch, safetensors};

/// What the scan learned about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub format: ModelFormat,
    /// Findings worth a user's attention that do not refuse the file.
    pub notes: Vec<String>,
}

fn non_finite(tensor: &candle_core::Tensor) -> Result<u64, ModelError> {
    if !tensor.dtype().is_float() {
        return Ok(0);
    }
    let values = tensor
        .flatten_all()
        .and_then(|t| t.to_dtype(candle_core::DType::F32))
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|e| ModelError::InvalidArchive(e.to_string()))?;
    Ok(values.iter().filter(|v| !v.is_finite()).count() as u64)
}

/// Detects a file's format and runs that format's safety scan over all of it.
pub fn inspect_file(path: &Path) -> Result<FileReport, ModelError> {
    let (head, total_len) = read_head(path)?;
    let format = detect(&head, total_len);
    let mut notes = Vec::new();
    match format {
        ModelFormat::Safetensors => {
            let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
            let report = safetensors::scan(&mut reader, total_len)?;
            for (tensor, count) in report.non_finite {
                notes.push(format!(
                    "tensor {tensor:?} holds {count} NaN or infinite values"
                ));
            }
        }
        ModelFormat::SafetensorsIndex => {
            let index = crate::checkpoint::ShardIndex::parse(&head)?;
            notes.push(format!(
                "{} tensors in {} shards",
                index.weight_map.len(),
                index.shards().len()
            ));
        }
        ModelFormat::PytorchZip => {
            let report = pytorch::scan(BufReader::new(File::open(path)?))?;
            notes.push(format!(
                "{} storages in a {}-entry archive",
                report.pickle.persistent_ids, report.entries
            ));
            // Only now that the scan accepted the pickle are its tensors read (candle's reader builds
            // them from the pickle's data; it never runs code).
            for (name, tensor) in candle_core::pickle::read_all(path)
                .map_err(|e| ModelError::InvalidArchive(format!("tensors cannot be read: {e}")))?
            {
                let count = non_finite(&tensor)?;
                if count > 0 {
                    notes.push(format!(
                        "tensor {name:?} holds {count} NaN or infinite values"
                    ));
                }
            }
        }
        ModelFormat::Pickle => {
            if total_len > pickle::MAX_PICKLE_BYTES as u64 {
                return Err(ModelError::TooLarge {
                    what: "the pickle",
                    actual: total_len,
                    limit: pickle::MAX_PICKLE_BYTES as u64,
                });
            }
            pickle::scan(&std::fs::read(path)?)?;
        }
        ModelFormat::HfConfig => {
            let config: serde_json::Value = serde_json::from_slice(&head)
                .map_err(|e| ModelError::InvalidModel(format!("config.json: {e}")))?;
            if let Some(model_type) = config.get("model_type").and_then(|v| v.as_str()) {
                notes.push(format!("model_type {model_type:?}"));
            }
        }
        ModelFormat::Onnx => {
            let (_, checked) = model_check::check(Bytes::from(std::fs::read(path)?))?;
            check_external_data(path, &checked)?;
            notes.push(format!(
                "opset {}, {} nodes, producer {:?}",
                checked.opset, checked.nodes, checked.producer
            ));
        }
        ModelFormat::Unknown => refuse_false_promise(path)?,
    }
    Ok(FileReport { format, notes })
}

/// Every externally stored tensor's bytes must be in a file beside the model (the scan runs on the
/// version's files laid out by path), inside that file's length.
fn check_external_data(path: &Path, checked: &model_check::CheckedModel) -> Result<(), ModelError> {
    let folder = path.parent().unwrap_or(Path::new("."));
    for extent in &checked.external_extents {
        let len = match std::fs::metadata(folder.join(&extent.location)) {
            Ok(meta) => meta.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ModelError::InvalidModel(format!(
                    "it keeps weights in {:?}, but the version has no such file beside it; push the \
                     external-data file beside the model",
                    extent.location
                )));
            }
            Err(e) => return Err(e.into()),
        };
        extent.check_within(len)?;
    }
    Ok(())
}

/// A file whose name promises a model format its bytes are not: say what is wrong with it instead of
/// treating it as an opaque file (a truncated `model.onnx` would otherwise be "nothing to convert").
fn refuse_false_promise(path: &Path) -> Result<(), ModelError> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("onnx") => {
            model_check::check(Bytes::from(std::fs::read(path)?))?;
            Ok(())
        }
        Some("safetensors") => {
            let total_len = std::fs::metadata(path)?.len();
            let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
            safetensors::scan(&mut reader, total_len)?;
            Ok(())
        }
        _ => Ok(()),
    }
}
