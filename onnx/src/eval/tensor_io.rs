//! ONNX `TensorProto` ⇄ candle `Tensor`. Booleans are held as u8 and int32 as i64 (candle has neither);
//! [`to_proto`] writes fp32, i64 and u8 tensors as raw little-endian data, the layout ONNX prefers.

use std::path::Path;

use bytes::Bytes;
use candle_core::{DType, Device, Tensor};

use crate::ModelError;
use crate::proto::{TensorProto, tensor_proto::DataLocation, tensor_proto::DataType};

fn unsupported(name: &str, what: impl std::fmt::Display) -> ModelError {
    ModelError::Evaluation(format!(
        "tensor {name:?}: {what} is not supported by kiln's evaluator"
    ))
}

/// Reads a tensor; external data is looked up under `base_dir` (already checked not to escape it).
pub fn from_proto(
    proto: &TensorProto,
    base_dir: Option<&Path>,
    device: &Device,
) -> Result<Tensor, ModelError> {
    let name = proto.name.as_deref().unwrap_or("");
    let data_type = DataType::try_from(proto.data_type.unwrap_or(0))
        .map_err(|_| unsupported(name, "an unknown element type"))?;
    let (shape, count) = shape_of(proto, name)?;
    if let Some(format) = super::float8::Float8::of(data_type as i32) {
        let values: Vec<f32> = packed_bytes(proto, base_dir)?
            .iter()
            .map(|&b| format.decode(b))
            .collect();
        if values.len() != count {
            return Err(mismatch(name));
        }
        return Ok(Tensor::from_vec(values, shape, device)?);
    }
    if matches!(data_type, DataType::Int4 | DataType::Uint4) {
        let values = int4_values(
            &packed_bytes(proto, base_dir)?,
            count,
            data_type == DataType::Int4,
        )
        .ok_or_else(|| mismatch(name))?;
        return Ok(Tensor::from_vec(values, shape, device)?);
    }
    let raw: Option<Bytes> = if proto.data_location == Some(DataLocation::External as i32) {
        Some(read_external(proto, base_dir)?)
    } else {
        proto.raw_data.clone()
    };
    let tensor = match raw {
        Some(raw) => from_raw(name, data_type, &raw, shape, device),
        None => from_typed_fields(name, data_type, proto, shape, device),
    };
    let tensor = tensor?;
    if tensor.elem_count() != count {
        return Err(mismatch(name));
    }
    Ok(tensor)
}

fn mismatch(name: &str) -> ModelError {
    ModelError::InvalidTensor {
        tensor: name.to_owned(),
        reason: "its data does not match its shape".to_owned(),
    }
}

/// The dims and their element count, refused when a dim is negative or the count overflows (the data
/// itself bounds the size, so no budget beyond the overflow is needed: a shape larger than the data is
/// a mismatch).
fn shape_of(proto: &TensorProto, name: &str) -> Result<(Vec<usize>, usize), ModelError> {
    let shape = proto
        .dims
        .iter()
        .map(|&d| usize::try_from(d).ok())
        .collect::<Option<Vec<usize>>>();
    let count = shape
        .as_ref()
        .and_then(|s| s.iter().try_fold(1usize, |n, &d| n.checked_mul(d)));
    match (shape, count) {
        (Some(shape), Some(count)) => Ok((shape, count)),
        _ => Err(ModelError::InvalidTensor {
            tensor: name.to_owned(),
            reason: format!("its dims {:?} are not a shape", proto.dims),
        }),
    }
}

/// One byte per value (8-bit floats) or two (4-bit integers): external data, raw data, or int32_data
/// holding bytes.
fn packed_bytes(proto: &TensorProto, base_dir: Option<&Path>) -> Result<Vec<u8>, ModelError> {
    if proto.data_location == Some(DataLocation::External as i32) {
        return Ok(read_external(proto, base_dir)?.to_vec());
    }
    Ok(match &proto.raw_data {
        Some(raw) => raw.to_vec(),
        None => proto.int32_data.iter().map(|&v| v as u8).collect(),
    })
}

/// Two values per byte, low nibble first; int4 is sign-extended. None when the bytes are too few.
fn int4_values(bytes: &[u8], count: usize, signed: bool) -> Option<Vec<i64>> {
    if bytes.len() < count.div_ceil(2) {
        return None;
    }
    Some(
        (0..count)
            .map(|i| {
                let nibble = (bytes[i / 2] >> (4 * (i % 2))) & 0x0f;
                if signed && nibble & 0x08 != 0 {
                    i64::from(nibble) - 16
                } else {
                    i64::from(nibble)
                }
            })
            .collect(),
    )
}

/// Raw little-endian data; integers narrower than 64 bits are held as i64, uint64 keeps its bits.
fn from_raw(
    name: &str,
    data_type: DataType,
    raw: &[u8],
    shape: Vec<usize>,
    device: &Device,
) -> Result<Tensor, ModelError> {
    let wide = |values: Vec<i64>| Tensor::from_vec(values, shape.clone(), device);
    Ok(match data_type {
        DataType::Float => Tensor::from_vec(le::<4, f32>(raw, f32::from_le_bytes), shape, device)?,
        DataType::Double => Tensor::from_vec(le::<8, f64>(raw, f64::from_le_bytes), shape, device)?,
        DataType::Int64 => wide(le::<8, i64>(raw, i64::from_le_bytes))?,
        DataType::Int32 => wide(widen(le::<4, i32>(raw, i32::from_le_bytes)))?,
        DataType::Int16 => wide(widen(le::<2, i16>(raw, i16::from_le_bytes)))?,
        DataType::Uint16 => wide(widen(le::<2, u16>(raw, u16::from_le_bytes)))?,
        DataType::Uint32 => wide(widen(le::<4, u32>(raw, u32::from_le_bytes)))?,
        DataType::Int8 => wide(raw.iter().map(|&b| i64::from(b as i8)).collect())?,
        // Held as i64 like the uint64_data path: values past i64::MAX keep their bits.
        DataType::Uint64 => wide(
            le::<8, u64>(raw, u64::from_le_bytes)
                .into_iter()
                .map(|v| v as i64)
                .collect(),
        )?,
        DataType::Bool | DataType::Uint8 => Tensor::from_vec(raw.to_vec(), shape, device)?,
        DataType::Bfloat16 => Tensor::from_vec(
            le::<2, half::bf16>(raw, half::bf16::from_le_bytes),
            shape,
            device,
        )?,
        DataType::Float16 => Tensor::from_vec(
            le::<2, half::f16>(raw, half::f16::from_le_bytes),
            shape,
            device,
        )?,
        other => {
            return Err(unsupported(
                name,
                format!("element type {}", other.as_str_name()),
            ));
        }
    })
}

fn widen<T: Into<i64>>(values: Vec<T>) -> Vec<i64> {
    values.into_iter().map(Into::into).collect()
}

/// The typed repeated fields ONNX uses when there is no raw data.
fn from_typed_fields(
    name: &str,
    data_type: DataType,
    proto: &TensorProto,
    shape: Vec<usize>,
    device: &Device,
) -> Result<Tensor, ModelError> {
    let int32s = || {
        proto
            .int32_data
            .iter()
            .map(|&v| i64::from(v))
            .collect::<Vec<_>>()
    };
    Ok(match data_type {
        DataType::Float => Tensor::from_vec(proto.float_data.clone(), shape, device)?,
        DataType::Double => Tensor::from_vec(proto.double_data.clone(), shape, device)?,
        DataType::Int64 => Tensor::from_vec(proto.int64_data.clone(), shape, device)?,
        DataType::Int32 | DataType::Int16 | DataType::Int8 | DataType::Uint16 => {
            Tensor::from_vec(int32s(), shape, device)?
        }
        DataType::Uint32 | DataType::Uint64 => Tensor::from_vec(
            proto
                .uint64_data
                .iter()
                .map(|&v| v as i64)
                .collect::<Vec<_>>(),
            shape,
            device,
        )?,
        DataType::Bool | DataType::Uint8 => Tensor::from_vec(
            proto
                .int32_data
                .iter()
                .map(|&v| v as u8)
                .collect::<Vec<_>>(),
            shape,
            device,
        )?,
        // Each 16-bit float's bits in one int32.
        DataType::Float16 => {
            Tensor::from_vec(sixteen_bits(proto, half::f16::from_bits), shape, device)?
        }
        DataType::Bfloat16 => {
            Tensor::from_vec(sixteen_bits(proto, half::bf16::from_bits), shape, device)?
        }
        other => {
            return Err(unsupported(
                name,
                format!("element type {}", other.as_str_name()),
            ));
        }
    })
}

fn sixteen_bits<T>(proto: &TensorProto, from_bits: fn(u16) -> T) -> Vec<T> {
    proto
        .int32_data
        .iter()
        .map(|&v| from_bits(v as u16))
        .collect()
}

fn le<const N: usize, T>(raw: &[u8], convert: fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|c| convert(c.try_into().expect("chunks_exact gives N bytes")))
        .collect()
}

pub(crate) fn read_external(
    proto: &TensorProto,
    base_dir: Option<&Path>,
) -> Result<Bytes, ModelError> {
    use std::io::{Read, Seek, SeekFrom};
    let name = proto.name.as_deref().unwrap_or("");
    let entry = |key: &str| {
        proto
            .external_data
            .iter()
            .find(|e| e.key.as_deref() == Some(key))
            .and_then(|e| e.value.clone())
    };
    let base =
        base_dir.ok_or_else(|| unsupported(name, "external data without the model's folder"))?;
    let location =
        entry("location").ok_or_else(|| unsupported(name, "external data without a location"))?;
    let offset: u64 = entry("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut file = std::fs::File::open(base.join(&location))?;
    let available = file.metadata()?.len().saturating_sub(offset);
    let length: u64 = entry("length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(available);
    if length > available {
        return Err(ModelError::Truncated(format!(
            "tensor {name:?} needs {length} bytes at offset {offset} of {location}"
        )));
    }
    file.seek(SeekFrom::Start(offset))?;
    let mut buffer = vec![0u8; length as usize];
    file.read_exact(&mut buffer)?;
    Ok(Bytes::from(buffer))
}

/// Writes a tensor (fp32, fp16, bf16, i64 or u8) as an initializer named `name`.
pub fn to_proto(name: &str, tensor: &Tensor) -> Result<TensorProto, ModelError> {
    let (data_type, raw) = to_raw(tensor)?;
    Ok(TensorProto {
        name: Some(name.to_owned()),
        dims: tensor.dims().iter().map(|&d| d as i64).collect(),
        data_type: Some(data_type as i32),
        raw_data: Some(Bytes::from(raw)),
        ..Default::default()
    })
}

/// A tensor's element type and its values as ONNX raw data (little-endian, row-major).
pub fn to_raw(tensor: &Tensor) -> Result<(DataType, Vec<u8>), ModelError> {
    let flat = tensor.flatten_all()?;
    fn bytes<T: candle_core::WithDType, const N: usize>(
        flat: &Tensor,
        to_le: fn(T) -> [u8; N],
    ) -> Result<Vec<u8>, ModelError> {
        let values = flat.to_vec1::<T>()?;
        let mut raw = Vec::with_capacity(values.len() * N);
        for v in values {
            raw.extend_from_slice(&to_le(v));
        }
        Ok(raw)
    }
    Ok(match tensor.dtype() {
        DType::F32 => (DataType::Float, bytes(&flat, f32::to_le_bytes)?),
        DType::F16 => (DataType::Float16, bytes(&flat, half::f16::to_le_bytes)?),
        DType::BF16 => (DataType::Bfloat16, bytes(&flat, half::bf16::to_le_bytes)?),
        DType::I64 => (DataType::Int64, bytes(&flat, i64::to_le_bytes)?),
        DType::U8 => (DataType::Uint8, flat.to_vec1::<u8>()?),
        other => {
            return Err(ModelError::Evaluation(format!(
                "cannot write a {other:?} tensor"
            )));
        }
    })
}

/// The candle dtype kiln's evaluator holds an ONNX element type in.
pub fn dtype_of(data_type: i32) -> Option<DType> {
    Some(match DataType::try_from(data_type).ok()? {
        DataType::Float => DType::F32,
        DataType::Double => DType::F64,
        DataType::Float16 => DType::F16,
        DataType::Bfloat16 => DType::BF16,
        DataType::Int64 | DataType::Int32 | DataType::Int16 | DataType::Int8 | DataType::Uint16 => {
            DType::I64
        }
        DataType::Bool | DataType::Uint8 => DType::U8,
        DataType::Uint32 | DataType::Uint64 | DataType::Int4 | DataType::Uint4 => DType::I64,
        DataType::Float8e4m3fn
        | DataType::Float8e4m3fnuz
        | DataType::Float8e5m2
        | DataType::Float8e5m2fnuz => DType::F32,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_uint64_keeps_its_bits_in_i64() {
        let raw: Vec<u8> = [3u64, u64::MAX]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let proto = TensorProto {
            dims: vec![2],
            data_type: Some(DataType::Uint64 as i32),
            raw_data: Some(Bytes::from(raw)),
            ..Default::default()
        };
        let t = from_proto(&proto, None, &Device::Cpu).unwrap();
        assert_eq!(t.to_vec1::<i64>().unwrap(), vec![3, -1]);
    }

    /// 16-bit floats without raw data keep each value's bits in one of `int32_data`'s, bfloat16 as float16.
    #[test]
    fn sixteen_bit_floats_read_from_int32_data() {
        for (data_type, bits, expected) in [
            (DataType::Float16, half::f16::from_f32(-1.5).to_bits(), -1.5),
            (
                DataType::Bfloat16,
                half::bf16::from_f32(0.25).to_bits(),
                0.25,
            ),
        ] {
            let proto = TensorProto {
                dims: vec![1],
                data_type: Some(data_type as i32),
                int32_data: vec![i32::from(bits)],
                ..Default::default()
            };
            let t = from_proto(&proto, None, &Device::Cpu).unwrap();
            let values = t.to_dtype(DType::F32).unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(values, [expected], "{data_type:?}");
        }
    }

    /// 4-bit and 8-bit-float weights kept in an external data file (as large quantized models keep
    /// them) read from that file, not from the empty raw data beside it.
    #[test]
    fn packed_types_read_their_external_data() {
        use crate::proto::StringStringEntryProto;
        let dir = tempfile::tempdir().unwrap();
        // int4 [-1, 2, 7, -8, 3] packed low nibble first, after 5 bytes of something else.
        std::fs::write(dir.path().join("w.data"), [9, 9, 9, 9, 9, 0x2f, 0x87, 0x03]).unwrap();
        let entry = |key: &str, value: &str| StringStringEntryProto {
            key: Some(key.to_owned()),
            value: Some(value.to_owned()),
        };
        let int4 = TensorProto {
            name: Some("w".to_owned()),
            dims: vec![5],
            data_type: Some(DataType::Int4 as i32),
            data_location: Some(DataLocation::External as i32),
            external_data: vec![
                entry("location", "w.data"),
                entry("offset", "5"),
                entry("length", "3"),
            ],
            ..Default::default()
        };
        let t = from_proto(&int4, Some(dir.path()), &Device::Cpu).unwrap();
        assert_eq!(t.to_vec1::<i64>().unwrap(), vec![-1, 2, 7, -8, 3]);
        let float8 = TensorProto {
            dims: vec![3],
            data_type: Some(DataType::Float8e4m3fn as i32),
            ..int4.clone()
        };
        // Three bytes for three values: 0x2f, 0x87, 0x03 as E4M3FN.
        let t = from_proto(&float8, Some(dir.path()), &Device::Cpu).unwrap();
        assert_eq!(t.dims(), [3]);
        let short = TensorProto {
            dims: vec![4],
            ..float8
        };
        assert!(
            from_proto(&short, Some(dir.path()), &Device::Cpu).is_err(),
            "3 bytes are not 4 values"
        );
        assert!(
            from_proto(&int4, None, &Device::Cpu).is_err(),
            "no folder to read from"
        );
    }

    #[test]
    fn short_int4_data_and_negative_dims_are_errors() {
        let int4 = TensorProto {
            dims: vec![5],
            data_type: Some(DataType::Int4 as i32),
            raw_data: Some(Bytes::from(vec![0x21])),
            ..Default::default()
        };
        assert!(from_proto(&int4, None, &Device::Cpu).is_err());
        let negative = TensorProto {
            dims: vec![-1, i64::MAX],
            data_type: Some(DataType::Float as i32),
            ..Default::default()
        };
        assert!(from_proto(&negative, None, &Device::Cpu).is_err());
    }
}
