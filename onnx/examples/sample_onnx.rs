//! Writes a small ONNX model (an MLP with random weights) as DIR/model.onnx, to try kiln without
//! downloading one: `cargo run -p kiln-onnx --example sample_onnx -- DIR [vendor-op]`. With `vendor-op`,
//! one node moves to a vendor's operator domain (`com.example.audio`), as an ONNX Runtime-optimized or
//! vendor export would: kiln stores, signs and serves it as pushed, and says it cannot validate it.

use kiln_onnx::proto::OperatorSetIdProto;
use prost::Message;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: sample_onnx DIR [vendor-op]");
        std::process::exit(2);
    };
    let mut model = kiln_onnx::sample_models::mlp_graph(false);
    match args.get(2).map(String::as_str) {
        None => {}
        Some("vendor-op") => {
            let graph = model.graph.as_mut().expect("the sample has a graph");
            graph.node[0].domain = Some("com.example.audio".to_owned());
            model.opset_import.push(OperatorSetIdProto {
                domain: Some("com.example.audio".to_owned()),
                version: Some(1),
            });
        }
        Some(other) => {
            eprintln!("unknown option {other:?}: the only one is vendor-op");
            std::process::exit(2);
        }
    }
    let dir = std::path::Path::new(dir);
    if let Err(e) = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(dir.join("model.onnx"), model.encode_to_vec()))
    {
        eprintln!("cannot write {}: {e}", dir.display());
        std::process::exit(1);
    }
    println!("wrote {}", dir.join("model.onnx").display());
}
