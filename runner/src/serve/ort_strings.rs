//! ONNX string tensors made from the protocol's `BYTES` data, and read back into it, through ONNX
//! Runtime's C API one element at a time. ort's own conversions keep a `String` or a `CString` for every
//! element beside ONNX Runtime's `std::string` (and a pointer to each, and the caller's `Vec<String>`):
//! about 110 bytes an element, so a 61 MiB request of 16 million empty strings took a runner to
//! 1,955 MB. Here an element costs ONNX Runtime's `std::string` (32 bytes, and its text when longer
//! than 15 bytes), and reading an output its offset (8 bytes) until the answer's data is written.

use std::ptr::NonNull;

use ort::AsPointer;
use ort::memory::Allocator;
use ort::value::{DynValue, TensorElementType, Value, ValueType};

use super::tensor::{BytesElements, Datatype, Tensor, element_count, push_bytes_element};

/// What an input's `BYTES` element costs the engine beside its text: ONNX Runtime's `std::string`.
pub const INPUT_ELEMENT_BYTES: usize = 32;

/// What an output's `BYTES` element costs while it is read back, beside its text: ONNX Runtime's
/// `std::string`, its offset, and its length in the protocol's data.
pub const OUTPUT_ELEMENT_BYTES: usize = 32 + 8 + 4;

/// What a request's decoded inputs and their strings' cost in the engine are, in its errors.
pub const DECODED_INPUTS: &str = "this request's inputs, decoded for the engine, need";

/// What `inputs` (checked already) cost the engine beyond their data: their strings' `std::string`s.
pub fn inputs_engine_bytes(inputs: &[Tensor]) -> usize {
    inputs
        .iter()
        .filter(|t| t.datatype == Datatype::Bytes)
        .map(|t| elements(&t.shape).saturating_mul(INPUT_ELEMENT_BYTES))
        .fold(0, usize::saturating_add)
}

/// The elements a shape holds; 0 for one that holds none or cannot be (a negative dimension, an
/// overflow), which a request's checks refused already.
fn elements(shape: &[i64]) -> usize {
    element_count("", shape).unwrap_or(0)
}

fn fail(message: &str) -> ort::Error {
    ort::Error::new(message)
}

/// A string tensor of `shape` holding the elements of `data` (checked as UTF-8 without NUL, and as
/// many as the shape holds, when the request was parsed).
pub fn to_value(shape: &[i64], data: &[u8]) -> ort::Result<DynValue> {
    let api = ort::api();
    let mut allocator = Allocator::default();
    let mut created = std::ptr::null_mut();
    // SAFETY: the shape's pointer and length describe a live slice; `created` is written by ONNX Runtime.
    unsafe {
        ort::Error::result_from_status((api.CreateTensorAsOrtValue)(
            allocator.ptr_mut(),
            shape.as_ptr(),
            shape.len(),
            TensorElementType::String.into(),
            &mut created,
        ))?;
    }
    let created =
        NonNull::new(created).ok_or_else(|| fail("ONNX Runtime made no string tensor"))?;
    // SAFETY: a tensor ONNX Runtime just made with `allocator`; the value owns and releases it.
    let value: DynValue = unsafe { Value::from_ptr(created, Some(&allocator)) };
    let count = elements(shape);
    let mut text = Vec::new();
    let mut filled = 0;
    for element in BytesElements::new(data) {
        let element = element.ok_or_else(|| fail("malformed BYTES data"))?;
        if filled == count || element.contains(&0) {
            return Err(fail("BYTES data that does not fit the string tensor"));
        }
        text.clear();
        text.extend_from_slice(element);
        text.push(0);
        // SAFETY: `value` is a string tensor of `count` elements and `filled` is below it; `text` is
        // NUL-terminated with no NUL before, and ONNX Runtime copies it.
        unsafe {
            ort::Error::result_from_status((api.FillStringTensorElement)(
                value.ptr().cast_mut(),
                text.as_ptr().cast(),
                filled,
            ))?;
        }
        filled += 1;
    }
    if filled != count {
        return Err(fail(
            "fewer BYTES elements than the string tensor's shape holds",
        ));
    }
    Ok(value)
}

/// A string tensor's shape, and its elements as the protocol's `BYTES` data.
pub fn from_value(value: &DynValue) -> ort::Result<(Vec<i64>, Vec<u8>)> {
    let shape = match value.dtype() {
        ValueType::Tensor {
            ty: TensorElementType::String,
            shape,
            ..
        } => shape.to_vec(),
        other => {
            return Err(ort::Error::new(format!(
                "a string tensor was expected, not {other}"
            )));
        }
    };
    let count = elements(&shape);
    if count == 0 {
        return Ok((shape, Vec::new()));
    }
    let api = ort::api();
    let mut total = 0usize;
    // SAFETY: `value` is a live string tensor of `count` elements; `total` is written.
    unsafe {
        ort::Error::result_from_status((api.GetStringTensorDataLength)(value.ptr(), &mut total))?;
    }
    let mut content = vec![0u8; total];
    let mut offsets = vec![0usize; count];
    // SAFETY: both buffers are as long as the lengths given; ONNX Runtime checks them against the tensor.
    unsafe {
        ort::Error::result_from_status((api.GetStringTensorContent)(
            value.ptr(),
            content.as_mut_ptr().cast(),
            total,
            offsets.as_mut_ptr(),
            count,
        ))?;
    }
    let mut data = Vec::with_capacity(total + 4 * count);
    for (i, &start) in offsets.iter().enumerate() {
        let end = offsets.get(i + 1).copied().unwrap_or(total);
        let element = content
            .get(start..end)
            .ok_or_else(|| fail("ONNX Runtime gave a string tensor's offsets out of order"))?;
        push_bytes_element(&mut data, element)
            .ok_or_else(|| fail("an output string of 4 GiB or more has no protocol length"))?;
    }
    Ok((shape, data))
}
