//! An ONNX external-data file written as initializers are made (ONNX's convention: `location`, `offset`,
//! `length`, offsets aligned to 4 KiB), so a model larger than memory never has its weights in memory
//! at once.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::ModelError;
use crate::proto::{StringStringEntryProto, TensorProto, tensor_proto::DataLocation};

const ALIGNMENT: u64 = 4096;
/// Initializers smaller than this stay inline (shapes, scalars), as ONNX's own tools do.
pub const SMALL_TENSOR_BYTES: usize = 1024;

pub struct ExternalDataWriter {
    /// Unbuffered: every append is one or two whole writes, and a writer dropped with its builder
    /// leaves nothing unwritten.
    file: std::fs::File,
    location: String,
    path: PathBuf,
    offset: u64,
}

impl ExternalDataWriter {
    /// Creates (or truncates) `dir/location`.
    pub fn create(dir: &Path, location: &str) -> Result<Self, ModelError> {
        let path = dir.join(location);
        Ok(Self {
            file: std::fs::File::create(&path)?,
            location: location.to_owned(),
            path,
            offset: 0,
        })
    }

    /// Appends `raw` at the next aligned offset and points `tensor` at it.
    pub fn append(&mut self, tensor: &mut TensorProto, raw: &[u8]) -> Result<(), ModelError> {
        let padding = self.offset.next_multiple_of(ALIGNMENT) - self.offset;
        if padding > 0 {
            self.file.write_all(&vec![0u8; padding as usize])?;
            self.offset += padding;
        }
        self.file.write_all(raw)?;
        let entry = |key: &str, value: String| StringStringEntryProto {
            key: Some(key.to_owned()),
            value: Some(value),
        };
        tensor.raw_data = None;
        tensor.data_location = Some(DataLocation::External as i32);
        tensor.external_data = vec![
            entry("location", self.location.clone()),
            entry("offset", self.offset.to_string()),
            entry("length", raw.len().to_string()),
        ];
        self.offset += raw.len() as u64;
        Ok(())
    }

    /// Closes the file; returns its (location, path).
    pub fn finish(self) -> (String, PathBuf) {
        (self.location, self.path)
    }
}
