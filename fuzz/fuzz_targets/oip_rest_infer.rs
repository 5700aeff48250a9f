//! Whole REST inference requests through the runner's REST app, in process (`InProcess::rest_app`): the
//! fuzzer's bytes are up to four requests apart by `NEXT`, sent at once so that the batcher may stack
//! them, then each again alone. A request's first byte picks its body's encoding, the encodings its
//! answer may take, its path and its binary-data header; the rest is its body.
//! Whatever comes, each answer is 200, 400 or 404 (an error a JSON object naming the problem), an
//! answer's binary data is where its header says, a request answers the same beside others as alone
//! (its rows are its own, and another's refusal is not its), and once the answers are taken the
//! requests hold no memory.
#![no_main]

mod served_folder;
mod served_model;

use std::io::{Read, Write};
use std::sync::OnceLock;

use actix_web::test::{TestRequest, call_service, init_service, read_body};
use libfuzzer_sys::fuzz_target;
use tokio::sync::{mpsc, oneshot};

#[derive(Clone)]
struct Request {
    flags: u8,
    header_length: Option<u16>,
    body: Vec<u8>,
}

#[derive(PartialEq)]
struct Answer {
    status: u16,
    encoding: Option<String>,
    header_length: Option<String>,
    body: Vec<u8>,
}

/// Requests sent together, and their answers in the same order with the memory held after them all.
type Job = (Vec<Request>, oneshot::Sender<(Vec<Answer>, u64)>);

/// The app lives on a thread of its own, in actix's runtime (its test requests are not `Send`).
fn server() -> &'static mpsc::Sender<Job> {
    static SERVER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();
    SERVER.get_or_init(|| {
        let (jobs, mut incoming) = mpsc::channel::<Job>(1);
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let served = served_model::load().await;
                let app = init_service(served.rest_app()).await;
                while let Some((requests, reply)) = incoming.recv().await {
                    let answers = requests.into_iter().map(|request| async {
                        let response =
                            call_service(&app, to_test_request(request).to_request()).await;
                        let header = |name: &str| {
                            response
                                .headers()
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .map(str::to_owned)
                        };
                        let (status, encoding) =
                            (response.status().as_u16(), header("content-encoding"));
                        let header_length = header("inference-header-content-length");
                        let body = read_body(response).await.to_vec();
                        Answer {
                            status,
                            encoding,
                            header_length,
                            body,
                        }
                    });
                    let answers = futures_util::future::join_all(answers).await;
                    let _ = reply.send((answers, served.memory_held()));
                }
            });
        });
        jobs
    })
}

fn to_test_request(request: Request) -> TestRequest {
    let path = match request.flags & 0b11_0000 {
        0b01_0000 => format!("/v2/models/{}/versions/1/infer", served_model::NAME),
        0b10_0000 => "/v2/models/another/infer".to_owned(),
        _ => format!("/v2/models/{}/infer", served_model::NAME),
    };
    let mut test = TestRequest::post().uri(&path);
    let body = match request.flags & 0b11 {
        1 => {
            test = test.insert_header(("content-encoding", "gzip"));
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&request.body).expect("in memory");
            e.finish().expect("in memory")
        }
        2 => {
            test = test.insert_header(("content-encoding", "deflate"));
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&request.body).expect("in memory");
            e.finish().expect("in memory")
        }
        // Named gzip, but not: the inflation's own errors.
        3 => {
            test = test.insert_header(("content-encoding", "gzip"));
            request.body
        }
        _ => request.body,
    };
    let accept = match (request.flags >> 2) & 0b11 {
        1 => Some("gzip"),
        2 => Some("br;q=1, deflate;q=0.5, *;q=0"),
        3 => Some("identity;q=0, *"),
        _ => None,
    };
    if let Some(accept) = accept {
        test = test.insert_header(("accept-encoding", accept));
    }
    if let Some(length) = request.header_length {
        test = test.insert_header(("inference-header-content-length", length.to_string()));
    }
    test.set_payload(body)
}

fn request(data: &[u8]) -> Option<Request> {
    let (&flags, rest) = data.split_first()?;
    let (header_length, body) = match (flags & 0b100_0000 != 0, rest) {
        (true, [a, b, body @ ..]) => (Some(u16::from_le_bytes([*a, *b])), body),
        _ => (None, rest),
    };
    Some(Request {
        flags,
        header_length,
        body: body.to_vec(),
    })
}

/// What separates the requests of one input: bytes that JSON never holds and binary tensor data
/// (which may hold any byte) almost never does (the dictionary gives it to the fuzzer whole).
const NEXT: &[u8] = b"\xff\xffNEXT\xff\xff";

/// The requests of one input, apart.
fn apart(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.is_empty() {
            return None;
        }
        let at = data.windows(NEXT.len()).position(|w| w == NEXT);
        let (this, rest) = match at {
            Some(at) => (&data[..at], &data[at + NEXT.len()..]),
            None => (data, &data[data.len()..]),
        };
        data = rest;
        Some(this)
    })
}

fn answered_all(requests: Vec<Request>) -> Vec<Answer> {
    let (reply, answers) = oneshot::channel();
    server()
        .blocking_send((requests, reply))
        .expect("the app's thread runs");
    let (answers, held_after) = answers.blocking_recv().expect("the app answers");
    let statuses: Vec<_> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        held_after, 0,
        "memory still held after the answers {statuses:?}"
    );
    answers
}

fuzz_target!(|data: &[u8]| {
    let requests: Vec<Request> = apart(data).take(4).filter_map(request).collect();
    if requests.is_empty() {
        return;
    }
    let together = answered_all(requests.clone());
    for answer in &together {
        check(answer);
    }
    if requests.len() > 1 {
        for (request, together) in requests.into_iter().zip(&together) {
            let alone = answered_all(vec![request]);
            if alone[0] != *together {
                panic!(
                    "a request answered {} beside others and {} alone:\n{}\n{}",
                    together.status,
                    alone[0].status,
                    String::from_utf8_lossy(&together.body),
                    String::from_utf8_lossy(&alone[0].body)
                );
            }
        }
    }
});

fn check(answer: &Answer) {
    let body = match answer.encoding.as_deref() {
        None => answer.body.clone(),
        Some(encoding) => {
            let mut inflated = Vec::new();
            let read = match encoding {
                "gzip" => flate2::read::GzDecoder::new(&answer.body[..]).read_to_end(&mut inflated),
                "deflate" => {
                    flate2::read::ZlibDecoder::new(&answer.body[..]).read_to_end(&mut inflated)
                }
                other => panic!("an answer in {other:?}, which no request accepts"),
            };
            read.expect("the answer inflates");
            inflated
        }
    };
    match answer.status {
        200 => {
            let json_length = match &answer.header_length {
                Some(length) => length
                    .parse::<usize>()
                    .expect("a header length that is a number"),
                None => body.len(),
            };
            assert!(
                json_length <= body.len(),
                "header length {json_length} past {} bytes",
                body.len()
            );
            answered(&body[..json_length], body.len() - json_length);
        }
        400 | 404 => {
            let error: serde_json::Value = serde_json::from_slice(&body).expect("an error is JSON");
            assert!(
                error["error"].as_str().is_some_and(|e| !e.is_empty()),
                "{error}"
            );
        }
        other => panic!("status {other}: {}", String::from_utf8_lossy(&body)),
    }
}

/// An answer's JSON names the model and its outputs, and the outputs sent as binary data hold the bytes
/// that follow it. Its NaN and infinities are Triton's bare tokens, read as `null`: anything else that is
/// not JSON fails.
fn answered(json: &[u8], binary: usize) {
    let text = String::from_utf8_lossy(json);
    let answer: serde_json::Value = serde_json::from_slice(&tokens_as_null(json))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    assert_eq!(answer["model_name"], served_model::NAME, "{text}");
    let outputs = answer["outputs"].as_array().expect("outputs");
    assert!(!outputs.is_empty(), "{text}");
    let sizes: u64 = outputs
        .iter()
        .filter_map(|o| o["parameters"]["binary_data_size"].as_u64())
        .sum();
    assert_eq!(sizes, binary as u64, "{text}");
}

/// `json` with the tokens `NaN`, `Infinity` and `-Infinity` outside its strings written `null`.
fn tokens_as_null(json: &[u8]) -> Vec<u8> {
    let mut strict = Vec::with_capacity(json.len());
    let (mut at, mut in_string, mut escaped) = (0, false, false);
    while at < json.len() {
        let byte = json[at];
        if in_string {
            (in_string, escaped) = match (escaped, byte) {
                (true, _) => (true, false),
                (false, b'\\') => (true, true),
                (false, b'"') => (false, false),
                _ => (true, false),
            };
        } else if let Some(token) = [&b"-Infinity"[..], b"Infinity", b"NaN"]
            .into_iter()
            .find(|token| json[at..].starts_with(token))
        {
            strict.extend_from_slice(b"null");
            at += token.len();
            continue;
        } else {
            in_string = byte == b'"';
        }
        strict.push(byte);
        at += 1;
    }
    strict
}
