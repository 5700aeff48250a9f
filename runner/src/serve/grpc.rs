//! The protocol's gRPC API (`proto/grpc_predict_v2.proto`, with tonic). Inputs come typed (`contents`) or
//! as raw little-endian bytes (`raw_input_contents`); outputs always go as raw contents, as Triton sends
//! them and every client of the protocol reads them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use tokio_util::sync::CancellationToken;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};
use tower_layer::Stack;

use super::call_deadline::{CallDeadline, CallDeadlineLayer};
use super::classification::{class_count, top_classes};
use super::grpc_memory::{HoldLayer, SharedHeld};
use super::tensor::{Datatype, Tensor, push_bytes_element};
use super::{ServeError, State, metrics, request_deadline};

#[allow(clippy::all, clippy::pedantic)]
pub mod inference {
    tonic::include_proto!("inference");
}

use inference::grpc_inference_service_server::{GrpcInferenceService, GrpcInferenceServiceServer};
use inference::model_infer_request::InferInputTensor;
use inference::model_infer_response::InferOutputTensor;
use inference::model_metadata_response::TensorMetadata;
use inference::*;

struct Service {
    state: Arc<State>,
}

pub(super) fn status(e: ServeError) -> Status {
    let message = e.client_text();
    match e {
        ServeError::BadRequest(_) | ServeError::Inference(_) => Status::invalid_argument(message),
        ServeError::NotFound(_) => Status::not_found(message),
        ServeError::Unauthorized(_) => Status::unauthenticated(message),
        ServeError::Unavailable(_) | ServeError::Registry(_) | ServeError::Refused(_) => {
            Status::unavailable(message)
        }
        ServeError::TooSlow(_) | ServeError::DeadlineExceeded(_) => {
            Status::deadline_exceeded(message)
        }
    }
}

/// Calls at once on one connection, and the bytes each may send before the server reads them. A call
/// whose message waits for memory (`grpc_memory`) leaves its frames unread, and unread frames also hold
/// the connection's window, which the calls on a connection share: with hyper's defaults (1 MiB for a
/// call and 1 MiB for the connection), twelve large calls from one client (gRPC clients share one
/// connection per target) stalled the two admitted ones behind the ten waiting until those gave up. A
/// connection's window as large as all its calls' windows together cannot be held by waiting calls. How
/// many calls may wait, on all connections together, is bounded (`request_memory`), and with it the
/// frames they leave unread.
const STREAMS: u32 = 128;
pub(super) const STREAM_WINDOW: u32 = 256 << 10;

/// Serves until `stop`, letting calls in flight finish.
pub async fn serve(state: Arc<State>, listener: tokio::net::TcpListener, stop: CancellationToken) {
    let client_timeout = state.client_pace.map(|pace| pace.timeout());
    let max_age = state.max_connection_age;
    let incoming = super::connections::accepted(listener, state.max_connections, client_timeout);
    let (layers, service) = (call_layers(&state), service(state));
    let mut server = tonic::transport::Server::builder();
    if let Some(age) = max_age {
        // No grace: tonic's grace replaces the GOAWAY with an abrupt close at age + grace. A call left on
        // a connection told GOAWAY ends as every call does, its client's pace included (`client_pace`).
        server = server.max_connection_age(age);
    }
    let served = server
        .max_concurrent_streams(STREAMS)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(STREAMS * STREAM_WINDOW)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .layer(layers)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the gRPC server stopped");
    }
}

/// The layers every call passes through before the service, outermost first: the one under which it holds
/// its memory (`grpc_memory`), then the one that ends it at its deadline (`call_deadline`), which must see
/// the deadline tonic's own timeout would otherwise end first. The server and the in-process front end the
/// fuzzers drive (`in_process`) both take them from here, so that what is fuzzed is what is served.
pub(super) fn call_layers(state: &State) -> Stack<CallDeadlineLayer, HoldLayer> {
    let hold = HoldLayer {
        memory: state.request_memory.clone(),
        max_message: state.max_request_bytes,
        pace: state.client_pace,
    };
    Stack::new(CallDeadlineLayer, hold)
}

/// The protocol's service on `state`, taking messages within the size `--max-request-mib` sets.
pub(super) fn service(state: Arc<State>) -> GrpcInferenceServiceServer<impl GrpcInferenceService> {
    let limit = state.max_request_bytes;
    // Compressed messages as Triton takes them (tritonclient's `compression_algorithm`): `grpc_memory`
    // inflates and counts them and passes them on inflated; tonic must still accept the call's
    // `grpc-encoding`, which it would otherwise refuse as UNIMPLEMENTED. Answers keep tonic's default
    // (no limit of its own), as REST's have none: `--max-response-mib` bounds a run's outputs on both,
    // and `infer` refuses an answer past what a gRPC message can hold; the request's limit would cut off
    // a small request's large answer as OUT_OF_RANGE (and tonic checks it only once it has encoded it).
    GrpcInferenceServiceServer::new(Service { state })
        .max_decoding_message_size(limit)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Deflate)
}

/// How often a connection's peer is pinged over HTTP/2, and how long its answer may take before the
/// connection is closed: a client that vanished without closing (a killed pod, a lost route) would
/// otherwise keep its place among the open connections (`--max-connections`) forever.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The typed fields of `contents` that hold values, by their names in the protocol.
fn filled_fields(c: &InferTensorContents) -> impl Iterator<Item = &'static str> {
    [
        ("bool_contents", c.bool_contents.len()),
        ("int_contents", c.int_contents.len()),
        ("int64_contents", c.int64_contents.len()),
        ("uint_contents", c.uint_contents.len()),
        ("uint64_contents", c.uint64_contents.len()),
        ("fp32_contents", c.fp32_contents.len()),
        ("fp64_contents", c.fp64_contents.len()),
        ("bytes_contents", c.bytes_contents.len()),
    ]
    .into_iter()
    .filter(|&(_, n)| n > 0)
    .map(|(name, _)| name)
}

/// The field the protocol puts a datatype's values in (none for FP16 and BF16, which travel raw).
fn field_of(datatype: Datatype) -> Option<&'static str> {
    Some(match datatype {
        Datatype::Bool => "bool_contents",
        Datatype::Int8 | Datatype::Int16 | Datatype::Int32 => "int_contents",
        Datatype::Int64 => "int64_contents",
        Datatype::Uint8 | Datatype::Uint16 | Datatype::Uint32 => "uint_contents",
        Datatype::Uint64 => "uint64_contents",
        Datatype::Fp32 => "fp32_contents",
        Datatype::Fp64 => "fp64_contents",
        Datatype::Bytes => "bytes_contents",
        Datatype::Fp16 | Datatype::Bf16 => return None,
    })
}

fn typed_bytes(input: &InferInputTensor, datatype: Datatype) -> Result<Bytes, ServeError> {
    let empty = InferTensorContents::default();
    let c = input.contents.as_ref().unwrap_or(&empty);
    if let Some(field) = field_of(datatype)
        && filled_fields(c).any(|f| f != field)
    {
        return Err(ServeError::BadRequest(format!(
            "input {:?} is {}, whose values go in contents.{field}; it has {}",
            input.name,
            datatype.as_str(),
            filled_fields(c).collect::<Vec<_>>().join(" and ")
        )));
    }
    let mut out = BytesMut::new();
    match datatype {
        Datatype::Bool => c
            .bool_contents
            .iter()
            .for_each(|&b| out.put_u8(u8::from(b))),
        Datatype::Int8 => c.int_contents.iter().for_each(|&v| out.put_i8(v as i8)),
        Datatype::Int16 => c
            .int_contents
            .iter()
            .for_each(|&v| out.put_i16_le(v as i16)),
        Datatype::Int32 => c.int_contents.iter().for_each(|&v| out.put_i32_le(v)),
        Datatype::Int64 => c.int64_contents.iter().for_each(|&v| out.put_i64_le(v)),
        Datatype::Uint8 => c.uint_contents.iter().for_each(|&v| out.put_u8(v as u8)),
        Datatype::Uint16 => c
            .uint_contents
            .iter()
            .for_each(|&v| out.put_u16_le(v as u16)),
        Datatype::Uint32 => c.uint_contents.iter().for_each(|&v| out.put_u32_le(v)),
        Datatype::Uint64 => c.uint64_contents.iter().for_each(|&v| out.put_u64_le(v)),
        Datatype::Fp32 => c.fp32_contents.iter().for_each(|&v| out.put_f32_le(v)),
        Datatype::Fp64 => c.fp64_contents.iter().for_each(|&v| out.put_f64_le(v)),
        Datatype::Bytes => {
            let mut data = Vec::new();
            for element in &c.bytes_contents {
                push_bytes_element(&mut data, element).ok_or_else(|| {
                    ServeError::BadRequest(format!(
                        "input {:?}: an element is too large",
                        input.name
                    ))
                })?;
            }
            return Ok(data.into());
        }
        Datatype::Fp16 | Datatype::Bf16 => {
            return Err(ServeError::BadRequest(format!(
                "input {:?}: {} has no typed contents in the protocol; send it in raw_input_contents",
                input.name,
                datatype.as_str()
            )));
        }
    }
    Ok(out.freeze())
}

fn inputs(request: &ModelInferRequest) -> Result<Vec<Tensor>, ServeError> {
    let raw = &request.raw_input_contents;
    if !raw.is_empty() && raw.len() != request.inputs.len() {
        return Err(ServeError::BadRequest(format!(
            "raw_input_contents has {} entries for {} inputs: give every input there, or none",
            raw.len(),
            request.inputs.len()
        )));
    }
    request
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let datatype = Datatype::parse(&input.datatype).ok_or_else(|| {
                ServeError::BadRequest(format!(
                    "input {:?}: datatype {:?} is not one this server takes",
                    input.name, input.datatype
                ))
            })?;
            let data = match raw.get(i) {
                Some(_) if input.contents.as_ref().is_some_and(|c| filled_fields(c).next().is_some()) => {
                    return Err(ServeError::BadRequest(format!(
                        "input {:?} has typed contents while raw_input_contents is given: send every input \
                         one way or the other",
                        input.name
                    )));
                }
                Some(bytes) => bytes.clone(),
                None => typed_bytes(input, datatype)?,
            };
            Tensor::from_raw(input.name.clone(), datatype, input.shape.clone(), data)
        })
        .collect()
}

/// An integer parameter's value, whichever integer field carries it.
fn integer(parameter: &InferParameter) -> Option<i128> {
    use inference::infer_parameter::ParameterChoice;
    match parameter.parameter_choice {
        Some(ParameterChoice::Int64Param(n)) => Some(i128::from(n)),
        Some(ParameterChoice::Uint64Param(n)) => Some(i128::from(n)),
        _ => None,
    }
}

fn metadata(specs: &[super::signature::TensorSpec]) -> Vec<TensorMetadata> {
    specs
        .iter()
        .map(|s| TensorMetadata {
            name: s.name.clone(),
            datatype: s.datatype.as_str().to_owned(),
            shape: s.shape.clone().unwrap_or_default(),
        })
        .collect()
}

impl Service {
    /// Answers `request`, counting its decoded inputs, outputs and encoded answer in `held` (its message
    /// was admitted already); without `held` (a call that did not pass through [`HoldLayer`]), nothing is.
    async fn infer(
        &self,
        request: ModelInferRequest,
        (held, arrived, call_deadline): (Option<SharedHeld>, Instant, Option<Instant>),
        served_by: &mut Option<String>,
    ) -> Result<ModelInferResponse, ServeError> {
        let count = |bytes: usize| {
            if let Some(held) = &held {
                held.count(bytes);
            }
        };
        let version = Some(request.model_version.as_str());
        let served = self.state.model(&request.model_name, version)?;
        *served_by = Some(served.version.clone());
        let inputs = inputs(&request)?;
        // Raw contents are slices of the message as received (admitted already); typed ones were copied.
        let copied = if request.raw_input_contents.is_empty() {
            inputs.iter().map(|t| t.data.len()).sum()
        } else {
            0
        };
        if let Some(held) = &held {
            let decoded = copied + super::ort_strings::inputs_engine_bytes(&inputs);
            held.count_within_limit(decoded, super::ort_strings::DECODED_INPUTS)?;
        }
        let timeout = match request.parameters.get("timeout") {
            Some(parameter) => request_deadline::timeout_parameter(integer(parameter))?,
            None => None,
        };
        let deadline = request_deadline::deadline(arrived, [timeout])
            .into_iter()
            .chain(call_deadline)
            .min();
        let mut outputs = served.infer(inputs, deadline).await?;
        count(outputs.iter().map(|t| t.data.len()).sum());
        if !request.outputs.is_empty() {
            let mut chosen = Vec::with_capacity(request.outputs.len());
            for wanted in &request.outputs {
                let at = outputs
                    .iter()
                    .position(|t| t.name == wanted.name)
                    .ok_or_else(|| {
                        if served.signature.has_output(&wanted.name) {
                            ServeError::BadRequest(format!(
                                "output {:?} is asked for twice",
                                wanted.name
                            ))
                        } else {
                            served.signature.not_served(&wanted.name)
                        }
                    })?;
                let output = outputs.swap_remove(at);
                let output = match wanted.parameters.get("classification") {
                    Some(parameter) => {
                        let count = class_count(&wanted.name, integer(parameter))?;
                        let labels = served.labels.of(&wanted.name);
                        top_classes(&output, count, served.signature.batchable, labels)?
                    }
                    None => output,
                };
                chosen.push(output);
            }
            outputs = chosen;
        }
        let response = ModelInferResponse {
            model_name: self.state.model_name.clone(),
            model_version: served.version.clone(),
            id: request.id,
            parameters: Default::default(),
            outputs: outputs
                .iter()
                .map(|t| InferOutputTensor {
                    name: t.name.clone(),
                    datatype: t.datatype.as_str().to_owned(),
                    shape: t.shape.clone(),
                    parameters: Default::default(),
                    contents: None,
                })
                .collect(),
            raw_output_contents: outputs.into_iter().map(|t| t.data).collect(),
        };
        // tonic encodes the answer into a buffer of its own, behind a length prefix of 32 bits.
        let length = prost::Message::encoded_len(&response);
        if length > u32::MAX as usize {
            return Err(ServeError::BadRequest(format!(
                "the answer would be a message of {length} bytes, more than the 4 GiB a gRPC message \
                 holds: send fewer rows or ask for fewer outputs"
            )));
        }
        count(length);
        Ok(response)
    }
}

#[tonic::async_trait]
impl GrpcInferenceService for Service {
    async fn server_live(
        &self,
        _: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        Ok(Response::new(ServerLiveResponse { live: true }))
    }

    async fn server_ready(
        &self,
        _: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        let ready = self.state.model(&self.state.model_name, None).is_ok();
        Ok(Response::new(ServerReadyResponse { ready }))
    }

    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let r = request.into_inner();
        let ready = match self.state.model(&r.name, Some(&r.version)) {
            Ok(_) => true,
            // Here but not serving (an expired manifest under --when-expired refuse).
            Err(ServeError::Unavailable(_)) => false,
            Err(e) => return Err(status(e)),
        };
        Ok(Response::new(ModelReadyResponse { ready }))
    }

    async fn server_metadata(
        &self,
        _: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        Ok(Response::new(ServerMetadataResponse {
            name: "kiln-runner".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            extensions: vec!["classification".to_owned()],
        }))
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let r = request.into_inner();
        let served = self
            .state
            .model(&r.name, Some(&r.version))
            .map_err(status)?;
        Ok(Response::new(ModelMetadataResponse {
            name: self.state.model_name.clone(),
            versions: vec![served.version.clone()],
            platform: "onnx".to_owned(),
            inputs: metadata(&served.signature.inputs),
            outputs: metadata(&served.signature.outputs),
        }))
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let started = Instant::now();
        let held = request.extensions().get::<SharedHeld>().cloned();
        let call_deadline = request.extensions().get::<CallDeadline>().map(|d| d.0);
        let mut version = None;
        let call = (held, started, call_deadline);
        let answer = self.infer(request.into_inner(), call, &mut version).await;
        metrics::request(
            "grpc",
            super::rest::outcome(answer.as_ref().err()),
            version,
            started.elapsed(),
        );
        answer.map(Response::new).map_err(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(input: InferInputTensor, raw: Vec<Vec<u8>>) -> ModelInferRequest {
        ModelInferRequest {
            model_name: "m".into(),
            inputs: vec![input],
            raw_input_contents: raw.into_iter().map(Bytes::from).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn bytes_inputs_come_typed_or_raw_to_the_same_tensor() {
        let input = |contents| InferInputTensor {
            name: "text".into(),
            datatype: "BYTES".into(),
            shape: vec![2],
            parameters: Default::default(),
            contents,
        };
        let typed = inputs(&request(
            input(Some(InferTensorContents {
                bytes_contents: vec![Bytes::from_static(b"ab"), Bytes::from("ü")],
                ..Default::default()
            })),
            vec![],
        ))
        .unwrap();
        let raw = inputs(&request(
            input(None),
            vec![[&[2, 0, 0, 0][..], b"ab", &[2, 0, 0, 0], "ü".as_bytes()].concat()],
        ))
        .unwrap();
        assert_eq!(typed, raw);
        assert_eq!(
            serde_json::to_string(&typed[0].json_data()).unwrap(),
            r#"["ab","ü"]"#
        );
        let short = inputs(&request(
            input(Some(InferTensorContents {
                bytes_contents: vec![Bytes::from_static(b"ab")],
                ..Default::default()
            })),
            vec![],
        ));
        assert!(
            short
                .unwrap_err()
                .to_string()
                .contains("holds 2 elements, data has 1")
        );
    }

    #[test]
    fn values_in_another_field_or_given_twice_are_refused_naming_the_field() {
        let input = |contents| InferInputTensor {
            name: "x".into(),
            datatype: "FP32".into(),
            shape: vec![1, 2],
            parameters: Default::default(),
            contents,
        };
        let as_int64 = Some(InferTensorContents {
            int64_contents: vec![1, 2],
            ..Default::default()
        });
        let wrong_field = inputs(&request(input(as_int64.clone()), vec![]));
        assert_eq!(
            wrong_field.unwrap_err().to_string(),
            r#"input "x" is FP32, whose values go in contents.fp32_contents; it has int64_contents"#
        );
        let twice = inputs(&request(input(as_int64), vec![vec![0; 8]]));
        assert!(
            twice
                .unwrap_err()
                .to_string()
                .contains(r#"input "x" has typed contents while raw_input_contents is given"#)
        );
        let typed = Some(InferTensorContents {
            fp32_contents: vec![1.0, 2.0],
            ..Default::default()
        });
        let raw = [1.0f32.to_le_bytes(), 2.0f32.to_le_bytes()].concat();
        assert_eq!(
            inputs(&request(input(typed), vec![])).unwrap(),
            inputs(&request(input(None), vec![raw])).unwrap()
        );
    }
}
