//! The protocol's inference messages over REST: the request's JSON (its tensors' data kept as text until
//! read knowing the datatype) and the binary-data extension's tensors after it, the outputs a request asks
//! for, and the answer written from the outputs' bytes without an intermediate JSON tree.

use actix_web::HttpRequest;
use actix_web::http::header::HeaderName;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::ServeError;
use super::classification::{class_count, top_classes};
use super::json_non_finite::Marks;
use super::rest_bounds::{Parameters, Tensors};
use super::tensor::{Datatype, JsonData, Tensor};

/// Where the binary data starts: the length of the body's JSON (the binary-data extension).
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// The request's structure is bounded (`rest_bounds`) so that what it decodes to stays near its size.
#[derive(Deserialize)]
pub struct InferRequest<'a> {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    parameters: Parameters,
    #[serde(borrow)]
    pub inputs: Tensors<InputTensor<'a>>,
    #[serde(default)]
    outputs: Option<Tensors<RequestedOutput>>,
}

#[derive(Deserialize)]
pub struct InputTensor<'a> {
    name: String,
    #[serde(deserialize_with = "super::rest_bounds::shape")]
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Parameters,
    /// Kept as its text and read knowing the datatype (`json_values`): no JSON value tree is built.
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
pub struct RequestedOutput {
    name: String,
    #[serde(default)]
    parameters: Parameters,
}

/// The request's JSON text and its binary tensor data (empty without the extension).
pub fn split_body(req: &HttpRequest, body: Bytes) -> Result<(Bytes, Bytes), ServeError> {
    let header_length = match req.headers().get(HeaderName::from_static(HEADER_LENGTH)) {
        Some(value) => {
            let n: usize = value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    ServeError::BadRequest(
                        "Inference-Header-Content-Length is not a number".to_owned(),
                    )
                })?;
            if n > body.len() {
                return Err(ServeError::BadRequest(format!(
                    "Inference-Header-Content-Length is {n}, but the body has {} bytes",
                    body.len()
                )));
            }
            n
        }
        None => body.len(),
    };
    Ok((body.slice(..header_length), body.slice(header_length..)))
}

impl InferRequest<'_> {
    /// How long its client waits for the answer, by its `timeout` parameter (`request_deadline`).
    pub fn timeout(&self) -> Result<Option<std::time::Duration>, ServeError> {
        match self.parameters.get("timeout") {
            None => Ok(None),
            Some(v) => super::request_deadline::timeout_parameter(integer(v)),
        }
    }
}

/// A parameter's integer, signed or not (`None`: not an integer).
fn integer(v: &Value) -> Option<i128> {
    v.as_i64().map(i128::from).or(v.as_u64().map(i128::from))
}

/// The request in `header`, its tensors' JSON data kept as text in it.
pub fn parse_request(header: &[u8]) -> Result<InferRequest<'_>, ServeError> {
    serde_json::from_slice(header)
        .map_err(|e| ServeError::BadRequest(format!("the inference request is not valid: {e}")))
}

/// The request's tensors, and the bytes decoding them from JSON took (binary data is used in place).
pub fn inputs(
    request: &[InputTensor<'_>],
    mut binary: Bytes,
) -> Result<(Vec<Tensor>, usize), ServeError> {
    let mut tensors = Vec::with_capacity(request.len());
    let mut decoded = 0;
    for input in request {
        let datatype = Datatype::parse(&input.datatype).ok_or_else(|| {
            ServeError::BadRequest(format!(
                "input {:?}: datatype {:?} is not one this server takes (BOOL, UINT8..UINT64, INT8..INT64, FP16, BF16, FP32, FP64, BYTES)",
                input.name, input.datatype
            ))
        })?;
        let tensor = match (input.parameters.get("binary_data_size"), &input.data) {
            (Some(size), _) => {
                let size = size.as_u64().map(|s| s as usize).filter(|&s| s <= binary.len()).ok_or_else(|| {
                    ServeError::BadRequest(format!(
                        "input {:?}: binary_data_size {size} is not a size within the {} binary bytes left",
                        input.name,
                        binary.len()
                    ))
                })?;
                let data = binary.split_to(size);
                Tensor::from_raw(input.name.clone(), datatype, input.shape.clone(), data)?
            }
            (None, Some(data)) => {
                let tensor = Tensor::from_json(
                    input.name.clone(),
                    datatype,
                    input.shape.clone(),
                    data.get(),
                )?;
                decoded += tensor.data.len();
                tensor
            }
            (None, None) => {
                return Err(ServeError::BadRequest(format!(
                    "input {:?} has neither data nor parameters.binary_data_size",
                    input.name
                )));
            }
        };
        tensors.push(tensor);
    }
    if !binary.is_empty() {
        return Err(ServeError::BadRequest(format!(
            "{} bytes of binary data follow the inputs that no input claims",
            binary.len()
        )));
    }
    Ok((tensors, decoded))
}

/// The outputs asked for (all when none are named), each with whether it goes as binary data.
pub fn selected(
    request: &InferRequest,
    outputs: Vec<Tensor>,
    served: &super::Served,
) -> Result<Vec<(Tensor, bool)>, ServeError> {
    let known = &served.signature;
    let all_binary = request
        .parameters
        .get("binary_data_output")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(Tensors(wanted)) = &request.outputs else {
        return Ok(outputs.into_iter().map(|t| (t, all_binary)).collect());
    };
    let mut outputs = outputs;
    wanted
        .iter()
        .map(|w| {
            if !known.has_output(&w.name) {
                return Err(known.not_served(&w.name));
            }
            let at = outputs
                .iter()
                .position(|t| t.name == w.name)
                .ok_or_else(|| {
                    ServeError::BadRequest(format!("output {:?} is asked for twice", w.name))
                })?;
            let classes = w
                .parameters
                .get("classification")
                .map(|v| class_count(&w.name, integer(v)))
                .transpose()?;
            let binary = w
                .parameters
                .get("binary_data")
                .and_then(Value::as_bool)
                .unwrap_or(all_binary);
            let output = outputs.swap_remove(at);
            let output = match classes {
                Some(count) => {
                    let labels = served.labels.of(&w.name);
                    top_classes(&output, count, known.batchable, labels)?
                }
                None => output,
            };
            Ok((output, binary))
        })
        .collect()
}

/// The protocol's inference response, serialized without an intermediate JSON tree: an output's values
/// go from its bytes straight into the body.
#[derive(Serialize)]
struct InferResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    outputs: Vec<OutputTensor<'a>>,
}

#[derive(Serialize)]
struct OutputTensor<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [i64],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinaryDataSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<JsonData<'a>>,
}

#[derive(Serialize)]
struct BinaryDataSize {
    binary_data_size: usize,
}

/// The answer's body: its JSON, then the binary data of the outputs that go as such, whose start the
/// `Inference-Header-Content-Length` gives (`None` when all are JSON).
pub fn response(
    model: &str,
    version: &str,
    id: Option<String>,
    outputs: &[(Tensor, bool)],
) -> (BytesMut, Option<usize>) {
    // Where NaN and the infinities go, written as Triton writes them (`json_non_finite`).
    let marks = Marks::default();
    let described = outputs
        .iter()
        .map(|(t, as_binary)| OutputTensor {
            name: &t.name,
            datatype: t.datatype.as_str(),
            shape: &t.shape,
            parameters: as_binary.then(|| BinaryDataSize {
                binary_data_size: t.data.len(),
            }),
            data: (!as_binary).then(|| t.json_data_marked(&marks)),
        })
        .collect();
    let header = InferResponse {
        model_name: model,
        model_version: version,
        id,
        outputs: described,
    };
    // Room for the common case, a JSON float of about a dozen characters per element, in one allocation.
    let json_bytes: usize = outputs
        .iter()
        .filter(|(_, b)| !*b)
        .map(|(t, _)| {
            t.datatype
                .size()
                .map_or(t.data.len() + 64, |size| t.data.len() / size * 12)
        })
        .sum();
    let mut body = marks.writer(BytesMut::with_capacity(256 + json_bytes).writer());
    serde_json::to_writer(&mut body, &header).expect("a response serializes to JSON");
    let mut body = marks.replace(body.into_inner().into_inner());
    if !outputs.iter().any(|(_, b)| *b) {
        return (body, None);
    }
    let length = body.len();
    for (t, _) in outputs.iter().filter(|(_, b)| *b) {
        body.extend_from_slice(&t.data);
    }
    (body, Some(length))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(name: &str, datatype: Datatype, data: Vec<u8>) -> Tensor {
        let count = data.len() / datatype.size().unwrap_or(1);
        Tensor::from_raw(name.into(), datatype, vec![count as i64], data.into()).unwrap()
    }

    #[test]
    fn non_finite_floats_are_written_as_tritons_tokens_beside_everything_else() {
        let f32s = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let f16s = |v: &[f32]| {
            v.iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect()
        };
        let bf16s = |v: &[f32]| {
            v.iter()
                .flat_map(|&x| half::bf16::from_f32(x).to_le_bytes())
                .collect()
        };
        let f64s = |v: &[f64]| v.iter().flat_map(|x| x.to_le_bytes()).collect();
        let (inf, nan) = (f32::INFINITY, f32::NAN);
        let binary = f32s(&[nan, inf]);
        let outputs = [
            (tensor("a", Datatype::Fp32, f32s(&[1.5, nan, -inf])), false),
            (tensor("b", Datatype::Fp16, f16s(&[inf, 0.5])), false),
            (tensor("c", Datatype::Bf16, bf16s(&[-inf, 2.0])), false),
            (tensor("d", Datatype::Fp64, f64s(&[f64::NAN, -0.0])), false),
            (
                tensor("e", Datatype::Int64, vec![7, 0, 0, 0, 0, 0, 0, 0]),
                false,
            ),
            (tensor("f", Datatype::Fp32, binary.clone()), true),
        ];
        let (body, length) = response("m", "1", Some("null".into()), &outputs);
        let length = length.unwrap();
        assert_eq!(
            std::str::from_utf8(&body[..length]).unwrap(),
            concat!(
                r#"{"model_name":"m","model_version":"1","id":"null","outputs":["#,
                r#"{"name":"a","datatype":"FP32","shape":[3],"data":[1.5,NaN,-Infinity]},"#,
                r#"{"name":"b","datatype":"FP16","shape":[2],"data":[Infinity,0.5]},"#,
                r#"{"name":"c","datatype":"BF16","shape":[2],"data":[-Infinity,2.0]},"#,
                r#"{"name":"d","datatype":"FP64","shape":[2],"data":[NaN,-0.0]},"#,
                r#"{"name":"e","datatype":"INT64","shape":[1],"data":[7]},"#,
                r#"{"name":"f","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":8}}]}"#
            )
        );
        assert_eq!(
            &body[length..],
            &binary[..],
            "binary data follows untouched"
        );
        let finite = [(tensor("a", Datatype::Fp32, f32s(&[0.1, -2.0])), false)];
        let (body, _) = response("m", "1", None, &finite);
        let strict: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(strict["outputs"][0]["data"], serde_json::json!([0.1, -2.0]));
    }
}
