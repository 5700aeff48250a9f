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
    let shape: Vec<usize> = proto.dims.iter().map(|&d| d as usize).collect();
    let data_type = DataType::try_from(proto.data_type.unwrap_or(0))
        .map_err(|_| unsupported(name, "an unknown element type"))?;
    let count: usize = shape.iter().product();
    if let Some(format) = super::float8::Float8::of(data_type as i32) {
        let bytes: Vec<u8> = match &proto.raw_data {
            Some(raw) => raw.to_vec(),
            None => proto.int32_data.iter().map(|&v| v as u8).collect(),
        };
        let values: Vec<f32> = bytes.iter().map(|&b| format.decode(b)).collect();
        return Ok(Tensor::from_vec(values, shape, device)?);
    }
    if matches!(data_type, DataType::Int4 | DataType::Uint4) {
        // Two values per byte, low nibble first; int4 is sign-extended.
        let bytes: Vec<u8> = match &proto.raw_data {
            Some(raw) => raw.to_vec(),
            None => proto.int32_data.iter().map(|&v| v as u8).collect(),
        };
        let signed = data_type == DataType::Int4;
        let values: Vec<i64> = (0..count)
            .map(|i| {
                let nibble = (bytes[i / 2] >> (4 * (i % 2))) & 0x0f;
                if signed && nibble & 0x08 != 0 {
                    i64::from(nibble) - 16
                } else {
                    i64::from(nibble)
                }
            })
            .collect();
        return Ok(Tensor::from_vec(values, shape, device)?);
    }
    let raw: Option<Bytes> = if proto.data_location == Some(DataLocation::External as i32) {
        Some(read_external(proto, base_dir)?)
    } else {
        proto.raw_data.clone()
    };
    let tensor = match (data_type, raw) {
        (DataType::Float, Some(raw)) => {
            Tensor::from_vec(le::<4, f32>(&raw, f32::from_le_bytes), shape, device)?
        }
        (DataType::Float, None) => Tensor::from_vec(proto.float_data.clone(), shape, device)?,
        (DataType::Double, Some(raw)) => {
            Tensor::from_vec(le::<8, f64>(&raw, f64::from_le_bytes), shape, device)?
        }
        (DataType::Double, None) => Tensor::from_vec(proto.double_data.clone(), shape, device)?,
        (DataType::Int64, Some(raw)) => {
            Tensor::from_vec(le::<8, i64>(&raw, i64::from_le_bytes), shape, device)?
        }
        (DataType::Int64, None) => Tensor::from_vec(proto.int64_data.clone(), shape, device)?,
        (DataType::Int32, Some(raw)) => Tensor::from_vec(
            le::<4, i32>(&raw, i32::from_le_bytes)
                .into_iter()
                .map(i64::from)
                .collect::<Vec<_>>(),
            shape,
            device,
        )?,
        (DataType::Int32 | DataType::Int16 | DataType::Int8 | DataType::Uint16, None) => {
            Tensor::from_vec(
                proto
                    .int32_data
                    .iter()
                    .map(|&v| i64::from(v))
                    .collect::<Vec<_>>(),
                shape,
                device,
            )?
        }
        (DataType::Bool | DataType::Uint8, Some(raw)) => {
            Tensor::from_vec(raw.to_vec(), shape, device)?
        }
        (DataType::Int8, Some(raw)) => Tensor::from_vec(
            raw.iter().map(|&b| i64::from(b as i8)).collect::<Vec<_>>(),
            shape,
            device,
        )?,
        (DataType::Int16, Some(raw)) => Tensor::from_vec(
            le::<2, i16>(&raw, i16::from_le_bytes)
                .into_iter()
                .map(i64::from)
                .collect::<Vec<_>>(),
            shape,
            device,
        )?,
        (DataType::Uint16, Some(raw)) => Tensor::from_vec(
            le::<2, u16>(&raw, u16::from_le_bytes)
                .into_iter()
                .map(i64::from)
                .collect::<Vec<_>>(),
            shape,
            device,
        )?,
        (DataType::Uint32, Some(raw)) => Tensor::from_vec(
            le::<4, u32>(&raw, u32::from_le_bytes)
                .into_iter()
                .map(i64::from)
                .collect::<Vec<_>>(),
            shape,
            device,
        )?,
        // Held as i64 like the uint64_data path below: values past i64::MAX keep their bits.
        (DataType::Uint64, Some(raw)) => Tensor::from_vec(
            le::<8, u64>(&raw, u64::from_le_bytes)
                .into_iter()
                .map(|v| v as i64)
                .collect::<Vec<_>>(),
            shape,
            device,
        )?,
        (DataType::Uint32 | DataType::Uint64, None) => Tensor::from_vec(
            proto
                .uint64_data
                .iter()
                .map(|&v| v as i64)
                .collect::<Vec<_>>(),
            shape,
            device,
        )?,
        (DataType::Bfloat16, Some(raw)) => Tensor::from_vec(
            le::<2, half::bf16>(&raw, half::bf16::from_le_bytes),
            shape,
            device,
        )?,
        (DataType::Bool | DataType::Uint8, None) => Tensor::from_vec(
            proto
                .int32_data
                .iter()
                .map(|&v| v as u8)
                .collect::<Vec<_>>(),
            shape,
            device,
        )?,
        (DataType::Float16, Some(raw)) => Tensor::from_vec(
            le::<2, half::f16>(&raw, half::f16::from_le_bytes),
            shape,
            device,
        )?,
        (DataType::Float16, None) => Tensor::from_vec(
            proto
                .int32_data
                .iter()
                .map(|&v| half::f16::from_bits(v as u16))
                .collect::<Vec<_>>(),
            shape,
            device,
        )?,
        (other, _) => {
            return Err(unsupported(
                name,
                format!("element type {}", other.as_str_name()),
            ));
        }
    };
    if tensor.elem_count() != count {
        return Err(ModelError::InvalidTensor {
            tensor: name.to_owned(),
            reason: "its data does not match its shape".to_owned(),
        });
    }
    Ok(tensor)
}

fn le<const N: usize, T>(raw: &[u8], convert: fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N)
        .map(|c| convert(c.try_into().expect("chunks_exact gives N bytes")))
        .collect()
}

fn read_external(proto: &TensorProto, base_dir: Option<&Path>) -> Result<Bytes, ModelError> {
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

/// Writes a tensor (fp32, fp16, i64 or u8) as an initializer named `name`.
pub fn to_proto(name: &str, tensor: &Tensor) -> Result<TensorProto, ModelError> {
    let dims = tensor.dims().iter().map(|&d| d as i64).collect();
    let flat = tensor.flatten_all()?;
    let (data_type, raw): (DataType, Vec<u8>) = match tensor.dtype() {
        DType::F32 => (
            DataType::Float,
            flat.to_vec1::<f32>()?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        DType::F16 => (
            DataType::Float16,
            flat.to_vec1::<half::f16>()?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        DType::I64 => (
            DataType::Int64,
            flat.to_vec1::<i64>()?
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect(),
        ),
        DType::U8 => (DataType::Uint8, flat.to_vec1::<u8>()?),
        other => {
            return Err(ModelError::Evaluation(format!(
                "cannot write a {other:?} tensor"
            )));
        }
    };
    Ok(TensorProto {
        name: Some(name.to_owned()),
        dims,
        data_type: Some(data_type as i32),
        raw_data: Some(Bytes::from(raw)),
        ..Default::default()
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
}
