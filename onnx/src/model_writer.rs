//! Writing an ONNX model to disk: one protobuf when it fits, else the large initializers in an
//! external-data file beside it (ONNX's convention: `location`, `offset`, `length`, offsets aligned to
//! 4 KiB), because protobuf cannot encode a message over 2 GiB.

use std::path::{Path, PathBuf};

use prost::Message;

use crate::ModelError;
use crate::external_data::{ExternalDataWriter, SMALL_TENSOR_BYTES};
use crate::proto::{ModelProto, tensor_proto::DataLocation};

/// Models whose initializers hold more than this are written with external data (protobuf's limit is
/// 2 GiB; the rest of the model needs room too).
pub const MAX_INLINE_BYTES: u64 = 1536 * 1024 * 1024;

/// Writes `model` as `dir/name` (and `dir/name.data` when it must); returns (file name, path) pairs, the
/// model first. Externalized initializers are rewritten in `model` to point at the data file, so it
/// describes exactly what was written.
pub fn write(
    model: &mut ModelProto,
    dir: &Path,
    name: &str,
    max_inline: u64,
) -> Result<Vec<(String, PathBuf)>, ModelError> {
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| ModelError::InvalidModel("the model has no graph".to_owned()))?;
    let inline: u64 = graph
        .initializer
        .iter()
        .filter_map(|t| t.raw_data.as_ref())
        .map(|r| r.len() as u64)
        .sum();
    let mut files = Vec::new();
    if inline > max_inline {
        let mut data = ExternalDataWriter::create(dir, &format!("{name}.data"))?;
        for tensor in &mut graph.initializer {
            let Some(raw) = tensor.raw_data.take_if(|r| r.len() >= SMALL_TENSOR_BYTES) else {
                continue;
            };
            data.append(tensor, &raw)?;
        }
        files.push(data.finish());
    }
    let model_path = dir.join(name);
    std::fs::write(&model_path, model.encode_to_vec())?;
    files.insert(0, (name.to_owned(), model_path));
    Ok(files)
}

/// Reads every external-data initializer into the model (for rewriting it), from files under `base_dir`.
pub fn internalize(model: &mut ModelProto, base_dir: &Path) -> Result<(), ModelError> {
    let Some(graph) = model.graph.as_mut() else {
        return Ok(());
    };
    for tensor in &mut graph.initializer {
        if tensor.data_location != Some(DataLocation::External as i32) {
            continue;
        }
        let value = |key: &str| {
            tensor
                .external_data
                .iter()
                .find(|e| e.key.as_deref() == Some(key))
                .and_then(|e| e.value.clone())
        };
        let location = value("location").ok_or_else(|| {
            ModelError::InvalidModel("external data without a location".to_owned())
        })?;
        let offset: u64 = value("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
        // Only this tensor's range is read: a data file holds every tensor.
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(base_dir.join(&location))?;
        let size = file.metadata()?.len();
        let length: u64 = value("length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(size.saturating_sub(offset));
        if offset.checked_add(length).is_none_or(|end| end > size) {
            return Err(ModelError::Truncated(format!(
                "{location} is shorter than its tensors say"
            )));
        }
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = vec![0u8; length as usize];
        file.read_exact(&mut bytes)?;
        tensor.raw_data = Some(bytes::Bytes::from(bytes));
        tensor.data_location = None;
        tensor.external_data.clear();
    }
    Ok(())
}
