//! Conversion benchmark: a BERT-base-sized checkpoint (random weights) written as safetensors, converted to
//! ONNX and validated, as the pipeline's convert job does. Prints one table row.
//!
//!     cargo run --release -p kiln-onnx --example convert_bench [-- LAYERS]
//!     cargo run --release -p kiln-onnx --example convert_bench -- CHECKPOINT_DIR
//!
//! Given a folder, it converts the checkpoint there instead (one `llama_checkpoint` wrote).

use std::path::Path;
use std::time::Instant;

use kiln_onnx::convert::{Plan, SourceFile, convert_hf, plan};
use kiln_onnx::sample_models;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Converts the checkpoint in `dir` (out of the process's own writing), prints one table row.
fn bench(dir: &Path, label: &str, rss_before: f64) {
    let files = SourceFile::list(dir).expect("the checkpoint folder");
    let started = Instant::now();
    let Plan::HuggingFace(checkpoint) = plan(&files).expect("plan") else {
        panic!("a Hugging Face checkpoint")
    };
    let parameters = kiln_onnx::checkpoint::Checkpoint::open(&checkpoint.weights)
        .expect("open")
        .parameter_count();
    let out = tempfile::tempdir_in(dir.parent().unwrap_or(dir)).expect("temp dir");
    let converted = convert_hf(&checkpoint, out.path()).expect("conversion");
    let seconds = started.elapsed().as_secs_f64();
    let size: u64 = converted
        .files
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum();
    println!(
        "| model | parameters | ONNX bytes | convert + validate (s) | peak RSS (MiB) | rel L2 error |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {label} | {:.1} M | {:.0} MiB | {seconds:.1} | {:.0} (before converting: {rss_before:.0}) | {:.1e} |",
        parameters as f64 / 1e6,
        size as f64 / (1 << 20) as f64,
        peak_rss_mib(),
        converted.validation.rel_l2_error,
    );
}

fn main() {
    let arg = std::env::args().nth(1);
    if let Some(dir) = arg.as_deref().map(Path::new).filter(|p| p.is_dir()) {
        let config: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("config.json")).expect("config.json"))
                .expect("config.json is JSON");
        let label = format!(
            "{}, {} layers, hidden {}, {}",
            config["model_type"].as_str().unwrap_or("?"),
            config["num_hidden_layers"],
            config["hidden_size"],
            config["torch_dtype"].as_str().unwrap_or("float32"),
        );
        bench(dir, &label, peak_rss_mib());
        return;
    }
    let layers: usize = arg.and_then(|a| a.parse().ok()).unwrap_or(12);
    let dir = tempfile::tempdir().expect("temp dir");
    let sample = sample_models::bert(30522, 768, layers, 12).expect("sample model");
    sample
        .write_safetensors(dir.path())
        .expect("write checkpoint");
    drop(sample);
    let rss_before = peak_rss_mib();
    bench(
        dir.path(),
        &format!("BERT, {layers} layers, hidden 768"),
        rss_before,
    );
}
