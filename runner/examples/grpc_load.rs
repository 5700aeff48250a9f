//! A closed-loop load generator for the Open Inference Protocol's gRPC `ModelInfer`: wrk's counterpart for
//! scripts/bench-serving.sh, which measures kiln-runner serve and MLServer over both REST and gRPC.
//!
//!     cargo run --release -p kiln-runner --example grpc_load -- http://127.0.0.1:8081 MODEL REQUEST.json \
//!         --clients 8 --seconds 5
//!
//! REQUEST.json is the REST request wrk sends (`{"inputs": [{"name", "shape", "datatype", "data"}]}`); each
//! input goes as little-endian `raw_input_contents`, as tritonclient sends it. Every client has its own
//! HTTP/2 connection and sends its next request when the last was answered, as a wrk connection does; all
//! run on one thread (wrk -t1). Prints one line, as scripts/bench-serving.lua does:
//! `RESULT requests seconds p50_ms p99_ms non_ok transport_errors`.

use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use kiln_runner::serve::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use kiln_runner::serve::inference::model_infer_request::InferInputTensor;
use kiln_runner::serve::inference::{ModelInferRequest, ModelInferResponse};
use serde::Deserialize;
use tonic::transport::{Channel, Endpoint};

#[derive(Parser)]
struct Args {
    /// The server's gRPC address, e.g. http://127.0.0.1:8081.
    address: String,
    model: String,
    /// The REST request body (JSON) whose inputs are sent.
    request: std::path::PathBuf,
    #[arg(long, default_value_t = 1)]
    clients: usize,
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
}

#[derive(Deserialize)]
struct RestRequest {
    inputs: Vec<RestInput>,
}

#[derive(Deserialize)]
struct RestInput {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    data: Vec<serde_json::Number>,
}

/// The little-endian bytes of `input`'s values.
fn raw(input: &RestInput) -> Result<Vec<u8>, String> {
    let bad = |n: &serde_json::Number| format!("{}: {n} is not {}", input.name, input.datatype);
    let mut bytes = Vec::new();
    for n in &input.data {
        match input.datatype.as_str() {
            "FP32" => bytes.extend((n.as_f64().ok_or_else(|| bad(n))? as f32).to_le_bytes()),
            "FP64" => bytes.extend(n.as_f64().ok_or_else(|| bad(n))?.to_le_bytes()),
            "INT64" => bytes.extend(n.as_i64().ok_or_else(|| bad(n))?.to_le_bytes()),
            "INT32" => bytes.extend(
                i32::try_from(n.as_i64().ok_or_else(|| bad(n))?)
                    .map_err(|_| bad(n))?
                    .to_le_bytes(),
            ),
            other => {
                return Err(format!(
                    "{}: datatype {other} is not supported here",
                    input.name
                ));
            }
        }
    }
    Ok(bytes)
}

fn request(model: &str, rest: &RestRequest) -> Result<ModelInferRequest, String> {
    let mut request = ModelInferRequest {
        model_name: model.to_owned(),
        ..Default::default()
    };
    for input in &rest.inputs {
        request.raw_input_contents.push(Bytes::from(raw(input)?));
        request.inputs.push(InferInputTensor {
            name: input.name.clone(),
            datatype: input.datatype.clone(),
            shape: input.shape.clone(),
            ..Default::default()
        });
    }
    Ok(request)
}

/// What one client saw: each answered request's latency in microseconds, and the failures.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    non_ok: u64,
    transport_errors: u64,
}

async fn client(channel: Channel, request: ModelInferRequest, until: Instant) -> Tally {
    let mut client = GrpcInferenceServiceClient::new(channel)
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20);
    let mut tally = Tally::default();
    while Instant::now() < until {
        let started = Instant::now();
        match client.model_infer(request.clone()).await {
            Ok(response) => {
                let _: ModelInferResponse = response.into_inner();
                let took = started.elapsed().as_micros();
                tally
                    .latencies_us
                    .push(u32::try_from(took).unwrap_or(u32::MAX));
            }
            // A status the client made from a failed connection carries that failure as its source.
            Err(status) if std::error::Error::source(&status).is_some() => {
                tally.transport_errors += 1;
            }
            Err(_) => tally.non_ok += 1,
        }
    }
    tally
}

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_us.len() as f64).ceil() as usize;
    f64::from(sorted_us[rank.clamp(1, sorted_us.len()) - 1]) / 1000.0
}

async fn load(args: Args) -> Result<String, String> {
    let text = std::fs::read(&args.request)
        .map_err(|e| format!("cannot read {}: {e}", args.request.display()))?;
    let rest: RestRequest = serde_json::from_slice(&text).map_err(|e| {
        format!(
            "{} is not a REST inference request: {e}",
            args.request.display()
        )
    })?;
    let request = request(&args.model, &rest)?;
    let endpoint = Endpoint::from_shared(args.address.clone())
        .map_err(|e| format!("{}: {e}", args.address))?
        .tcp_nodelay(true);
    let mut channels = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        channels.push(
            endpoint
                .connect()
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", args.address))?,
        );
    }
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.seconds);
    let tasks: Vec<_> = channels
        .into_iter()
        .map(|channel| tokio::spawn(client(channel, request.clone(), until)))
        .collect();
    let mut all = Tally::default();
    for task in tasks {
        let tally = task.await.map_err(|e| format!("a client failed: {e}"))?;
        all.latencies_us.extend(tally.latencies_us);
        all.non_ok += tally.non_ok;
        all.transport_errors += tally.transport_errors;
    }
    let took = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    Ok(format!(
        "RESULT {} {took:.3} {:.3} {:.3} {} {}",
        all.latencies_us.len(),
        percentile_ms(&all.latencies_us, 50.0),
        percentile_ms(&all.latencies_us, 99.0),
        all.non_ok,
        all.transport_errors
    ))
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    match runtime.block_on(load(args)) {
        Ok(line) => println!("{line}"),
        Err(e) => {
            eprintln!("grpc_load: {e}");
            std::process::exit(1);
        }
    }
}
