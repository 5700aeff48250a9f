//! Writes a small Hugging Face checkpoint with random weights, to try kiln's pipeline without downloading
//! a model: `cargo run -p kiln-onnx --example sample_checkpoint -- bert|gpt2|llama DIR [sharded|pytorch]`.
//! `bert-base` writes BERT-base's shape (30522 tokens, 768 wide, 12 layers, 12 heads: 109 M parameters,
//! 438 MB of fp32), for measuring memory.

use kiln_onnx::sample_models;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(family), Some(dir)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: sample_checkpoint bert|gpt2|llama DIR [sharded|pytorch]");
        std::process::exit(2);
    };
    let model = match family.as_str() {
        "bert" => sample_models::bert(1000, 64, 2, 4),
        "bert-base" => sample_models::bert(30522, 768, 12, 12),
        "gpt2" => sample_models::gpt2(1000, 64, 2, 4),
        "llama" => sample_models::llama(1000, 64, 2, 4, 2),
        other => {
            eprintln!("unknown family {other:?}: bert, bert-base, gpt2 or llama");
            std::process::exit(2);
        }
    }
    .expect("random weights");
    let dir = std::path::Path::new(dir);
    let written = match args.get(3).map(String::as_str) {
        Some("sharded") => model.write_sharded(dir, 2),
        Some("pytorch") => model.write_pytorch(dir),
        _ => model.write_safetensors(dir),
    };
    written.expect("write the checkpoint");
    println!("wrote a {family} checkpoint to {}", dir.display());
}
