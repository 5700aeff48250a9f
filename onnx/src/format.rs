//! Recognising a model file by what it contains, never by its name.

/// What a file is, as far as kiln's pipeline cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// An ONNX `ModelProto` (protobuf).
    Onnx,
    /// A safetensors file.
    Safetensors,
    /// `model.safetensors.index.json`: the map of a sharded safetensors checkpoint.
    SafetensorsIndex,
    /// A PyTorch checkpoint written by `torch.save` (a zip holding `data.pkl`).
    PytorchZip,
    /// A bare pickle (legacy `torch.save` or anything else pickled): only ever read by the restricted reader.
    Pickle,
    /// A Hugging Face `config.json`.
    HfConfig,
    Unknown,
}

impl ModelFormat {
    /// The name reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelFormat::Onnx => "onnx",
            ModelFormat::Safetensors => "safetensors",
            ModelFormat::SafetensorsIndex => "safetensors-index",
            ModelFormat::PytorchZip => "pytorch",
            ModelFormat::Pickle => "pickle",
            ModelFormat::HfConfig => "hf-config",
            ModelFormat::Unknown => "other",
        }
    }
}

/// How many leading bytes [`detect`] looks at; give it at least this much of the file when it is larger.
pub const DETECT_BYTES: usize = 64 * 1024;

/// Detects the format from the file's first bytes (`head`) and its total length.
pub fn detect(head: &[u8], total_len: u64) -> ModelFormat {
    if is_safetensors(head, total_len) {
        ModelFormat::Safetensors
    } else if head.starts_with(b"PK\x03\x04") {
        if first_zip_entry(head)
            .is_some_and(|name| name == "data.pkl" || name.ends_with("/data.pkl"))
        {
            ModelFormat::PytorchZip
        } else {
            ModelFormat::Unknown
        }
    } else if head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1]) {
        ModelFormat::Pickle
    } else if let Some(format) = json_format(head, total_len) {
        format
    } else if is_onnx(head, total_len) {
        ModelFormat::Onnx
    } else {
        ModelFormat::Unknown
    }
}

fn is_safetensors(head: &[u8], total_len: u64) -> bool {
    let Some(length) = head.get(..8) else {
        return false;
    };
    let header_len = u64::from_le_bytes(length.try_into().expect("8 bytes"));
    header_len >= 2 && header_len <= total_len.saturating_sub(8) && head.get(8) == Some(&b'{')
}

/// The name of the first entry of a zip archive, from its local file header.
fn first_zip_entry(head: &[u8]) -> Option<&str> {
    let name_len = u16::from_le_bytes(head.get(26..28)?.try_into().ok()?) as usize;
    std::str::from_utf8(head.get(30..30 + name_len)?).ok()
}

fn json_format(head: &[u8], total_len: u64) -> Option<ModelFormat> {
    let text = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &head[i..])?;
    if !text.starts_with(b"{") || total_len > head.len() as u64 {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(head).ok()?;
    let object = value.as_object()?;
    Some(if object.contains_key("weight_map") {
        ModelFormat::SafetensorsIndex
    } else if object.contains_key("model_type") || object.contains_key("architectures") {
        ModelFormat::HfConfig
    } else {
        ModelFormat::Unknown
    })
}

/// Reads a protobuf varint at `at`; returns the value and the position after it.
fn varint(bytes: &[u8], mut at: usize) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(at)?;
        at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((value, at));
        }
    }
    None
}

/// An ONNX `ModelProto` starts with `ir_version` (field 1) and has a `graph` (field 7). The top-level
/// fields are walked as protobuf wire format as far as `head` reaches; any inconsistency means "not ONNX".
fn is_onnx(head: &[u8], total_len: u64) -> bool {
    let mut at = 0;
    let mut seen_graph = false;
    let mut first = true;
    while at < head.len() {
        let Some((tag, next)) = varint(head, at) else {
            return false;
        };
        let (field, wire_type) = (tag >> 3, tag & 7);
        if first && !(field == 1 && wire_type == 0) {
            return false;
        }
        if !(1..=20).contains(&field) {
            return false;
        }
        at = match wire_type {
            0 => match varint(head, next) {
                Some((value, after)) => {
                    if first && !(1..=20).contains(&value) {
                        return false;
                    }
                    after
                }
                None => return false,
            },
            2 => {
                let Some((len, after)) = varint(head, next) else {
                    return false;
                };
                if after as u64 + len > total_len {
                    return false;
                }
                seen_graph |= field == 7;
                after.saturating_add(len as usize)
            }
            _ => return false,
        };
        first = false;
    }
    seen_graph && !first
}

/// The first [`DETECT_BYTES`] of a file and its length: what [`detect`] reads.
pub fn read_head(path: &std::path::Path) -> std::io::Result<(Vec<u8>, u64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut head = Vec::with_capacity(DETECT_BYTES);
    (&mut file)
        .take(DETECT_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok((head, len))
}

/// Detects the format of a file on disk.
pub fn detect_file(path: &std::path::Path) -> std::io::Result<ModelFormat> {
    let (head, len) = read_head(path)?;
    Ok(detect(&head, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(bytes: &[u8]) -> ModelFormat {
        detect(bytes, bytes.len() as u64)
    }

    fn safetensors_file() -> Vec<u8> {
        let header = br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        file.extend_from_slice(&1.0f32.to_le_bytes());
        file
    }

    fn onnx_file() -> Vec<u8> {
        // ir_version = 8, producer_name = "kiln", graph = { name = "g" }, opset_import = { version = 17 }
        let mut file = vec![0x08, 0x08, 0x12, 0x04];
        file.extend_from_slice(b"kiln");
        file.extend_from_slice(&[0x3a, 0x03, 0x12, 0x01, b'g', 0x42, 0x02, 0x10, 0x11]);
        file
    }

    #[test]
    fn formats_are_recognised_by_content() {
        assert_eq!(whole(&safetensors_file()), ModelFormat::Safetensors);
        assert_eq!(whole(&onnx_file()), ModelFormat::Onnx);
        assert_eq!(whole(b"\x80\x02}q\x00."), ModelFormat::Pickle);
        assert_eq!(
            whole(br#"{"weight_map": {"w": "model-00001-of-00002.safetensors"}}"#),
            ModelFormat::SafetensorsIndex
        );
        assert_eq!(
            whole(br#" {"model_type": "bert", "hidden_size": 8}"#),
            ModelFormat::HfConfig
        );
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(&[0; 22]);
        zip.extend_from_slice(&(16u16).to_le_bytes());
        zip.extend_from_slice(&[0, 0]);
        zip.extend_from_slice(b"archive/data.pkl");
        assert_eq!(whole(&zip), ModelFormat::PytorchZip);
    }

    #[test]
    fn lookalikes_are_unknown() {
        assert_eq!(whole(b""), ModelFormat::Unknown);
        assert_eq!(whole(b"just text"), ModelFormat::Unknown);
        assert_eq!(whole(br#"{"hello": 1}"#), ModelFormat::Unknown);
        let mut wrong_zip = b"PK\x03\x04".to_vec();
        wrong_zip.extend_from_slice(&[0; 22]);
        wrong_zip.extend_from_slice(&(5u16).to_le_bytes());
        wrong_zip.extend_from_slice(&[0, 0]);
        wrong_zip.extend_from_slice(b"a.txt");
        assert_eq!(whole(&wrong_zip), ModelFormat::Unknown);
        // An ONNX prefix whose graph length runs past the end of the file.
        let mut truncated = onnx_file();
        truncated.truncate(8);
        truncated.extend_from_slice(&[0x3a, 0x7f]);
        assert_eq!(whole(&truncated), ModelFormat::Unknown);
        // A safetensors header length larger than the file.
        let mut lying = safetensors_file();
        lying[..8].copy_from_slice(&1000u64.to_le_bytes());
        assert_ne!(whole(&lying), ModelFormat::Safetensors);
    }

    #[test]
    fn a_large_onnx_file_is_recognised_from_its_head() {
        let file = onnx_file();
        assert_eq!(
            detect(&file[..8], file.len() as u64),
            ModelFormat::Unknown,
            "no graph seen yet"
        );
        assert_eq!(detect(&file, 10 * 1024 * 1024), ModelFormat::Onnx);
    }
}
