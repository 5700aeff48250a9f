//! Generates the ONNX protobuf types from ONNX's own published schema (`proto/onnx-ml.proto`, IR version 14)
//! with protox, a protobuf compiler written in Rust, so building kiln needs no `protoc`.

fn main() {
    println!("cargo:rerun-if-changed=proto/onnx-ml.proto");
    let descriptors = protox::compile(["onnx-ml.proto"], ["proto"])
        .expect("proto/onnx-ml.proto is ONNX's published schema and compiles");
    prost_build::Config::new()
        // `bytes::Bytes` for every bytes field: decoding a model from a `Bytes` buffer then shares the
        // weights' memory instead of copying every initializer.
        .bytes(["."])
        .compile_fds(descriptors)
        .expect("prost generates Rust types for onnx-ml.proto");
}
