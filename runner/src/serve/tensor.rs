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
            "input {name:?}: element {i} {why}, which an ONNX string must be"
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
            if let Some(marks) = self.1 {
                let value = match datatype {
                    Datatype::Fp16 => f64::from(half::f16::from_le_bytes([b[0], b[1]])),
                    Datatype::Bf16 => f64::from(half::bf16::from_le_bytes([b[0], b[1]])),
                    Datatype::Fp32 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
                    Datatype::Fp64 => {
                        f64::from_le_bytes(<[u8; 8]>::try_from(b).unwrap_or_default())
                    }
                    _ => 0.0,
                };
                if !value.is_finite() {
                    seq.serialize_element(&marks.float(value))?;
                    continue;
                }
            }
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
                Datatype::Fp16 => {
                    seq.serialize_element(&half::f16::from_le_bytes(bytes2()).to_f32())?
                }
                Datatype::Bf16 => {
                    seq.serialize_element(&half::bf16::from_le_bytes(bytes2()).to_f32())?;
                }
                Datatype::Fp32 => seq.serialize_element(&f32::from_le_bytes(bytes4()))?,
                Datatype::Fp64 => seq.serialize_element(&f64::from_le_bytes(bytes8()))?,
                Datatype::Bytes => {}
            }
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    #[test]
    fn nested_and_flat_json_give_the_same_bytes_and_round_trip() {
        let nested = Tensor::from_json(
            "x".into(),
            Datatype::Fp32,
            vec![2, 2],
            &json!([[1.0, 2.5], [-3, 4]]).to_string(),
        )
        .unwrap();
        let flat = Tensor::from_json(
            "x".into(),
            Datatype::Fp32,
            vec![2, 2],
            &json!([1, 2.5, -3, 4]).to_string(),
        )
        .unwrap();
        assert_eq!(nested, flat);
        assert_eq!(json!(flat.json_data()), json!([1.0, 2.5, -3.0, 4.0]));
        for datatype in Datatype::ALL.iter().map(|(d, _, _)| *d) {
            let Some(size) = datatype.size() else {
                continue;
            };
            let t = Tensor::from_json("x".into(), datatype, vec![3], &json!([0, 1, 1]).to_string())
                .unwrap();
            assert_eq!(t.data.len(), 3 * size, "{datatype:?}");
            let back = Tensor::from_json(
                "x".into(),
                datatype,
                vec![3],
                &json!(t.json_data()).to_string(),
            )
            .unwrap();
            assert_eq!(back, t, "{datatype:?}");
        }
    }

    #[test]
    fn bad_json_data_is_refused_naming_the_input_and_the_element() {
        let err = |datatype, shape: Vec<i64>, data: Value| {
            Tensor::from_json("ids".into(), datatype, shape, &data.to_string())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(Datatype::Int64, vec![2], json!([1, 2.5])),
            "input \"ids\": element 1 (2.5) is not an integer, as INT64"
        );
        assert_eq!(
            err(Datatype::Uint8, vec![1], json!([300])),
            "input \"ids\": element 0 (300) is out of the range of UINT8"
        );
        assert_eq!(
            err(Datatype::Fp32, vec![3], json!([1, 2])),
            "input \"ids\": shape [3] holds 3 elements, data has 2"
        );
        assert_eq!(
            err(Datatype::Fp32, vec![1], json!(["a"])),
            "input \"ids\": element 0 (\"a\") is not a number, as FP32"
        );
        assert_eq!(
            err(Datatype::Fp32, vec![-1], json!([])),
            "input \"ids\": shape [-1] has a negative dimension"
        );
        let raw = Tensor::from_raw(
            "x".into(),
            Datatype::Fp32,
            vec![2],
            Bytes::from(vec![0u8; 7]),
        );
        assert_eq!(
            raw.unwrap_err().to_string(),
            "input \"x\": shape [2] of FP32 needs 8 bytes, got 7"
        );
    }

    #[test]
    fn bytes_tensors_carry_text_in_json_and_in_the_binary_form() {
        let t = Tensor::from_json(
            "text".into(),
            Datatype::Bytes,
            vec![2, 2],
            &json!([["a", ""], ["héllo", "b c"]]).to_string(),
        )
        .unwrap();
        let mut binary = Vec::new();
        for element in ["a", "", "héllo", "b c"] {
            push_bytes_element(&mut binary, element.as_bytes()).unwrap();
        }
        assert_eq!(t.data, Bytes::from(binary.clone()));
        assert_eq!(json!(t.json_data()), json!(["a", "", "héllo", "b c"]));
        let raw = Tensor::from_raw("text".into(), Datatype::Bytes, vec![2, 2], binary.into());
        assert_eq!(raw.unwrap(), t);
        // Row 0 is "a" and "" (4 + 1 and 4 bytes), row 1 "héllo" and "b c" (4 + 6 and 4 + 3 bytes).
        assert_eq!(t.row_offsets(2), Some(vec![0, 9, 26]));
        assert_eq!(t.row_offsets(3), None);

        let err = |shape: Vec<i64>, data: Vec<u8>| {
            Tensor::from_raw("text".into(), Datatype::Bytes, shape, data.into())
                .unwrap_err()
                .to_string()
        };
        assert!(err(vec![1], vec![5, 0, 0, 0, b'a']).contains("4-byte little-endian length"));
        assert!(err(vec![2], vec![1, 0, 0, 0, b'a']).contains("holds 2 elements, data has 1"));
        assert!(err(vec![1], vec![1, 0, 0, 0, 0xff]).contains("element 0 is not UTF-8"));
        assert!(err(vec![1], vec![1, 0, 0, 0, 0]).contains("NUL"));
        let json_err = Tensor::from_json(
            "text".into(),
            Datatype::Bytes,
            vec![1],
            &json!([1]).to_string(),
        );
        assert_eq!(
            json_err.unwrap_err().to_string(),
            "input \"text\": element 0 (1) is not a string, as BYTES"
        );
    }

    #[test]
    fn floats_are_written_in_their_own_precision_shortest_form() {
        let t = |datatype, bytes: Vec<u8>| Tensor {
            name: "y".into(),
            datatype,
            shape: vec![2],
            data: bytes.into(),
        };
        let fp32 = t(
            Datatype::Fp32,
            [0.1f32, f32::NAN]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
        );
        assert_eq!(
            serde_json::to_string(&fp32.json_data()).unwrap(),
            "[0.1,null]"
        );
        let fp16 = t(
            Datatype::Fp16,
            [0.1f32, -2.5]
                .iter()
                .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                .collect(),
        );
        assert_eq!(
            serde_json::to_string(&fp16.json_data()).unwrap(),
            "[0.099975586,-2.5]"
        );
    }

    proptest! {
        /// Whatever JSON a client sends as `data`, with whatever shape, parsing answers (a tensor or an
        /// error naming the input) and never panics; a tensor it accepts fills its shape exactly.
        #[test]
        fn any_json_data_parses_or_is_refused(
            shape in proptest::collection::vec(-2i64..5, 0..4),
            values in proptest::collection::vec(prop_oneof![
                any::<f64>().prop_map(|x| json!(x)),
                any::<i64>().prop_map(|x| json!(x)),
                any::<u64>().prop_map(|x| json!(x)),
                any::<bool>().prop_map(|x| json!(x)),
                ".{0,4}".prop_map(|x| json!(x)),
                any::<i8>().prop_map(|x| json!([x, [x]])),
            ], 0..12),
            which in 0usize..14,
        ) {
            let datatype = Datatype::ALL[which].0;
            if let Ok(t) = Tensor::from_json("x".into(), datatype, shape.clone(), &Value::Array(values).to_string()) {
                let count: i64 = shape.iter().product();
                match datatype.size() {
                    Some(size) => prop_assert_eq!(t.data.len() as i64, count * size as i64),
                    None => prop_assert_eq!(bytes_elements(&t.data).map(|e| e.len() as i64), Some(count)),
                }
            }
        }

        /// Whatever bytes come as a BYTES input's binary data, parsing answers and never panics; the
        /// data it accepts splits back into the shape's rows.
        #[test]
        fn any_binary_bytes_data_parses_or_is_refused(
            rows in 0i64..4,
            cols in 0i64..3,
            data in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(b'a'), any::<u8>()], 0..40),
        ) {
            if let Ok(t) = Tensor::from_raw("x".into(), Datatype::Bytes, vec![rows, cols], data.into())
                && rows > 0
            {
                let offsets = t.row_offsets(rows as usize).unwrap();
                prop_assert_eq!(offsets.last().copied(), Some(t.data.len()));
            }
        }

        /// A finite FP32 or FP64 value written as JSON reads back to the same bits.
        #[test]
        fn json_floats_read_back_to_the_same_value(x in any::<f32>(), y in any::<f64>()) {
            prop_assume!(x.is_finite() && y.is_finite());
            for (datatype, bytes) in [
                (Datatype::Fp32, x.to_le_bytes().to_vec()),
                (Datatype::Fp64, y.to_le_bytes().to_vec()),
            ] {
                let t = Tensor { name: "y".into(), datatype, shape: vec![1], data: bytes.into() };
                let text = serde_json::to_string(&t.json_data()).unwrap();
                let back = Tensor::from_json("y".into(), datatype, vec![1], &text).unwrap();
                prop_assert_eq!(&back.data, &t.data, "{}", text);
            }
        }
    }
}
