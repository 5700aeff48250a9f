//! Whole inference requests, over REST or gRPC as the first byte picks, through the runner's front ends in
//! process (`InProcess`) to a model of string tensors served on ONNX Runtime: the path the other
//! fuzzers do not reach (their model runs on kiln's evaluator, which holds no strings), where `BYTES`
//! tensors are decoded from JSON, binary data or protobuf, counted at what the engine makes of them,
//! handed to ONNX Runtime and written back. Whatever comes, each answer is 200, 400 or 404 (an error a
//! JSON object naming the problem; gRPC: OK, INVALID_ARGUMENT or NOT_FOUND), an answer's tensors hold
//! as many elements as their shapes say, their values are the model's on what was sent (`text_out` the
//! strings of `text`, `same` their equality with `other`'s) wherever the request's values can be read
//! here (JSON strings, gRPC contents; not binary data), and once the answer is taken the request holds
//! no memory.
//! Needs ONNX Runtime's library: `KILN_ONNXRUNTIME_LIB` (scripts/fuzz.sh sets it).
#![no_main]

mod served_folder;

use std::io::Write;
use std::sync::OnceLock;

use actix_web::test::{TestRequest, call_service, init_service, read_body};
use bytes::Bytes;
use http_body_util::BodyExt;
use kiln_onnx::graph_builder::{DimSpec, GraphBuilder};
use kiln_onnx::proto::tensor_proto::DataType;
use kiln_runner::serve::in_process::InProcess;
use kiln_runner::serve::inference::{ModelInferRequest, ModelInferResponse};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tokio::sync::{mpsc, oneshot};

/// The served model's name in the protocol's paths.
const NAME: &str = "strings";

/// `text` and `other` (strings of a shared batch dimension) in; whether they are equal, and `text`
/// again, out.
fn model() -> kiln_onnx::proto::ModelProto {
    let mut g = GraphBuilder::new();
    let text = g.input("text", DataType::String, &[DimSpec::Named("batch")]);
    let other = g.input("other", DataType::String, &[DimSpec::Named("batch")]);
    g.op_into("Equal", &[&text, &other], vec![], "same");
    g.op_into("Identity", &[&text], vec![], "text_out");
    g.output("same", DataType::Bool, &[DimSpec::Named("batch")]);
    g.output("text_out", DataType::String, &[DimSpec::Named("batch")]);
    g.finish(NAME, 19, vec![])
}

/// Serves the model on ONNX Runtime, its library from KILN_ONNXRUNTIME_LIB as `kiln-runner serve` takes it.
async fn load() -> InProcess {
    let model = model().encode_to_vec();
    let dir = served_folder::folder(NAME, &[("model.onnx", &model)]);
    let flags = ["--engine", "ort", "--max-in-flight-mib", "16"];
    served_folder::serve(dir, NAME, &flags)
        .await
        .unwrap_or_else(|e| panic!("the fuzzed model loads (KILN_ONNXRUNTIME_LIB set?): {e}"))
}

/// One request: over REST (its body, and the binary-data header's length when there is one) or gRPC (its
/// message, gzip-compressed or not).
enum Request {
    Rest {
        header_length: Option<u16>,
        body: Vec<u8>,
    },
    Grpc {
        gzip: bool,
        message: Vec<u8>,
    },
}

/// What came back: the HTTP status or grpc-status, the body, the binary-data header's length.
struct Answer {
    status: u16,
    header_length: Option<String>,
    body: Bytes,
}

type Job = (Request, oneshot::Sender<(Answer, u64)>);

/// The app lives on a thread of its own, in actix's runtime (its test requests are not `Send`); gRPC
/// calls are driven there too.
fn server() -> &'static mpsc::Sender<Job> {
    static SERVER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (jobs, mut incoming) = mpsc::channel::<Job>(1);
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let served = load().await;
                let app = init_service(served.rest_app()).await;
                while let Some((request, reply)) = incoming.recv().await {
                    let answer = match request {
                        Request::Rest {
                            header_length,
                            body,
                        } => {
                            let mut test = TestRequest::post()
                                .uri(&format!("/v2/models/{NAME}/infer"))
                                .insert_header(("content-type", "application/json"));
                            if let Some(length) = header_length {
                                test = test.insert_header((
                                    "inference-header-content-length",
                                    length.to_string(),
                                ));
                            }
                            let response =
                                call_service(&app, test.set_payload(body).to_request()).await;
                            let header_length = response
                                .headers()
                                .get("inference-header-content-length")
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned);
                            Answer {
                                status: response.status().as_u16(),
                                header_length,
                                body: read_body(response).await,
                            }
                        }
                        Request::Grpc { gzip, message } => grpc(&served, gzip, message).await,
                    };
                    let _ = reply.send((answer, served.memory_held()));
                }
            });
        });
        jobs
    })
}

async fn grpc(served: &InProcess, gzip: bool, message: Vec<u8>) -> Answer {
    let message = if gzip {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&message).expect("in memory");
        e.finish().expect("in memory")
    } else {
        message
    };
    let mut framed = vec![u8::from(gzip)];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    let mut call = http::Request::post("/inference.GRPCInferenceService/ModelInfer")
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if gzip {
        call = call.header("grpc-encoding", "gzip");
    }
    let body = tonic::body::Body::new(http_body_util::Full::new(Bytes::from(framed)));
    let response = served.grpc(call.body(body).expect("a request")).await;
    let (head, body) = response.into_parts();
    let body = body.collect().await.expect("the answer's body ends");
    // An error before any message comes as headers alone (gRPC's trailers-only answer).
    let ended = body.trailers().cloned().unwrap_or(head.headers);
    let status = ended
        .get("grpc-status")
        .and_then(|s| s.to_str().ok())
        .and_then(|s| s.parse::<u16>().ok())
        .expect("the call ends with a grpc-status");
    Answer {
        status,
        header_length: None,
        body: body.to_bytes(),
    }
}

/// The elements of a `BYTES` tensor's bytes as the protocol lays them out (each a 4-byte little-endian
/// length, then that many bytes); `None` when they do not divide so.
fn strings_in(mut raw: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut strings = Vec::new();
    while !raw.is_empty() {
        let length = u32::from_le_bytes(raw.get(..4)?.try_into().ok()?) as usize;
        strings.push(raw.get(4..4 + length)?.to_vec());
        raw = &raw[4 + length..];
    }
    Some(strings)
}

/// What a request sent as `text` and `other`, where this target can read both (JSON strings, gRPC typed
/// or raw contents): what a 200 or OK answer must have compared and passed through.
type Sent = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// A JSON request's inputs, read as strictly as the runner reads them (a field twice is refused).
#[derive(serde::Deserialize)]
struct JsonRequest {
    inputs: Vec<JsonInput>,
}

#[derive(serde::Deserialize)]
struct JsonInput {
    name: String,
    data: serde_json::Value,
}

/// The two inputs, each named once, from `(name, elements)` pairs.
fn both(inputs: Vec<(String, Option<Vec<Vec<u8>>>)>) -> Option<Sent> {
    let one = |wanted: &str| {
        let mut named = inputs.iter().filter(|(name, _)| name == wanted);
        match (named.next(), named.next()) {
            (Some((_, elements)), None) => elements.clone(),
            _ => None,
        }
    };
    Some((one("text")?, one("other")?))
}

/// A JSON array of strings, however nested, as bytes.
fn json_strings(data: &serde_json::Value, into: &mut Vec<Vec<u8>>) -> Option<()> {
    match data {
        serde_json::Value::String(s) => into.push(s.as_bytes().to_vec()),
        serde_json::Value::Array(items) => {
            for item in items {
                json_strings(item, into)?;
            }
        }
        _ => return None,
    }
    Some(())
}

fn sent(request: &Request) -> Option<Sent> {
    match request {
        Request::Rest {
            header_length: None,
            body,
        } => {
            let request: JsonRequest = serde_json::from_slice(body).ok()?;
            let inputs = request.inputs.into_iter().map(|input| {
                let mut strings = Vec::new();
                let read = json_strings(&input.data, &mut strings).map(|()| strings);
                (input.name, read)
            });
            both(inputs.collect())
        }
        Request::Rest { .. } => None,
        Request::Grpc { message, .. } => {
            let request = ModelInferRequest::decode(&message[..]).ok()?;
            let raw = &request.raw_input_contents;
            let inputs = request.inputs.iter().enumerate().map(|(at, input)| {
                let elements = match raw.is_empty() {
                    true => input
                        .contents
                        .as_ref()
                        .map(|c| c.bytes_contents.iter().map(|b| b.to_vec()).collect()),
                    false => raw.get(at).and_then(|r| strings_in(r)),
                };
                (input.name.clone(), elements)
            });
            both(inputs.collect())
        }
    }
}

/// An output's values, once checked to hold as many elements as its shape says.
enum Values {
    Strings(Vec<Vec<u8>>),
    Bools(Vec<bool>),
}

fn values(name: &str, datatype: &str, shape: &[i64], bytes: &[u8]) -> Values {
    let values = match datatype {
        "BYTES" => Values::Strings(
            strings_in(bytes).unwrap_or_else(|| panic!("{name}: strings cut short")),
        ),
        "BOOL" => Values::Bools(bytes.iter().map(|&b| b != 0).collect()),
        other => panic!("{name} of datatype {other}"),
    };
    let held = match &values {
        Values::Strings(s) => s.len(),
        Values::Bools(b) => b.len(),
    };
    assert_eq!(
        held as i64,
        shape.iter().product::<i64>(),
        "{name}: {shape:?}"
    );
    values
}

/// The answer's outputs against what was sent: `text_out` is `text`, `same` is `text` equal to
/// `other` element by element.
fn agrees(outputs: Vec<(String, Values)>, sent: Option<&Sent>) {
    let Some((text, other)) = sent else {
        return;
    };
    for (name, values) in outputs {
        match (name.as_str(), values) {
            ("text_out", Values::Strings(out)) => assert_eq!(&out, text, "text_out is not text"),
            ("same", Values::Bools(same)) => {
                let equal: Vec<bool> = text.iter().zip(other).map(|(a, b)| a == b).collect();
                assert_eq!(same, equal, "same is not text == other");
            }
            // Classified (the classification extension takes booleans for scores): strings.
            ("same", Values::Strings(_)) => {}
            (name, _) => panic!("an output {name} of another datatype"),
        }
    }
}

fn check_rest(answer: &Answer, sent: Option<&Sent>) {
    let text = String::from_utf8_lossy(&answer.body);
    match answer.status {
        200 => {
            let json_length = answer
                .header_length
                .as_ref()
                .map_or(answer.body.len(), |l| {
                    l.parse().expect("a header length that is a number")
                });
            let (json, mut binary) = answer.body.split_at(json_length);
            let reply: serde_json::Value = serde_json::from_slice(json).expect("an answer is JSON");
            assert_eq!(reply["model_name"], NAME, "{text}");
            let mut outputs = Vec::new();
            for output in reply["outputs"].as_array().expect("outputs") {
                let name = output["name"].as_str().expect("a name");
                let datatype = output["datatype"].as_str().expect("a datatype");
                let shape: Vec<i64> =
                    serde_json::from_value(output["shape"].clone()).expect("a shape");
                let bytes = match output["parameters"]["binary_data_size"].as_u64() {
                    Some(size) => {
                        let (bytes, rest) = binary.split_at(size as usize);
                        binary = rest;
                        bytes.to_vec()
                    }
                    // The JSON form in the binary one, to be read the same way.
                    None => json_as_binary(name, &output["data"], &text),
                };
                outputs.push((name.to_owned(), values(name, datatype, &shape, &bytes)));
            }
            assert!(binary.is_empty(), "binary data past the outputs: {text}");
            agrees(outputs, sent);
        }
        400 | 404 => {
            let error: serde_json::Value =
                serde_json::from_slice(&answer.body).expect("an error is JSON");
            assert!(
                error["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{text}"
            );
        }
        other => panic!("status {other}: {text}"),
    }
}

/// An output's JSON `data` (a flat array of strings or of booleans) in the binary form.
fn json_as_binary(name: &str, data: &serde_json::Value, text: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    for item in data
        .as_array()
        .unwrap_or_else(|| panic!("{name}: data: {text}"))
    {
        match item {
            serde_json::Value::String(s) => {
                bytes.extend((s.len() as u32).to_le_bytes());
                bytes.extend(s.as_bytes());
            }
            serde_json::Value::Bool(b) => bytes.push(u8::from(*b)),
            other => panic!("{name}: an element {other}: {text}"),
        }
    }
    bytes
}

fn check_grpc(answer: &Answer, sent: Option<&Sent>) {
    // OK, INVALID_ARGUMENT (the client's mistake), NOT_FOUND (another model).
    assert!(
        matches!(answer.status, 0 | 3 | 5),
        "grpc-status {}",
        answer.status
    );
    if answer.status != 0 {
        return;
    }
    let body = &answer.body;
    assert!(body.len() >= 5 && body[0] == 0, "one uncompressed message");
    let length = u32::from_be_bytes(body[1..5].try_into().expect("four bytes")) as usize;
    assert_eq!(length, body.len() - 5, "the frame holds the whole message");
    let reply = ModelInferResponse::decode(&body[5..]).expect("the answer decodes");
    assert_eq!(reply.model_name, NAME);
    assert_eq!(reply.outputs.len(), reply.raw_output_contents.len());
    let outputs = reply.outputs.iter().zip(&reply.raw_output_contents);
    let outputs = outputs.map(|(output, raw)| {
        let values = values(&output.name, &output.datatype, &output.shape, raw);
        (output.name.clone(), values)
    });
    agrees(outputs.collect(), sent);
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let request = match (flags & 1, flags & 2 != 0, rest) {
        (0, true, [a, b, body @ ..]) => Request::Rest {
            header_length: Some(u16::from_le_bytes([*a, *b])),
            body: body.to_vec(),
        },
        (0, _, body) => Request::Rest {
            header_length: None,
            body: body.to_vec(),
        },
        (_, gzip, message) => Request::Grpc {
            gzip,
            message: message.to_vec(),
        },
    };
    let sent = sent(&request);
    let rest_call = matches!(request, Request::Rest { .. });
    let (reply, answer) = oneshot::channel();
    server()
        .blocking_send((request, reply))
        .expect("the app's thread runs");
    let (answer, held_after) = answer.blocking_recv().expect("the app answers");
    assert_eq!(
        held_after, 0,
        "memory still held after status {}",
        answer.status
    );
    match rest_call {
        true => check_rest(&answer, sent.as_ref()),
        false => check_grpc(&answer, sent.as_ref()),
    }
});
