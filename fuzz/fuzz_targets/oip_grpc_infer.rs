//! Whole gRPC calls through the runner's gRPC layers and service, in process (`InProcess::grpc`): the
//! fuzzer's bytes are the call's message (or, as its first byte picks, the whole of the call's body,
//! length prefixes and all), compressed or not, in HTTP/2 data frames of a size it picks, trailers or
//! not, to the inference call or the metadata calls. Whatever comes, the call ends with OK,
//! INVALID_ARGUMENT or NOT_FOUND (never INTERNAL, a server's fault), an inference answer holds one
//! tensor's bytes for each output it describes, and once the answer is taken the call holds no memory.
#![no_main]

mod served_folder;
mod served_model;

use std::convert::Infallible;
use std::io::Write;
use std::sync::OnceLock;

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use kiln_runner::serve::in_process::InProcess;
use kiln_runner::serve::inference::ModelInferResponse;
use libfuzzer_sys::fuzz_target;
use prost::Message;

const SERVICE: &str = "/inference.GRPCInferenceService";

fn served() -> &'static (tokio::runtime::Runtime, InProcess) {
    static SERVED: OnceLock<(tokio::runtime::Runtime, InProcess)> = OnceLock::new();
    SERVED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let served = runtime.block_on(served_model::load());
        (runtime, served)
    })
}

fn compressed(message: &[u8], gzip: bool) -> Vec<u8> {
    if gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(message).expect("in memory");
        e.finish().expect("in memory")
    } else {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(message).expect("in memory");
        e.finish().expect("in memory")
    }
}

/// The call the fuzzer's bytes make: `flags` bits 0-1 the message's encoding (none, gzip, deflate, or
/// gzip named and not used), bit 2 the fuzzer's own gRPC framing of `data`, bits 3-4 the method, bit 5
/// HTTP/2 data frames of `frame_size` bytes (0: an empty frame first), bit 6 trailers after the data,
/// bit 7 `grpc-encoding: identity` in place of the encoding's name.
fn call(flags: u8, frame_size: Option<u8>, data: &[u8]) -> http::Request<tonic::body::Body> {
    let method = match (flags >> 3) & 0b11 {
        2 => "ModelMetadata",
        3 => "ModelReady",
        _ => "ModelInfer",
    };
    let mut request = http::Request::post(format!("{SERVICE}/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    let (compressed_flag, name, message) = match flags & 0b11 {
        1 => (1, Some("gzip"), compressed(data, true)),
        2 => (1, Some("deflate"), compressed(data, false)),
        // Said to be gzip, and not.
        3 => (1, Some("gzip"), data.to_vec()),
        _ => (0, None, data.to_vec()),
    };
    let name = if flags & 0b1000_0000 != 0 {
        Some("identity")
    } else {
        name
    };
    if let Some(name) = name {
        request = request.header("grpc-encoding", name);
    }
    let body = if flags & 0b100 != 0 {
        // The fuzzer's own framing: lengths that lie, several messages, a message cut short.
        data.to_vec()
    } else {
        let mut framed = vec![compressed_flag];
        framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
        framed.extend_from_slice(&message);
        framed
    };
    let body = Bytes::from(body);
    let mut frames: Vec<Frame<Bytes>> = match frame_size {
        None => vec![Frame::data(body)],
        Some(0) => vec![Frame::data(Bytes::new()), Frame::data(body)],
        Some(size) => {
            let size = usize::from(size);
            (0..body.len().div_ceil(size))
                .map(|i| Frame::data(body.slice(i * size..((i + 1) * size).min(body.len()))))
                .collect()
        }
    };
    if flags & 0b100_0000 != 0 {
        frames.push(Frame::trailers(http::HeaderMap::new()));
    }
    let frames = futures_util::stream::iter(frames.into_iter().map(Ok::<_, Infallible>));
    request
        .body(tonic::body::Body::new(StreamBody::new(frames)))
        .expect("a request")
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, message)) = data.split_first() else {
        return;
    };
    let (frame_size, message) = match (flags & 0b10_0000 != 0, message) {
        (true, [size, rest @ ..]) => (Some(*size), rest),
        _ => (None, message),
    };
    let (runtime, served) = served();
    let (status, answer) = runtime.block_on(async {
        let response = served.grpc(call(flags, frame_size, message)).await;
        let (head, body) = response.into_parts();
        let body = body.collect().await.expect("the answer's body ends");
        let trailers = body.trailers().cloned();
        // An error before any message comes as headers alone (gRPC's trailers-only answer).
        let ended = trailers.unwrap_or(head.headers);
        let status = ended
            .get("grpc-status")
            .and_then(|s| s.to_str().ok())
            .and_then(|s| s.parse::<i32>().ok())
            .expect("the call ends with a grpc-status");
        (status, body.to_bytes())
    });
    assert_eq!(
        served.memory_held(),
        0,
        "memory still held after the call (status {status})"
    );
    // OK, INVALID_ARGUMENT (the client's mistake), NOT_FOUND (another model).
    assert!(matches!(status, 0 | 3 | 5), "grpc-status {status}");
    if status == 0 && (flags >> 3) & 0b11 < 2 {
        assert!(
            answer.len() >= 5 && answer[0] == 0,
            "one uncompressed message"
        );
        let length = u32::from_be_bytes(answer[1..5].try_into().expect("four bytes")) as usize;
        assert_eq!(
            length,
            answer.len() - 5,
            "the frame holds the whole message"
        );
        let response = ModelInferResponse::decode(&answer[5..]).expect("the answer decodes");
        assert_eq!(response.model_name, served_model::NAME);
        assert_eq!(response.outputs.len(), response.raw_output_contents.len());
        for (output, raw) in response.outputs.iter().zip(&response.raw_output_contents) {
            let elements: i64 = output.shape.iter().product();
            let size = match output.datatype.as_str() {
                "FP32" | "INT32" => 4,
                "BOOL" | "UINT8" => 1,
                "FP16" => 2,
                "INT64" => 8,
                "BYTES" => continue,
                other => panic!("output {} of datatype {other}", output.name),
            };
            assert_eq!(raw.len() as i64, elements * size, "output {}", output.name);
        }
    }
});
