//! Generates the Open Inference Protocol's gRPC service (`proto/grpc_predict_v2.proto`) with protox, a
//! protobuf compiler written in Rust, and tonic: building kiln-runner needs no `protoc`.

fn main() {
    println!("cargo:rerun-if-changed=proto/grpc_predict_v2.proto");
    let descriptors = protox::compile(["grpc_predict_v2.proto"], ["proto"])
        .expect("proto/grpc_predict_v2.proto compiles");
    // The client is for examples/grpc_load.rs, the benchmark's load generator.
    tonic_prost_build::configure()
        // Tensors' raw bytes stay `Bytes`: a batch is assembled from them without another copy.
        .bytes(".inference")
        // A message that does not decode is INVALID_ARGUMENT, not tonic's INTERNAL (serve/grpc_codec.rs).
        .codec_path("crate::serve::grpc_codec::MessageCodec")
        .compile_fds(descriptors)
        .expect("tonic generates the inference service");
}
