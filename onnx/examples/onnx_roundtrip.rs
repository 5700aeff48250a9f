//! Decodes an ONNX model with kiln's protobuf types and encodes it again: `onnx_roundtrip IN OUT`.
//! scripts/onnx-crosscheck.sh compares the bytes with what ONNX's own Python package wrote.

use prost::Message;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, output] = args.as_slice() else {
        eprintln!("usage: onnx_roundtrip IN OUT");
        std::process::exit(2);
    };
    let bytes = std::fs::read(input).expect("read the model");
    let model = kiln_onnx::proto::ModelProto::decode(bytes.as_slice()).expect("decode");
    std::fs::write(output, model.encode_to_vec()).expect("write the model");
}
