//! The safety scan of a safetensors file: a bounded header, known dtypes, shapes that match their byte
//! ranges, ranges inside the file that neither overlap nor leave holes, and a report of tensors holding
//! NaN or infinite values. Reads the file in bounded chunks; nothing is loaded whole.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

use crate::ModelError;

/// Headers larger than this are refused (the format's own reference implementation uses the same bound).
pub const MAX_HEADER_BYTES: u64 = 100 * 1024 * 1024;
/// No real dimension comes near this; larger ones are corrupt or hostile.
pub const MAX_DIM: u64 = 1 << 40;

/// One tensor as the header describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    /// Byte range inside the data section.
    pub begin: u64,
    pub end: u64,
}

/// A checked header: where the data section starts, the tensors by offset, and the metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub data_start: u64,
    pub tensors: Vec<TensorInfo>,
    pub metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetensorsReport {
    pub tensors: Vec<TensorInfo>,
    pub metadata: BTreeMap<String, String>,
    /// Tensors holding NaN or infinite values, with how many such values each holds.
    pub non_finite: Vec<(String, u64)>,
}

fn dtype_size(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" => 8,
        _ => return None,
    })
}

fn invalid(tensor: &str, reason: impl Into<String>) -> ModelError {
    ModelError::InvalidTensor {
        tensor: tensor.to_owned(),
        reason: reason.into(),
    }
}

fn parse_tensor(name: &str, value: &serde_json::Value) -> Result<TensorInfo, ModelError> {
    let object = value
        .as_object()
        .ok_or_else(|| invalid(name, "is not an object"))?;
    let dtype = object
        .get("dtype")
        .and_then(|d| d.as_str())
        .ok_or_else(|| invalid(name, "has no dtype"))?;
    let size =
        dtype_size(dtype).ok_or_else(|| invalid(name, format!("has unknown dtype {dtype:?}")))?;
    let shape = object
        .get("shape")
        .and_then(|s| s.as_array())
        .ok_or_else(|| invalid(name, "has no shape"))?
        .iter()
        .map(|d| d.as_u64().filter(|d| *d <= MAX_DIM))
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(|| {
            invalid(
                name,
                format!("has a dimension that is not a whole number up to {MAX_DIM}"),
            )
        })?;
    let offsets = object
        .get("data_offsets")
        .and_then(|o| o.as_array())
        .filter(|o| o.len() == 2)
        .and_then(|o| Some((o[0].as_u64()?, o[1].as_u64()?)))
        .ok_or_else(|| invalid(name, "needs data_offsets [begin, end]"))?;
    let (begin, end) = offsets;
    let bytes = shape
        .iter()
        .try_fold(size, |acc, d| acc.checked_mul(*d))
        .ok_or_else(|| invalid(name, "has a shape whose size overflows"))?;
    if end < begin || end - begin != bytes {
        return Err(invalid(
            name,
            format!(
                "shape {shape:?} of {dtype} needs {bytes} bytes but data_offsets give {}",
                end.saturating_sub(begin)
            ),
        ));
    }
    Ok(TensorInfo {
        name: name.to_owned(),
        dtype: dtype.to_owned(),
        shape,
        begin,
        end,
    })
}

/// Reads and checks the header of a safetensors file of `total_len` bytes.
pub fn read_header<R: Read>(reader: &mut R, total_len: u64) -> Result<Header, ModelError> {
    let mut length = [0u8; 8];
    reader.read_exact(&mut length)?;
    let header_len = u64::from_le_bytes(length);
    if header_len > MAX_HEADER_BYTES {
        return Err(ModelError::TooLarge {
            what: "the safetensors header",
            actual: header_len,
            limit: MAX_HEADER_BYTES,
        });
    }
    if header_len > total_len.saturating_sub(8) {
        return Err(ModelError::Truncated(format!(
            "the header claims {header_len} bytes but the file has {total_len}"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    reader.read_exact(&mut header)?;
    let value: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|e| ModelError::InvalidHeader(format!("not JSON: {e}")))?;
    let object = value
        .as_object()
        .ok_or_else(|| ModelError::InvalidHeader("not a JSON object".into()))?;
    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::new();
    for (name, value) in object {
        if name == "__metadata__" {
            let entries = value
                .as_object()
                .ok_or_else(|| ModelError::InvalidHeader("__metadata__ is not an object".into()))?;
            for (key, text) in entries {
                let text = text.as_str().ok_or_else(|| {
                    ModelError::InvalidHeader(format!("__metadata__.{key} is not a string"))
                })?;
                metadata.insert(key.clone(), text.to_owned());
            }
        } else {
            tensors.push(parse_tensor(name, value)?);
        }
    }
    let data_len = total_len - 8 - header_len;
    tensors.sort_by_key(|t| (t.begin, t.end));
    let mut covered = 0u64;
    for tensor in &tensors {
        if tensor.end > data_len {
            return Err(invalid(
                &tensor.name,
                format!(
                    "ends at byte {} but the data section has {data_len}",
                    tensor.end
                ),
            ));
        }
        if tensor.begin < covered {
            return Err(invalid(&tensor.name, "overlaps another tensor"));
        }
        if tensor.begin > covered {
            return Err(invalid(
                &tensor.name,
                format!(
                    "leaves unreferenced bytes {covered}..{} before it",
                    tensor.begin
                ),
            ));
        }
        covered = tensor.end;
    }
    if covered != data_len {
        return Err(ModelError::InvalidHeader(format!(
            "the data section has {data_len} bytes but the tensors describe {covered}"
        )));
    }
    Ok(Header {
        data_start: 8 + header_len,
        tensors,
        metadata,
    })
}

/// Counts NaN and infinite values in one floating-point tensor, reading it in bounded chunks.
fn count_non_finite<R: Read>(reader: &mut R, tensor: &TensorInfo) -> Result<u64, ModelError> {
    let width = dtype_size(&tensor.dtype).expect("checked in the header") as usize;
    let check: fn(&[u8]) -> bool = match tensor.dtype.as_str() {
        "F32" => |b| !f32::from_le_bytes(b.try_into().expect("4 bytes")).is_finite(),
        "F64" => |b| !f64::from_le_bytes(b.try_into().expect("8 bytes")).is_finite(),
        "F16" => |b| !half::f16::from_le_bytes(b.try_into().expect("2 bytes")).is_finite(),
        "BF16" => |b| !half::bf16::from_le_bytes(b.try_into().expect("2 bytes")).is_finite(),
        _ => return Ok(0),
    };
    let mut remaining = tensor.end - tensor.begin;
    let mut buffer = vec![0u8; (1 << 20) / width * width];
    let mut count = 0;
    while remaining > 0 {
        let n = remaining.min(buffer.len() as u64) as usize;
        reader.read_exact(&mut buffer[..n])?;
        count += buffer[..n]
            .chunks_exact(width)
            .filter(|value| check(value))
            .count() as u64;
        remaining -= n as u64;
    }
    Ok(count)
}

/// Checks a whole safetensors file: the header (see [`read_header`]) and every floating-point value.
pub fn scan<R: Read + Seek>(
    reader: &mut R,
    total_len: u64,
) -> Result<SafetensorsReport, ModelError> {
    let Header {
        data_start,
        tensors,
        metadata,
    } = read_header(reader, total_len)?;
    let mut non_finite = Vec::new();
    for tensor in &tensors {
        reader.seek(SeekFrom::Start(data_start + tensor.begin))?;
        let count = count_non_finite(reader, tensor)?;
        if count > 0 {
            non_finite.push((tensor.name.clone(), count));
        }
    }
    Ok(SafetensorsReport {
        tensors,
        metadata,
        non_finite,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// A safetensors file from (name, dtype, shape, bytes), tensors laid out in the order given.
    fn file(tensors: &[(&str, &str, &[u64], Vec<u8>)]) -> Vec<u8> {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, dtype, shape, bytes) in tensors {
            let begin = data.len();
            data.extend_from_slice(bytes);
            header.insert(
                name.to_string(),
                serde_json::json!({ "dtype": dtype, "shape": shape, "data_offsets": [begin, data.len()] }),
            );
        }
        header.insert("__metadata__".into(), serde_json::json!({ "format": "pt" }));
        raw(&serde_json::Value::Object(header).to_string(), &data)
    }

    fn raw(header: &str, data: &[u8]) -> Vec<u8> {
        let mut out = (header.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn scan_bytes(bytes: &[u8]) -> Result<SafetensorsReport, ModelError> {
        scan(&mut Cursor::new(bytes), bytes.len() as u64)
    }

    fn f32s(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn a_valid_file_is_described_and_non_finite_values_reported() {
        let bytes = file(&[
            (
                "embeddings.weight",
                "F32",
                &[2, 2],
                f32s(&[1.0, 2.0, f32::NAN, f32::INFINITY]),
            ),
            (
                "ids",
                "I64",
                &[2],
                [7i64, 8].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
            (
                "half",
                "F16",
                &[2],
                [half::f16::from_f32(1.0), half::f16::NAN]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            ("empty", "F32", &[0], Vec::new()),
        ]);
        let report = scan_bytes(&bytes).unwrap();
        assert_eq!(report.tensors.len(), 4);
        assert_eq!(report.metadata["format"], "pt");
        assert_eq!(
            report.non_finite,
            [("embeddings.weight".to_owned(), 2), ("half".to_owned(), 1)]
        );
    }

    #[test]
    fn hostile_and_broken_files_are_refused_with_a_reason() {
        let good = file(&[("w", "F32", &[2], f32s(&[1.0, 2.0]))]);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty file", Vec::new(), "truncated"),
            (
                "header longer than the file",
                {
                    let mut b = good.clone();
                    b[..8].copy_from_slice(&10_000u64.to_le_bytes());
                    b
                },
                "truncated",
            ),
            (
                "absurd header length",
                {
                    let mut b = good.clone();
                    b[..8].copy_from_slice(&u64::MAX.to_le_bytes());
                    b
                },
                "above the limit",
            ),
            ("header not JSON", raw("{not json", &[]), "not JSON"),
            (
                "header not an object",
                raw("[1, 2]", &[]),
                "not a JSON object",
            ),
            (
                "unknown dtype",
                raw(
                    r#"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}"#,
                    &[0; 16],
                ),
                "unknown dtype",
            ),
            (
                "shape does not match bytes",
                raw(
                    r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                    &[0; 8],
                ),
                "needs 12 bytes",
            ),
            (
                "shape overflows",
                raw(
                    r#"{"w":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}}"#,
                    &[0; 8],
                ),
                "overflows",
            ),
            (
                "dimension too large",
                raw(
                    r#"{"w":{"dtype":"U8","shape":[1099511627777],"data_offsets":[0,8]}}"#,
                    &[0; 8],
                ),
                "dimension",
            ),
            (
                "negative dimension",
                raw(
                    r#"{"w":{"dtype":"U8","shape":[-1],"data_offsets":[0,8]}}"#,
                    &[0; 8],
                ),
                "dimension",
            ),
            (
                "data past the end",
                raw(
                    r#"{"w":{"dtype":"U8","shape":[16],"data_offsets":[0,16]}}"#,
                    &[0; 8],
                ),
                "ends at byte 16",
            ),
            (
                "overlapping tensors",
                raw(
                    r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#,
                    &[0; 6],
                ),
                "overlaps",
            ),
            (
                "hole between tensors",
                raw(
                    r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#,
                    &[0; 6],
                ),
                "unreferenced",
            ),
            (
                "trailing bytes",
                raw(
                    r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#,
                    &[0; 6],
                ),
                "describe 2",
            ),
            (
                "metadata not strings",
                raw(r#"{"__metadata__":{"a":1}}"#, &[]),
                "not a string",
            ),
        ];
        for (what, bytes, expected) in cases {
            let error = scan_bytes(&bytes).expect_err(what).to_string();
            assert!(error.contains(expected), "{what}: {error}");
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..256)) {
            let _ = scan_bytes(&bytes);
            let _ = crate::detect(&bytes, bytes.len() as u64);
        }
    }
}
