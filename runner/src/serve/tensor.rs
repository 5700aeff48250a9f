//! Tensors as the Open Inference Protocol carries them: a name, one of the protocol's datatypes (`FP32`,
//! `INT64`, `BYTES`, ...), a shape, and the values as row-major little-endian bytes, the form of the
//! binary-data extension and of gRPC's raw contents (a `BYTES` element is a 4-byte little-endian length,
//! then that many bytes). JSON's `data` arrays (flat or nested) convert to and from it.

use bytes::Bytes;
use serde::ser::{Serialize, SerializeSeq, Serializer};

use super::ServeError;
use super::json_non_finite::Marks;

/// The protocol's tensor datatypes. `BYTES` holds ONNX's string tensors, so its elements must be UTF-8
/// text without NUL characters (ONNX Runtime fills string tensors from C strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datatype {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Bf16,
    Fp32,
    Fp64,
    Bytes,
}

impl Datatype {
    const ALL: [(Datatype, &'static str, &'static str); 14] = [
        (Datatype::Bool, "BOOL", "bool"),
        (Datatype::Uint8, "UINT8", "uint8"),
        (Datatype::Uint16, "UINT16", "uint16"),
        (Datatype::Uint32, "UINT32", "uint32"),
        (Datatype::Uint64, "UINT64", "uint64"),
        (Datatype::Int8, "INT8", "int8"),
        (Datatype::Int16, "INT16", "int16"),
        (Datatype::Int32, "INT32", "int32"),
        (Datatype::Int64, "INT64", "int64"),
        (Datatype::Fp16, "FP16", "float16"),
        (Datatype::Bf16, "BF16", "bfloat16"),
        (Datatype::Fp32, "FP32", "float32"),
        (Datatype::Fp64, "FP64", "float64"),
        (Datatype::Bytes, "BYTES", "string"),
    ];

    /// The protocol's name (`FP32`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, p, _)| *p == name)
            .map(|(d, _, _)| *d)
    }

    /// From the element type a kiln signature names (`float32`, `int64`, `bool`).
    pub fn of_onnx(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, _, o)| *o == name)
            .map(|(d, _, _)| *d)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(d, _, _)| *d == self)
            .map_or("", |(_, p, _)| p)
    }

    /// Bytes per element; `None` for `BYTES`, whose elements each carry their length.
    pub fn size(self) -> Option<usize> {
        match self {
            Datatype::Bool | Datatype::Uint8 | Datatype::Int8 => Some(1),
            Datatype::Uint16 | Datatype::Int16 | Datatype::Fp16 | Datatype::Bf16 => Some(2),
            Datatype::Uint32 | Datatype::Int32 | Datatype::Fp32 => Some(4),
            Datatype::Uint64 | Datatype::Int64 | Datatype::Fp64 => Some(8),
            Datatype::Bytes => None,
        }
    }
}

/// The elements of `BYTES` data, each a 4-byte little-endian length and that many bytes; `None` when the
/// data is not a whole number of such elements.
pub fn bytes_elements(data: &[u8]) -> Option<Vec<&[u8]>> {
    BytesElements::new(data).collect()
}

/// The elements of `BYTES` data one by one ([`bytes_elements`] without a vector); a `None` item, and
/// nothing after it, when the rest is not a whole element.
pub struct BytesElements<'a> {
    rest: &'a [u8],
}

impl<'a> BytesElements<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { rest: data }
    }
}

impl<'a> Iterator for BytesElements<'a> {
    type Item = Option<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let element = self
            .rest
            .split_first_chunk::<4>()
            .and_then(|(length, rest)| {
                let length = u32::from_le_bytes(*length) as usize;
                (length <= rest.len()).then(|| rest.split_at(length))
            });
        match element {
            Some((element, rest)) => {
                self.rest = rest;
                Some(Some(element))
            }
            None => {
                self.rest = &[];
                Some(None)
            }
        }
    }
}

/// Appends one `BYTES` element; `None` (nothing appended) for one of 4 GiB or more, which the
/// protocol's 4-byte length cannot say.
#[must_use]
pub fn push_bytes_element(out: &mut Vec<u8>, element: &[u8]) -> Option<()> {
    let length = u32::try_from(element.len()).ok()?;
    out.extend(length.to_le_bytes());
    out.extend_from_slice(element);
    Some(())
}

/// Why a `BYTES` element cannot be an ONNX string, if it cannot.
fn not_text(element: &[u8]) -> Option<&'static str> {
    match std::str::from_utf8(element) {
        Err(_) => Some("is not UTF-8 text"),
        Ok(text) if text.contains('\0') => Some("contains a NUL character"),
        Ok(_) => None,
    }
}

/// One named tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub name: String,
    pub datatype: Datatype,
    pub shape: Vec<i64>,
    pub data: Bytes,
}

/// The number of elements a shape holds; a negative dimension or an overflow is the request's error.
pub fn element_count(name: &str, shape: &[i64]) -> Result<usize, ServeError> {
    shape.iter().try_fold(1usize, |n, &d| {
        let d = usize::try_from(d).map_err(|_| {
            ServeError::BadRequest(format!(
                "input {name:?}: shape {shape:?} has a negative dimension"
            ))
        })?;
        n.checked_mul(d).ok_or_else(|| {
            ServeError::BadRequest(format!("input {name:?}: shape {shape:?} is too large"))
        })
    })
}

impl Tensor {
    /// A tensor from raw bytes, checked to hold exactly the shape's elements.
    pub fn from_raw(
        name: String,
        datatype: Datatype,
        shape: Vec<i64>,
        data: Bytes,
    ) -> Result<Self, ServeError> {
        let count = element_count(&name, &shape)?;
        let Some(size) = datatype.size() else {
            check_bytes_data(&name, &shape, count, &data)?;
            return Ok(Self {
                name,
                datatype,
                shape,
                data,
            });
        };
        let expected = count
            .checked_mul(size)
            .ok_or_else(|| ServeError::BadRequest(format!("input {name:?} is too large")))?;
        if data.len() != expected {
            return Err(ServeError::BadRequest(format!(
                "input {name:?}: shape {shape:?} of {} needs {expected} bytes, got {}",
                datatype.as_str(),
                data.len()
            )));
        }
        Ok(Self {
            name,
            datatype,
            shape,
            data,
        })
    }

    /// A tensor from the text of a JSON `data` member: an array, flat or nested in row-major order.
    pub fn from_json(
        name: String,
        datatype: Datatype,
        shape: Vec<i64>,
        data: &str,
    ) -> Result<Self, ServeError> {
        let count = element_count(&name, &shape)?;
        let (bytes, found) = super::json_values::read(data, datatype)
            .map_err(|why| ServeError::BadRequest(format!("input {name:?}: {why}")))?;
        if found != count {
            return Err(ServeError::BadRequest(format!(
                "input {name:?}: shape {shape:?} holds {count} elements, data has {found}"
            )));
        }
        Ok(Self {
            name,
            datatype,
            shape,
            data: bytes.into(),
        })
    }

    /// The values as a flat JSON array, serialized straight from the bytes.
    pub fn json_data(&self) -> JsonData<'_> {
        JsonData(self, None)
    }

    /// The same, its non-finite floats recorded in `marks` (`json_non_finite`).
    pub fn json_data_marked<'a>(&'a self, marks: &'a Marks) -> JsonData<'a> {
        JsonData(self, Some(marks))
    }

    /// The values as f64 (exact for every type but the widest integers), or `None` for `BYTES`.
    pub fn to_f64(&self) -> Option<Vec<f64>> {
        let size = self.datatype.size()?;
        Some(
            self.data
                .chunks_exact(size)
                .map(|b| {
                    let b2 = || [b[0], b[1]];
                    let b4 = || [b[0], b[1], b[2], b[3]];
                    let b8 = || <[u8; 8]>::try_from(b).unwrap_or_default();
                    match self.datatype {
                        Datatype::Bool | Datatype::Uint8 => f64::from(b[0]),
                        Datatype::Int8 => f64::from(b[0] as i8),
                        Datatype::Uint16 => f64::from(u16::from_le_bytes(b2())),
                        Datatype::Int16 => f64::from(i16::from_le_bytes(b2())),
                        Datatype::Uint32 => f64::from(u32::from_le_bytes(b4())),
                        Datatype::Int32 => f64::from(i32::from_le_bytes(b4())),
                        Datatype::Uint64 => u64::from_le_bytes(b8()) as f64,
                        Datatype::Int64 => i64::from_le_bytes(b8()) as f64,
                        Datatype::Fp16 => f64::from(half::f16::from_le_bytes(b2())),
                        Datatype::Bf16 => f64::from(half::bf16::from_le_bytes(b2())),
                        Datatype::Fp32 => f64::from(f32::from_le_bytes(b4())),
                        Datatype::Fp64 | Datatype::Bytes => f64::from_le_bytes(b8()),
                    }
                })
                .collect(),
        )
    }

    /// The byte offsets where each of `rows` equal slices of the first dimension starts, and the end.
    pub fn row_offsets(&self, rows: usize) -> Option<Vec<usize>> {
        if rows == 0 {
            return None;
        }
        match self.datatype.size() {
            Some(_) => {
                let row_bytes = self.data.len() / rows;
                (row_bytes * rows == self.data.len())
                    .then(|| (0..=rows).map(|r| r * row_bytes).collect())
            }
            None => {
                let elements = bytes_elements(&self.data)?;
                let per_row = elements.len() / rows;
                if per_row * rows != elements.len() {
                    return None;
                }
                let mut offsets = vec![0];
                let mut at = 0;
                for row in elements.chunks(per_row.max(1)).take(rows) {
                    at += row.iter().map(|e| 4 + e.len()).sum::<usize>();
                    offsets.push(at);
                }
                offsets.resize(rows + 1, at);
                Some(offsets)
            }
        }
    }
}

/// Checks that `BYTES` data holds `count` elements, each an ONNX string.
fn check_bytes_data(
    name: &str,
    shape: &[i64],
    count: usize,
    data: &[u8],
) -> Result<(), ServeError> {
    let elements = bytes_elements(data).ok_or_else(|| {
        ServeError::BadRequest(format!(
            "input {name:?}: BYTES data must be elements of a 4-byte little-endian length and that many bytes"
        ))
    })?;
    if elements.len() != count {
        return Err(ServeError::BadRequest(format!(
            "input {name:?}: shape {shape:?} holds {count} elements, data has {}",
            elements.len()
        )));
    }
    if let Some((i, why)) = elements
        .iter()
        .enumerate()
        .find_map(|(i, e)| not_text(e).map(|why| (i, why)))
    {
        return Err(ServeError::BadRequest(format!(
            "input {name:?}: element {i} {why}; an ONNX string is UTF-8 text without NUL characters"
        )));
    }
    Ok(())
}

/// A tensor's values as JSON. Floats are written in the shortest form that reads back to the same value
/// of the tensor's own precision (an FP32 `0.1` stays `0.1`, not the f64 `0.10000000149011612`); a
/// non-finite float has no JSON number: it is written as null, as serde_json writes it, and recorded
/// where there are `Marks` to record it (the answer then writes Triton's token in its place).
pub struct JsonData<'a>(&'a Tensor, Option<&'a Marks>);

impl Serialize for JsonData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Tensor { datatype, data, .. } = self.0;
        let Some(size) = datatype.size() else {
            let elements = bytes_elements(data).unwrap_or_default();
            let mut seq = serializer.serialize_seq(Some(elements.len()))?;
            for element in elements {
                seq.serialize_element(&String::from_utf8_lossy(element))?;
            }
            return seq.end();
        };
        let mut seq = serializer.serialize_seq(Some(data.len() / size))?;
        for b in data.chunks_exact(size) {
            let bytes2 = || [b[0], b[1]];
            let bytes4 = || [b[0], b[1], b[2], b[3]];
            let bytes8 = || <[u8; 8]>::try_from(b).unwrap_or_default();
            match datatype {
                Datatype::Bool => seq.serialize_element(&(b[0] != 0))?,
                Datatype::Uint8 => seq.serialize_element(&b[0])?,
                Datatype::Int8 => seq.serialize_element(&(b[0] as i8))?,
                Datatype::Uint16 => seq.serialize_element(&u16::from_le_bytes(bytes2()))?,
                Datatype::Int16 => seq.serialize_element(&i16::from_le_bytes(bytes2()))?,
                Datatype::Uint32 => seq.serialize_element(&u32::from_le_bytes(bytes4()))?,
                Datatype::Int32 => seq.serialize_element(&i32::from_le_bytes(bytes4()))?,
                Datatype::Uint64 => seq.serialize_element(&u64::from_le_bytes(bytes8()))?,
                Datatype::Int64 => seq.serialize_element(&i64::from_le_bytes(bytes8()))?,
                // Half precision widens to f32 exactly; f32's shortest form reads back to the same half.
                Datatype::Fp16 => float(
                    &mut seq,
                    self.1,
                    half::f16::from_le_bytes(bytes2()).to_f32(),
                )?,
                Datatype::Bf16 => float(
                    &mut seq,
                    self.1,
                    half::bf16::from_le_bytes(bytes2()).to_f32(),
                )?,
                Datatype::Fp32 => float(&mut seq, self.1, f32::from_le_bytes(bytes4()))?,
                Datatype::Fp64 => float(&mut seq, self.1, f64::from_le_bytes(bytes8()))?,
                Datatype::Bytes => {}
            }
        }
        seq.end()
    }
}

/// A float element in its own precision's shortest form; one that is not finite marked for its token
/// where there are `marks` (serde_json writes `null` for it either way).
fn float<S: SerializeSeq, F: Serialize + Into<f64> + Copy>(
    seq: &mut S,
    marks: Option<&Marks>,
    value: F,
) -> Result<(), S::Error> {
    match marks {
        Some(marks) if !value.into().is_finite() => {
            seq.serialize_element(&marks.float(value.into()))
        }
        _ => seq.serialize_element(&value),
    }
}

#[cfg(test)]
mod tests;
