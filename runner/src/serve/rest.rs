//! The protocol's REST API (actix-web): health, server and model metadata, readiness, and inference with
//! JSON tensors or the binary-data extension (a JSON header of `Inference-Header-Content-Length` bytes,
//! then the tensors' bytes), which tritonclient uses by default. Errors are `{"error": "..."}` as the
//! protocol defines them. `/metrics` is Prometheus's. The inference messages themselves are read and
//! written in `rest_messages`; here a body is read within the memory and pace limits and an answer held
//! until sent.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServerHandle, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, VARY};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client_pace::{Outgoing, Pace};
use super::request_memory::Held;
use super::rest_messages::{HEADER_LENGTH, inputs, parse_request, response, selected, split_body};
use super::webhook::{Delivery, Listener, MAX_DELIVERY_BYTES};
use super::{ServeError, State, metrics};

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
    // actix bounds connections per worker; its default number of workers, set here to divide by.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max_connections = state.max_connections.div_ceil(workers);
    let client_timeout = state.client_pace.map(|pace| pace.timeout());
    let server = HttpServer::new(move || app(state.clone(), prometheus, webhooks.clone()))
        .on_connect(move |connection, extensions| {
            extensions.insert(super::connections::Open::new(super::metrics::connections(
                "rest",
            )));
            let tcp = connection.downcast_ref::<actix_web::rt::net::TcpStream>();
            if let Some(tcp) = tcp {
                super::connections::probe_when_silent(tcp);
            }
            if let (Some(tcp), Some(timeout)) = (tcp, client_timeout) {
                super::connections::close_when_stalled(tcp, timeout);
            }
        })
        .workers(workers)
        // A client that closes its connection has given up on its request: actix then ends the
        // connection's handling, dropping the handler, and a request still queued is not run
        // (`batcher::deadline`). Allowed half-closure, actix ran the handler to its end; the cost is that
        // of Go's servers too: a client that shuts its sending side while it waits (no HTTP client does
        // by default) loses its answer.
        .h1_allow_half_closed(false)
        .max_connections(max_connections)
        .shutdown_timeout(super::SHUTDOWN_GRACE.as_secs())
        // The runner's own handler stops both front ends alike; actix's would stop REST alone, and on
        // Ctrl-C at once, cutting its requests in flight.
        .disable_signals()
        .bind(listen)?;
    let address = server.addrs().first().copied().unwrap_or(listen);
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok(Started { address, handle })
}

/// The REST API's routes on `state`: what each of the server's workers runs, and what an in-process
/// caller (`in_process`) drives without a socket. `POST /kiln/webhook` only with a listener.
pub(super) fn app(
    state: Arc<State>,
    prometheus: &'static PrometheusHandle,
    webhooks: Option<web::Data<Listener>>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let app = match webhooks {
        Some(listener) => App::new()
            .app_data(listener)
            .route("/kiln/webhook", web::post().to(webhook)),
        None => App::new(),
    };
    app.app_data(web::Data::from(state))
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
        ServeError::DeadlineExceeded(_) => StatusCode::GATEWAY_TIMEOUT,
    }
}

fn error(e: ServeError) -> HttpResponse {
    let mut answer = HttpResponse::build(status(&e));
    if matches!(e, ServeError::TooSlow(_)) {
        // The rest of the body is still coming, and will not be read.
        answer.force_close();
    }
    answer.json(json!({"error": e.client_text()}))
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
        // A body of no announced size is admitted as it comes: its first chunk may wait its turn, the
        // rest grow into free room, one such body at a time waiting for it (`Held::grow`).
        let beyond =
            (body.len() + chunk.len()).saturating_sub(announced.unwrap_or(0).max(body.len()));
        let admitting = Instant::now();
        if body.is_empty() {
            held.admit(beyond as u64).await?;
        } else {
            held.grow(beyond as u64).await?;
        }
        if let Some(clock) = &mut clock {
            clock.moved(chunk.len());
            clock.pause(admitting.elapsed());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
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
        let next = this.answer.take().transpose();
        if next.is_none() {
            this.answer.finish();
        }
        Poll::Ready(next)
    }

    /// A small answer goes whole, with its head (actix's fast path); what it held is freed with it.
    fn try_into_bytes(mut self) -> Result<Bytes, Self> {
        self.answer.whole().ok_or(self)
    }
}

/// The answer's body in the encoding the client's `Accept-Encoding` prefers (with `Content-Encoding`
/// said), from `MIN_COMPRESSED_BYTES` on; a large one compressed off the HTTP worker. The request's
/// hold keeps the compressed copy's count, not the plain one's.
async fn encoded(
    req: &HttpRequest,
    body: BytesMut,
    held: &mut Held,
    answer: &mut actix_web::HttpResponseBuilder,
) -> Result<Bytes, ServeError> {
    use super::answer_compression::{MIN_COMPRESSED_BYTES, OFF_WORKER_BYTES, accepted, compress};
    // The length first: most answers are small, and their requests' headers need no parsing.
    let Some(encoding) = (body.len() >= MIN_COMPRESSED_BYTES)
        .then(|| accepted(req))
        .flatten()
    else {
        return Ok(body.freeze());
    };
    let (plain, body) = (body.len(), body.freeze());
    let compressed = if plain > OFF_WORKER_BYTES {
        web::block(move || compress(&body, encoding))
            .await
            .map_err(|e| ServeError::Unavailable(format!("compressing the answer: {e}")))?
    } else {
        compress(&body, encoding)
    };
    held.count(compressed.len());
    held.uncount(plain);
    answer.insert_header((CONTENT_ENCODING, encoding.name()));
    Ok(compressed)
}

async fn infer(
    req: HttpRequest,
    state: web::Data<State>,
    path: web::Path<ModelPath>,
    payload: web::Payload,
) -> HttpResponse {
    let started = Instant::now();
    let mut version = None;
    let answer = async {
        // The model first: an unknown model is 404 whatever the body holds.
        let served = state.model(&path.name, path.version.as_deref())?;
        version = Some(served.version.clone());
        let mut held = state.request_memory.held();
        let limit = (
            state.max_request_bytes,
            "kiln-runner serve --max-request-mib",
        );
        let body = body(&req, payload, limit, &mut held, state.client_pace).await?;
        let body = super::compression::inflated(&req, body, limit, &mut held)?;
        let (header, binary) = split_body(&req, body)?;
        let header = super::json_non_finite::rewrite_tokens(header, |bytes| {
            let what = "this request's JSON, its NaN and infinities rewritten, needs";
            held.count_within_limit(bytes, what)
        })?;
        let request = parse_request(&header)?;
        let (inputs, decoded) = inputs(&request.inputs.0, binary)?;
        let decoded = decoded + super::ort_strings::inputs_engine_bytes(&inputs);
        held.count_within_limit(decoded, super::ort_strings::DECODED_INPUTS)?;
        // From the request read: its upload is paced apart (`client_pace`), as Triton's timeout is.
        let deadline = super::request_deadline::deadline(Instant::now(), [request.timeout()?]);
        let outputs = served.infer(inputs, deadline).await?;
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
        answer.insert_header((VARY, "accept-encoding"));
        let body = encoded(&req, body, &mut held, &mut answer).await?;
        let body = HeldAnswer::new(body, held, state.client_pace);
        Ok::<_, ServeError>(answer.body(body))
    }
    .await;
    metrics::request(
        "rest",
        outcome(answer.as_ref().err()),
        version,
        started.elapsed(),
    );
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
        Some(ServeError::DeadlineExceeded(_)) => "deadline_exceeded",
        Some(ServeError::Registry(_) | ServeError::Refused(_) | ServeError::Unauthorized(_)) => {
            "error"
        }
    }
}
