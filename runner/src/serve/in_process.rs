//! The runner's two front ends on one served model, in this process and without sockets: the REST app
//! and the gRPC service stack that [`super::run`] binds to its listeners, called request by request. For
//! the fuzzers (`fuzz/fuzz_targets/oip_*.rs`), which send whole requests through every layer a client's
//! request passes once it is off the socket: its memory held, its body inflated, its message parsed, its
//! inputs checked, batched, run on the engine and answered, and its memory given back.

use std::sync::Arc;

use actix_web::App;
use actix_web::body::BoxBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use clap::{Args, FromArgMatches};
use tower_layer::Layer;
use tower_service::Service;

use super::{ServeArgs, State, grpc, loader, metrics, rest};

/// A model loaded as `kiln-runner serve --model-dir` loads it, served to callers in this process.
pub struct InProcess {
    state: Arc<State>,
}

impl InProcess {
    /// Loads what `kiln-runner serve ARGS` would serve: `--model-dir DIR` and any of its other flags.
    /// Nothing listens, nothing follows a registry, and the heaps are not trimmed when quiet.
    pub async fn load(args: &[&str]) -> Result<Self, String> {
        let command =
            ServeArgs::augment_args(clap::Command::new("kiln-runner serve").no_binary_name(true));
        let args = command
            .try_get_matches_from(args)
            .and_then(|matches| ServeArgs::from_arg_matches(&matches))
            .map_err(|e| e.to_string())?;
        let Some(dir) = &args.model_dir else {
            return Err("in process, kiln-runner serves a folder: give --model-dir DIR".to_owned());
        };
        // The recorder first, as `run` installs it: the batcher's metrics are registered as it starts.
        metrics::handle();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let loader = loader::Loader::new(&args, cores)?;
        let served = Arc::new(loader.load_folder(dir, &args.model_version).await?);
        let name = args.name.clone().unwrap_or_else(|| "model".to_owned());
        Ok(Self {
            state: Arc::new(State::new(name, &args, &loader, served)),
        })
    }

    /// The REST API, for `actix_web::test::init_service` (no webhook route: nothing is followed).
    pub fn rest_app(
        &self,
    ) -> App<
        impl ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = ServiceResponse<BoxBody>,
            Error = actix_web::Error,
            InitError = (),
        > + use<>,
    > {
        rest::app(self.state.clone(), metrics::handle(), None)
    }

    /// One gRPC call, as HTTP/2 hands it to the server's layers (path, headers, the body's frames); its
    /// answer carries the call's status as on the wire: in the trailers after its message, or in the
    /// headers of an answer that holds none (gRPC's trailers-only answer, as errors come).
    pub async fn grpc(
        &self,
        request: http::Request<tonic::body::Body>,
    ) -> http::Response<tonic::body::Body> {
        let mut service = grpc::call_layers(&self.state).layer(grpc::service(self.state.clone()));
        // The generated service is always ready: its `poll_ready` is `Ready(Ok(()))`.
        match service.call(request).await {
            Ok(response) => response.map(tonic::body::Body::new),
            Err(never) => match never {},
        }
    }

    /// What the requests in flight hold now (`--max-in-flight-mib`): 0 once every answer has been taken
    /// or dropped, whatever the requests were.
    pub fn memory_held(&self) -> u64 {
        self.state.request_memory.used()
    }
}

#[cfg(test)]
mod tests {
    use actix_web::test::{TestRequest, call_service, init_service, read_body};
    use http_body_util::BodyExt;
    use prost::Message;

    use kiln_onnx::graph_builder::{DimSpec, GraphBuilder, attr_int};
    use kiln_onnx::proto::tensor_proto::DataType;

    use super::*;
    use crate::serve::inference::model_infer_request::InferInputTensor;
    use crate::serve::inference::{ModelInferRequest, ModelInferResponse};

    async fn served(dir: &std::path::Path) -> InProcess {
        let model = kiln_onnx::sample_models::mlp_graph(false);
        std::fs::write(dir.join("model.onnx"), model.encode_to_vec()).unwrap();
        let dir = dir.to_str().unwrap();
        InProcess::load(&[
            "--model-dir",
            dir,
            "--engine",
            "kiln",
            "--batch-delay-us",
            "0",
        ])
        .await
        .unwrap()
    }

    #[actix_web::test]
    async fn a_rest_request_is_answered_and_gives_back_its_memory() {
        let dir = tempfile::tempdir().unwrap();
        let served = served(dir.path()).await;
        let app = init_service(served.rest_app()).await;
        let body = serde_json::json!({"inputs": [
            {"name": "x", "shape": [2, 8], "datatype": "FP32", "data": vec![0.5; 16]}
        ]});
        let request = TestRequest::post()
            .uri("/v2/models/model/infer")
            .set_json(&body)
            .to_request();
        let response = call_service(&app, request).await;
        assert_eq!(response.status(), 200);
        let answer: serde_json::Value = serde_json::from_slice(&read_body(response).await).unwrap();
        assert_eq!(answer["outputs"][0]["shape"], serde_json::json!([2, 4]));
        assert_eq!(served.memory_held(), 0);
        let request = TestRequest::post()
            .uri("/v2/models/model/infer")
            .set_payload(
                r#"{"inputs": [{"name": "x", "shape": [1, 7], "datatype": "FP32", "data": [1]}]}"#,
            )
            .to_request();
        let response = call_service(&app, request).await;
        assert_eq!(response.status(), 400);
        assert_eq!(served.memory_held(), 0);
    }

    /// A ModelInfer call of `message`; `encoding` is the call's grpc-encoding: its message is compressed
    /// (and flagged) when that is gzip, flagged alone when it is identity, which compresses nothing.
    fn infer_call(
        message: &ModelInferRequest,
        encoding: Option<&str>,
    ) -> http::Request<tonic::body::Body> {
        let mut message = message.encode_to_vec();
        if encoding == Some("gzip") {
            use std::io::Write;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            encoder.write_all(&message).unwrap();
            message = encoder.finish().unwrap();
        }
        let mut framed = vec![u8::from(encoding.is_some())];
        framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
        framed.extend_from_slice(&message);
        let request = http::Request::post("/inference.GRPCInferenceService/ModelInfer")
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        let request = match encoding {
            Some(name) => request.header("grpc-encoding", name),
            None => request,
        };
        request
            .body(tonic::body::Body::new(http_body_util::Full::new(
                bytes::Bytes::from(framed),
            )))
            .unwrap()
    }

    /// A call's grpc-status and the message its answer holds (empty for an error).
    async fn status_and_message(
        response: http::Response<tonic::body::Body>,
    ) -> (String, bytes::Bytes) {
        let (head, body) = response.into_parts();
        let collected = body.collect().await.unwrap();
        // An error before any message comes as headers alone (gRPC's trailers-only answer).
        let ended = collected.trailers().cloned().unwrap_or(head.headers);
        let status = ended["grpc-status"].to_str().unwrap().to_owned();
        (status, collected.to_bytes())
    }

    /// A request for the model named `model` of one input with its raw contents.
    fn raw_request(name: &str, datatype: &str, shape: Vec<i64>, raw: Vec<u8>) -> ModelInferRequest {
        ModelInferRequest {
            model_name: "model".into(),
            inputs: vec![InferInputTensor {
                name: name.into(),
                datatype: datatype.into(),
                shape,
                ..Default::default()
            }],
            raw_input_contents: vec![raw.into()],
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn grpc_calls_are_answered_with_their_status_and_a_compressed_one_decoded() {
        let dir = tempfile::tempdir().unwrap();
        let served = served(dir.path()).await;
        let input = |shape, raw| raw_request("x", "FP32", shape, raw);
        // A compressed message is inflated once, by the layer, and tonic decodes what it passes on; one
        // flagged compressed under identity is the client's mistake (tonic alone: INTERNAL).
        for (message, encoding, status) in [
            (input(vec![1, 8], vec![0; 32]), None, "0"),
            (input(vec![1, 8], vec![0; 31]), None, "3"),
            (input(vec![2, 8], vec![0; 64]), Some("gzip"), "0"),
            (input(vec![1, 8], vec![0; 32]), Some("identity"), "3"),
        ] {
            let response = served.grpc(infer_call(&message, encoding)).await;
            let (ended, _) = status_and_message(response).await;
            assert_eq!(ended, status);
            assert_eq!(served.memory_held(), 0);
        }
    }

    #[tokio::test]
    async fn a_grpc_answer_larger_than_the_request_limit_is_sent_whole() {
        // FP16 in, FP32 out: 700 kB asked for under --max-request-mib 1, 1.4 MB answered. (The answer was
        // held to the request's limit: OUT_OF_RANGE, "encoded message length too large".)
        let dir = tempfile::tempdir().unwrap();
        let mut g = GraphBuilder::new();
        let half = g.input("half", DataType::Float16, &[DimSpec::Named("batch")]);
        let to_float = vec![attr_int("to", DataType::Float as i64)];
        g.op_into("Cast", &[&half], to_float, "widened");
        g.output("widened", DataType::Float, &[DimSpec::Named("batch")]);
        let model = g.finish("widening", 17, vec![]).encode_to_vec();
        std::fs::write(dir.path().join("model.onnx"), model).unwrap();
        let served = InProcess::load(&[
            "--model-dir",
            dir.path().to_str().unwrap(),
            "--engine",
            "kiln",
            "--max-request-mib",
            "1",
        ])
        .await
        .unwrap();
        let rows = 350_000;
        let one = half::f16::from_f32(1.5).to_le_bytes();
        let message = raw_request("half", "FP16", vec![rows as i64], one.repeat(rows));
        let (status, answer) =
            status_and_message(served.grpc(infer_call(&message, None)).await).await;
        assert_eq!(status, "0");
        let answer = ModelInferResponse::decode(&answer[5..]).unwrap();
        assert_eq!(
            answer.raw_output_contents[0],
            1.5f32.to_le_bytes().repeat(rows)
        );
        assert_eq!(served.memory_held(), 0);
    }
}
