//! The protocol's REST API (actix-web): health, server and model metadata, readiness, and inference with
//! JSON tensors or the binary-data extension (a JSON header of `Inference-Header-Content-Length` bytes,
//! then the tensors' bytes), which tritonclient uses by default. Errors are `{"error": "..."}` as the
//! protocol defines them. `/metrics` is Prometheus's.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::classification::{class_count, top_classes};
use super::client_pace::{Outgoing, Pace};
use super::request_memory::Held;
use super::tensor::{Datatype, JsonData, Tensor};
use super::webhook::{Delivery, Listener, MAX_DELIVERY_BYTES};
use super::{ServeError, State, metrics};

const HEADER_LENGTH: &str = "inference-header-content-length";

pub struct Started {
    pub address: SocketAddr,
    pub handle: ServerHandle,
}

/// Binds and starts the REST server on the current runtime; `POST /kiln/webhook` only with a listener
/// (`--webhook-secret`).
pub fn start(
    state: Arc<State>,
    prometheus: &'static PrometheusHandle,
    webhooks: Option<Listener>,
    listen: SocketAddr,
) -> std::io::Result<Started> {
    let webhooks = webhooks.map(web::Data::new);
    let server = HttpServer::new(move || {
        let app = match &webhooks {
            Some(listener) => App::new()
                .app_data(listener.clone())
                .route("/kiln/webhook", web::post().to(webhook)),
            None => App::new(),
        };
        app.app_data(web::Data::from(state.clone()))
            .app_data(web::Data::new(prometheus))
            .route("/v2/health/live", web::get().to(live))
            .route("/v2/health/ready", web::get().to(ready))
            .route("/v2", web::get().to(server_metadata))
            .route("/v2/models/{name}", web::get().to(model_metadata))
            .route(
                "/v2/models/{name}/versions/{version}",
                web::get().to(model_metadata),
            )
            .route("/v2/models/{name}/ready", web::get().to(model_ready))
            .route(
                "/v2/models/{name}/versions/{version}/ready",
                web::get().to(model_ready),
            )
            .route("/v2/models/{name}/infer", web::post().to(infer))
            .route(
                "/v2/models/{name}/versions/{version}/infer",
                web::post().to(infer),
            )
            .route("/metrics", web::get().to(scrape))
            .default_service(web::to(|req: HttpRequest| async move {
                error(ServeError::NotFound(format!(
                    "no such endpoint: {} {}",
                    req.method(),
                    req.path()
                )))
            }))
    })
    .bind(listen)?;
    let address = server.addrs().first().copied().unwrap_or(listen);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(Started { address, handle })
}

fn status(e: &ServeError) -> StatusCode {
    match e {
        ServeError::BadRequest(_) | ServeError::Inference(_) => StatusCode::BAD_REQUEST,
        ServeError::NotFound(_) => StatusCode::NOT_FOUND,
        ServeError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        ServeError::Unavailable(_) | ServeError::Registry(_) | ServeError::Refused(_) => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        ServeError::TooSlow(_) => StatusCode::REQUEST_TIMEOUT,
    }
}

fn error(e: ServeError) -> HttpResponse {
    let mut answer = HttpResponse::build(status(&e));
    if matches!(e, ServeError::TooSlow(_)) {
        // The rest of the body is still coming, and will not be read.
        answer.force_close();
    }
    answer.json(json!({"error": e.to_string()}))
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"live": true}))
}

/// The model is loaded before the listeners open, so a server that answers is ready, unless it refuses
/// to serve an expired manifest (`--when-expired refuse`).
async fn ready(state: web::Data<State>) -> HttpResponse {
    match state.model(&state.model_name, None) {
        Ok(_) => HttpResponse::Ok().json(json!({"ready": true})),
        Err(e) => error(e),
    }
}

async fn server_metadata() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "name": "kiln-runner",
        "version": env!("CARGO_PKG_VERSION"),
        "extensions": ["binary_tensor_data", "classification"],
    }))
}

#[derive(Deserialize)]
struct ModelPath {
    name: String,
    version: Option<String>,
}

fn tensor_metadata(specs: &[super::signature::TensorSpec]) -> Value {
    specs
        .iter()
        .map(|s| json!({"name": s.name, "datatype": s.datatype.as_str(), "shape": s.shape.clone().unwrap_or_default()}))
        .collect()
}

async fn model_metadata(state: web::Data<State>, path: web::Path<ModelPath>) -> HttpResponse {
    match state.model(&path.name, path.version.as_deref()) {
        Ok(served) => HttpResponse::Ok().json(json!({
            "name": state.model_name,
            "versions": [served.version],
            "platform": "onnx",
            "inputs": tensor_metadata(&served.signature.inputs),
            "outputs": tensor_metadata(&served.signature.outputs),
        })),
        Err(e) => error(e),
    }
}

async fn model_ready(state: web::Data<State>, path: web::Path<ModelPath>) -> HttpResponse {
    match state.model(&path.name, path.version.as_deref()) {
        Ok(served) => HttpResponse::Ok()
            .json(json!({"name": state.model_name, "version": served.version, "ready": true})),
        Err(e) => error(e),
    }
}

async fn scrape(prometheus: web::Data<&'static PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(prometheus.render())
}

#[derive(Deserialize)]
struct InferRequest<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Map<String, Value>,
    #[serde(borrow)]
    inputs: Vec<InputTensor<'a>>,
    #[serde(default)]
    outputs: Option<Vec<RequestedOutput>>,
}

#[derive(Deserialize)]
struct InputTensor<'a> {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    /// Kept as its text and read knowing the datatype (`json_values`): no JSON value tree is built.
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RequestedOutput {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

/// The whole body, refused past `limit` bytes (`what` says which limit), admitted into `held` before it
/// is read, and refused as too slow when it does not come at `pace`.
async fn body(
    req: &HttpRequest,
    mut payload: web::Payload,
    (limit, what): (usize, &str),
    held: &mut Held,
    pace: Option<Pace>,
) -> Result<Bytes, ServeError> {
    let too_large =
        || ServeError::BadRequest(format!("the request is larger than {limit} bytes ({what})"));
    // Reserved and sized once when the client says how much comes (growing by doubling would hold up to
    // twice the body); pages not yet written take no memory.
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    held.admit(announced.unwrap_or(0) as u64).await?;
    let mut clock = pace.map(Pace::start);
    let mut body = BytesMut::with_capacity(announced.unwrap_or(0));
    loop {
        let next = match &clock {
            Some(clock) => tokio::time::timeout_at(clock.deadline(), payload.next())
                .await
                .map_err(|_| clock.too_slow(announced.map(|n| n as u64)))?,
            None => payload.next().await,
        };
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| ServeError::BadRequest(format!("reading the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        // A body of no announced size is admitted as it comes.
        let beyond =
            (body.len() + chunk.len()).saturating_sub(announced.unwrap_or(0).max(body.len()));
        let admitting = Instant::now();
        held.admit(beyond as u64).await?;
        if let Some(clock) = &mut clock {
            clock.moved(chunk.len());
            clock.pause(admitting.elapsed());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// The request's JSON text and its binary tensor data (empty without the extension).
fn split_body(req: &HttpRequest, body: Bytes) -> Result<(Bytes, Bytes), ServeError> {
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

/// The request in `header`, its tensors' JSON data kept as text in it.
fn parse_request(header: &[u8]) -> Result<InferRequest<'_>, ServeError> {
    serde_json::from_slice(header)
        .map_err(|e| ServeError::BadRequest(format!("the inference request is not valid: {e}")))
}

/// The request's tensors, and the bytes decoding them from JSON took (binary data is used in place).
fn inputs(
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
fn selected(
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
    let Some(wanted) = &request.outputs else {
        return Ok(outputs.into_iter().map(|t| (t, all_binary)).collect());
    };
    let mut outputs = outputs;
    wanted
        .iter()
        .map(|w| {
            if !known.has_output(&w.name) {
                let names: Vec<&str> = known.outputs.iter().map(|o| o.name.as_str()).collect();
                return Err(ServeError::BadRequest(format!(
                    "unknown output {:?}: the model computes {}",
                    w.name,
                    names.join(", ")
                )));
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
                .map(|v| {
                    let n = v.as_i64().map(i128::from).or(v.as_u64().map(i128::from));
                    class_count(&w.name, n)
                })
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
fn response(
    model: &str,
    version: &str,
    id: Option<String>,
    outputs: &[(Tensor, bool)],
) -> (BytesMut, Option<usize>) {
    let described = outputs
        .iter()
        .map(|(t, as_binary)| OutputTensor {
            name: &t.name,
            datatype: t.datatype.as_str(),
            shape: &t.shape,
            parameters: as_binary.then(|| BinaryDataSize {
                binary_data_size: t.data.len(),
            }),
            data: (!as_binary).then(|| t.json_data()),
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
    let mut body = BytesMut::with_capacity(256 + json_bytes).writer();
    serde_json::to_writer(&mut body, &header).expect("a response serializes to JSON");
    let mut body = body.into_inner();
    if !outputs.iter().any(|(_, b)| *b) {
        return (body, None);
    }
    let length = body.len();
    for (t, _) in outputs.iter().filter(|(_, b)| *b) {
        body.extend_from_slice(&t.data);
    }
    (body, Some(length))
}

/// An answer's body, holding its request's memory until actix has taken the last of it. Given out in
/// slices: actix copies what it is given into its write buffer at once, so a body given whole would be
/// freed here while its copy still waited for a slow client; and dropped, with the hold, when the client
/// does not take it at the pace (`client_pace`).
struct HeldAnswer {
    answer: Outgoing<Held>,
    size: u64,
}

impl HeldAnswer {
    fn new(body: Bytes, held: Held, pace: Option<Pace>) -> Self {
        let size = body.len() as u64;
        let mut answer = Outgoing::new(held, pace);
        answer.push(body);
        Self { answer, size }
    }
}

/// An answer's slice given to actix at a time.
const ANSWER_SLICE: usize = 64 << 10;

impl MessageBody for HeldAnswer {
    type Error = ServeError;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.size)
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let next = this.answer.take(ANSWER_SLICE).transpose();
        if next.is_none() {
            this.answer.finish();
        }
        Poll::Ready(next)
    }

    /// A small answer goes whole, with its head (actix's fast path); what it held is freed with it.
    fn try_into_bytes(mut self) -> Result<Bytes, Self> {
        self.answer.whole(ANSWER_SLICE).ok_or(self)
    }
}

async fn infer(
    req: HttpRequest,
    state: web::Data<State>,
    path: web::Path<ModelPath>,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let answer = async {
        // The model first: an unknown model is 404 whatever the body holds.
        let served = state.model(&path.name, path.version.as_deref())?;
        let mut held = state.request_memory.held();
        let limit = (
            state.max_request_bytes,
            "kiln-runner serve --max-request-mib",
        );
        let body = body(&req, payload, limit, &mut held, state.client_pace).await?;
        let (header, binary) = split_body(&req, body)?;
        let request = parse_request(&header)?;
        let (inputs, decoded) = inputs(&request.inputs, binary)?;
        held.count(decoded);
        let outputs = served.infer(inputs).await?;
        held.count(outputs.iter().map(|t| t.data.len()).sum());
        let outputs = selected(&request, outputs, &served)?;
        let (body, header_length) = response(
            &state.model_name,
            &served.version,
            request.id.clone(),
            &outputs,
        );
        held.count(body.len());
        let mut answer = HttpResponse::Ok();
        match header_length {
            None => answer.insert_header((CONTENT_TYPE, "application/json")),
            Some(length) => answer
                .insert_header((CONTENT_TYPE, "application/octet-stream"))
                .insert_header((HEADER_LENGTH, length.to_string())),
        };
        let body = HeldAnswer::new(body.freeze(), held, state.client_pace);
        Ok::<_, ServeError>(answer.body(body))
    }
    .await;
    metrics::request("rest", outcome(answer.as_ref().err()), started.elapsed());
    answer.unwrap_or_else(error)
}

/// A kiln webhook delivery: 200 with what it did (`poll_now`, `ignored`) once verified, 401 when it does
/// not verify.
async fn webhook(
    listener: web::Data<Listener>,
    state: web::Data<State>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let answer = async {
        let delivery = Delivery::from_headers(|name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })?;
        let mut held = state.request_memory.held();
        let limit = (MAX_DELIVERY_BYTES, "a webhook delivery");
        let body = body(&req, payload, limit, &mut held, state.client_pace).await?;
        listener.hear(&delivery, &body, chrono::Utc::now().timestamp())
    }
    .await;
    metrics::webhook(match &answer {
        Ok(heard) => heard.as_str(),
        Err(ServeError::Unauthorized(_)) => "refused",
        Err(_) => "bad_request",
    });
    match answer {
        Ok(heard) => HttpResponse::Ok().json(json!({"heard": heard.as_str()})),
        Err(e) => error(e),
    }
}

/// The outcome label of a request.
pub fn outcome(e: Option<&ServeError>) -> &'static str {
    match e {
        None => "ok",
        Some(ServeError::BadRequest(_) | ServeError::Inference(_)) => "bad_request",
        Some(ServeError::NotFound(_)) => "not_found",
        Some(ServeError::Unavailable(_)) => "unavailable",
        Some(ServeError::TooSlow(_)) => "timeout",
        Some(ServeError::Registry(_) | ServeError::Refused(_) | ServeError::Unauthorized(_)) => {
            "error"
        }
    }
}
