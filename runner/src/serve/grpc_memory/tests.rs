//! `grpc_memory`'s layer: admission of a call's message as its frames come, its decoded size counted
//! (inflated first when compressed), the client's pace, and the answer held until taken.

use super::super::client_pace::SLICE;
use super::super::grpc::inference::ModelInferRequest;
use super::*;
use std::time::Duration;

fn request(max_message: usize) -> HeldRequest {
    HeldRequest {
        inner: tonic::body::Body::empty(),
        held: SharedHeld(Arc::new(Mutex::new(RequestMemory::new(None).held()))),
        max_message,
        encoding: None,
        inference: false,
        prefix: Vec::new(),
        received: 0,
        announced: 0,
        admitted: 0,
        waiting: None,
        clock: None,
        deadline: None,
        counted: None,
        gathered: None,
        passing: VecDeque::new(),
    }
}

/// A peer's body: these frames, then nothing more (`stalls`: the stream left open) or its end.
struct Scripted {
    frames: std::collections::VecDeque<Frame<Bytes>>,
    stalls: bool,
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        match self.frames.pop_front() {
            Some(frame) => Poll::Ready(Some(Ok(frame))),
            None if self.stalls => Poll::Pending,
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.frames.is_empty() && !self.stalls
    }
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_sending_is_refused_at_its_pace_s_deadline_and_frees_its_hold() {
    let memory = RequestMemory::new(Some(1 << 20));
    // A 100 KiB message announced; 10 KiB of it sent, at a pace of 2 s plus a second a KiB.
    let mut first = vec![0, 0, 1, 144, 0];
    first.resize(10 << 10, 7);
    let mut body = HeldRequest {
        inner: tonic::body::Body::new(Scripted {
            frames: [Frame::data(first.into())].into(),
            stalls: true,
        }),
        held: SharedHeld(Arc::new(Mutex::new(memory.held()))),
        clock: Pace::new(2.0, 1).map(Pace::start),
        ..request(1 << 20)
    };
    let started = Instant::now();
    let first = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
    assert!(matches!(first, Some(Ok(_))));
    assert_eq!(memory.used(), PREFIX as u64 + (100 << 10));
    let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
    let refused = next.unwrap().unwrap_err();
    assert_eq!(refused.code(), tonic::Code::DeadlineExceeded, "{refused:?}");
    assert!(
        refused.message().contains("--client-timeout-s"),
        "{refused:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_secs(12));
    drop(body);
    assert_eq!(memory.used(), 0);
}

/// An inference call's body of `message` (gRPC-framed) in frames of `frame` bytes, with `memory`.
fn inference(memory: &RequestMemory, message: &ModelInferRequest, frame: usize) -> HeldRequest {
    framed(memory, prost::Message::encode_to_vec(message), None, frame)
}

/// An inference call's body of `message` (compressed with `encoding`, its flag set), in frames of `frame`.
fn framed(
    memory: &RequestMemory,
    message: Vec<u8>,
    encoding: Option<Encoding>,
    frame: usize,
) -> HeldRequest {
    let mut framed = vec![u8::from(encoding.is_some())];
    framed.extend((message.len() as u32).to_be_bytes());
    framed.extend(message);
    HeldRequest {
        inner: tonic::body::Body::new(Scripted {
            frames: framed
                .chunks(frame)
                .map(|c| Frame::data(Bytes::copy_from_slice(c)))
                .collect(),
            stalls: false,
        }),
        held: SharedHeld(Arc::new(Mutex::new(memory.held()))),
        counted: Some(Instant::now()),
        gathered: Some(Vec::new()),
        encoding,
        inference: true,
        ..request(1 << 20)
    }
}

/// The call of `message` (compressed with `encoding`) refused INVALID_ARGUMENT, its text holding `says`.
async fn refused_saying(
    memory: &RequestMemory,
    message: Vec<u8>,
    encoding: Option<Encoding>,
    says: &str,
) {
    let refused = frames(&mut framed(memory, message, encoding, 16 << 10)).await;
    let refused = refused.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(refused.message().contains(says), "{refused:?}");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn a_compressed_message_is_counted_inflated_and_decoded_and_passed_on_inflated() {
    let memory = RequestMemory::new(Some(4 << 20));
    let message = ModelInferRequest {
        model_name: "m".into(),
        raw_input_contents: vec![Bytes::from(vec![3u8; 400 << 10])],
        ..Default::default()
    };
    let compressed = gzip(&prost::Message::encode_to_vec(&message));
    let mut body = framed(&memory, compressed.clone(), Some(Encoding::Gzip), 1 << 10);
    let frames = frames(&mut body).await.unwrap().concat();
    // Inflated once, here: tonic reads a message marked uncompressed.
    let encoded = prost::Message::encode_to_vec(&message);
    assert_eq!(frames[0], 0, "the message is marked uncompressed");
    assert_eq!(
        u32::from_be_bytes(frames[1..PREFIX].try_into().unwrap()) as usize,
        encoded.len()
    );
    assert!(
        frames[PREFIX..] == encoded[..],
        "tonic gets the message inflated"
    );
    // The wire's bytes, and the inflated message (raw contents decode as slices of it).
    let counted = memory.used() as usize;
    let inflated = prost::Message::encoded_len(&message);
    assert!(counted >= compressed.len() + inflated, "{counted}");
}

#[tokio::test]
async fn compression_neither_hides_a_message_s_decoded_size_nor_inflates_past_the_limit() {
    let memory = RequestMemory::new(Some(4 << 20));
    // 200,000 empty input tensors: 400 kB inflated, 425 bytes compressed, tens of MB decoded.
    let many = ModelInferRequest {
        inputs: vec![Default::default(); 200_000],
        ..Default::default()
    };
    let compressed = gzip(&prost::Message::encode_to_vec(&many));
    assert!(compressed.len() < 8 << 10, "{}", compressed.len());
    refused_saying(
        &memory,
        compressed,
        Some(Encoding::Gzip),
        "--max-in-flight-mib",
    )
    .await;
    // A bomb: 64 MiB of zeros in a field, past the 1 MiB message limit once inflated.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    refused_saying(&memory, bomb, Some(Encoding::Gzip), "--max-request-mib").await;
    let garbage = vec![7; 64];
    refused_saying(
        &memory,
        garbage,
        Some(Encoding::Deflate),
        "not valid deflate data",
    )
    .await;
    assert_eq!(memory.used(), 0);
}

async fn frames(body: &mut HeldRequest) -> Result<Vec<Bytes>, Status> {
    let mut frames = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await {
        frames.push(frame?.into_data().unwrap());
    }
    Ok(frames)
}

#[tokio::test]
async fn an_inference_message_is_passed_on_whole_as_it_came_with_its_decoded_size_counted() {
    let memory = RequestMemory::new(Some(1 << 20));
    let message = ModelInferRequest {
        model_name: "m".into(),
        raw_input_contents: vec![Bytes::from(vec![3u8; 40 << 10])],
        ..Default::default()
    };
    let mut body = inference(&memory, &message, 16 << 10);
    let frames = frames(&mut body).await.unwrap();
    assert_eq!(frames.len(), 3);
    assert_eq!(
        frames.concat().len(),
        PREFIX + prost::Message::encoded_len(&message)
    );
    let counted = memory.used() as usize - frames.concat().len();
    assert!((100..1024).contains(&counted), "{counted}");
}

#[tokio::test]
async fn a_message_that_decodes_past_the_whole_limit_is_refused_before_tonic_decodes_it() {
    let memory = RequestMemory::new(Some(1 << 20));
    // 20,000 empty input tensors: 40 kB on the wire, several MB decoded.
    let message = ModelInferRequest {
        inputs: vec![Default::default(); 20_000],
        ..Default::default()
    };
    let mut body = inference(&memory, &message, 16 << 10);
    let refused = frames(&mut body).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("--max-in-flight-mib"),
        "{refused:?}"
    );
    drop(body);
    assert_eq!(memory.used(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_answer_dropped_for_a_slow_client_ends_in_an_error_not_in_its_trailers() {
    let memory = RequestMemory::new(Some(1 << 20));
    let mut held = memory.held();
    held.count(300 << 10);
    let mut body = HeldResponse {
        // tonic's answer: one data frame, then trailers saying all went well.
        inner: Scripted {
            frames: [
                Frame::data(vec![1u8; 200 << 10].into()),
                Frame::trailers(http::HeaderMap::new()),
            ]
            .into(),
            stalls: false,
        },
        answer: Outgoing::new(SharedHeld(Arc::new(Mutex::new(held))), Pace::new(1.0, 1024)),
    };
    let first = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
    assert_eq!(first.unwrap().unwrap().into_data().unwrap().len(), SLICE);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(memory.used(), 0);
    let next = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
    let refused = next.unwrap().unwrap_err();
    assert_eq!(refused.code(), tonic::Code::DeadlineExceeded, "{refused:?}");
}

#[test]
fn the_first_message_is_admitted_whole_once_its_length_prefix_is_in() {
    let mut body = request(1 << 20);
    // The prefix split across frames: flag, then the length (100) and the message's first bytes.
    assert_eq!(body.needed(&[0, 0]), 2);
    assert_eq!(body.needed(&[0, 0, 100, 1, 2, 3]), 103);
    assert_eq!(body.needed(&[0; 97]), 0);
    // Past the message (a second one, which unary calls do not send): as it comes.
    assert_eq!(body.needed(&[0; 7]), 7);
}

#[test]
fn a_message_longer_than_tonic_decodes_is_admitted_only_as_it_comes() {
    let mut body = request(64);
    assert_eq!(body.needed(&[0, 0, 0, 1, 0, 9, 9]), 7);
    assert_eq!(body.needed(&[9; 10]), 10);
}

#[tokio::test]
async fn a_compressed_flag_without_an_encoding_or_a_flag_of_no_meaning_is_the_client_s_mistake() {
    // tonic answers both INTERNAL.
    let memory = RequestMemory::new(Some(4 << 20));
    // Found by the gRPC fuzzer: with a length past the size limit, the flag was left to tonic.
    for (flag, length, says) in [
        (1u8, 64u32, "names no grpc-encoding"),
        (2, 64, "compression flag is 2"),
        (1, u32::MAX, "names no grpc-encoding"),
        (24, u32::MAX, "compression flag is 24"),
        // tonic's own refusal would be OUT_OF_RANGE; REST's is a 400 naming the flag.
        (
            0,
            u32::MAX,
            "4294967295 bytes, more than the 1048576 bytes kiln-runner serve --max-request-mib",
        ),
    ] {
        let mut message = vec![flag];
        message.extend(length.to_be_bytes());
        message.extend([7u8; 64]);
        let mut body = HeldRequest {
            inner: tonic::body::Body::new(Scripted {
                frames: [Frame::data(Bytes::from(message))].into(),
                stalls: false,
            }),
            held: SharedHeld(Arc::new(Mutex::new(memory.held()))),
            counted: Some(Instant::now()),
            inference: true,
            gathered: Some(Vec::new()),
            ..request(1 << 20)
        };
        let refused = frames(&mut body).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().contains(says), "{refused:?}");
    }
    assert_eq!(memory.used(), 0);
}

#[tokio::test]
async fn frames_without_bytes_and_trailers_before_the_message_is_whole() {
    // An empty first data frame (h2 delivers them) or trailers first panicked reading the length from a
    // prefix of no bytes; trailers before the message was whole passed it on cut, for tonic's INTERNAL.
    let memory = RequestMemory::new(Some(4 << 20));
    let whole = Bytes::from_static(&[0, 0, 0, 0, 3, 10, 1, 120]);
    let trailers = || Frame::trailers(http::HeaderMap::new());
    let data = |bytes: &Bytes| Frame::data(bytes.clone());
    for (sent, refusal) in [
        (vec![Frame::data(Bytes::new())], Some("holds no message")),
        (vec![trailers()], Some("holds no message")),
        (
            vec![Frame::data(whole.slice(..3)), trailers()],
            Some("within its message's 5-byte prefix"),
        ),
        (
            vec![Frame::data(whole.slice(..6)), trailers()],
            Some("ended after 1 of its message's 3 bytes"),
        ),
        (vec![Frame::data(Bytes::new()), data(&whole)], None),
        (vec![data(&whole), trailers()], None),
    ] {
        let mut body = HeldRequest {
            inner: tonic::body::Body::new(Scripted {
                frames: sent.into(),
                stalls: false,
            }),
            held: SharedHeld(Arc::new(Mutex::new(memory.held()))),
            gathered: Some(Vec::new()),
            ..request(1 << 20)
        };
        // tonic stops reading at trailers: a refusal must come before any frame does.
        let (mut passed, mut frames_passed) = (Vec::new(), 0);
        let ended = loop {
            match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                Some(Ok(frame)) => {
                    frames_passed += 1;
                    passed.extend(frame.into_data().unwrap_or_default());
                }
                Some(Err(refused)) => break Some(refused),
                None => break None,
            }
        };
        match (refusal, ended) {
            (Some(says), Some(refused)) => {
                assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
                assert!(refused.message().contains(says), "{says}: {refused:?}");
                assert_eq!(
                    frames_passed, 0,
                    "{says}: frames went on before the refusal"
                );
            }
            (None, None) => assert_eq!(passed, whole),
            (want, got) => panic!("wanted {want:?}, got {got:?}"),
        }
    }
    assert_eq!(memory.used(), 0);
}

#[tokio::test]
async fn a_body_that_is_not_one_whole_message_is_the_client_s_mistake() {
    // Found by the gRPC fuzzer: tonic answers each INTERNAL (a server's fault), for the inference call
    // and the metadata calls alike.
    let memory = RequestMemory::new(Some(4 << 20));
    let whole = [0u8, 0, 0, 0, 3, 10, 1, 120];
    let two = [&whole[..], &whole[..]].concat();
    for inference in [true, false] {
        for (body, says) in [
            (&[][..], "holds no message"),
            (
                &whole[..3],
                "ended within its message's 5-byte prefix, after 3 bytes",
            ),
            (&whole[..7], "ended after 2 of its message's 3 bytes"),
            (
                &two[..],
                "holds more than its one message: at least 4 bytes follow it",
            ),
            (
                &two[..10],
                "holds more than its one message: at least 2 bytes follow it",
            ),
        ] {
            // An empty body as hyper gives one, over before it is read.
            let inner = match body {
                [] => tonic::body::Body::empty(),
                _ => tonic::body::Body::new(Scripted {
                    frames: body
                        .chunks(4)
                        .map(|c| Frame::data(Bytes::copy_from_slice(c)))
                        .collect(),
                    stalls: false,
                }),
            };
            let mut body = HeldRequest {
                inner,
                held: SharedHeld(Arc::new(Mutex::new(memory.held()))),
                counted: inference.then(Instant::now),
                inference,
                gathered: Some(Vec::new()),
                ..request(1 << 20)
            };
            // tonic, told the body is over, reads nothing and answers INTERNAL.
            assert!(!body.is_end_stream());
            let refused = frames(&mut body).await.unwrap_err();
            assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
            assert!(refused.message().contains(says), "{says}: {refused:?}");
        }
        let mut body = framed(&memory, vec![10, 1, 120], None, 4);
        body.counted = inference.then(Instant::now);
        body.inference = inference;
        assert_eq!(frames(&mut body).await.unwrap().concat(), whole);
    }
    assert_eq!(memory.used(), 0);
}

#[tokio::test]
async fn a_metadata_call_s_message_that_does_not_inflate_is_the_client_s_mistake() {
    // Found by the gRPC fuzzer: only the inference call's message was inflated here, and tonic answers
    // a ModelReady whose gzip is not gzip INTERNAL.
    let memory = RequestMemory::new(Some(4 << 20));
    for message in [vec![], vec![1, 2, 3]] {
        let mut body = framed(&memory, message, Some(Encoding::Gzip), 4);
        body.counted = None;
        body.inference = false;
        let refused = frames(&mut body).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    }
    let mut body = framed(&memory, gzip(b"\n\x01x"), Some(Encoding::Gzip), 4);
    body.counted = None;
    body.inference = false;
    assert!(frames(&mut body).await.is_ok());
    drop(body);
    assert_eq!(memory.used(), 0);
}
