//! The corpus listing that `scripts/onnx_corpus.py` writes (`corpus.json`), and the stored tensors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Deserialize;

pub const FETCH_HINT: &str = "the corpus of real ONNX models is missing: run scripts/onnx-corpus.sh \
     (it fetches them with scripts/fetch-onnx-corpus.sh and runs this test), or set KILN_ONNX_CORPUS \
     to a folder that scripts/fetch-onnx-corpus.sh filled";

#[derive(Debug, Deserialize)]
pub struct Listing {
    pub onnxruntime: String,
    pub models: Vec<CorpusModel>,
    #[serde(default)]
    pub dropped: Vec<DroppedModel>,
}

/// One model of the listing (fields the tests do not use are left out; serde skips them).
#[derive(Debug, Clone, Deserialize)]
pub struct CorpusModel {
    pub id: String,
    pub package: String,
    pub producer: String,
    pub producer_version: String,
    /// The ai.onnx opset, when the model imports it.
    pub opset: Option<i64>,
    /// Every opset import, by domain (`ai.onnx` for the default one).
    #[serde(default)]
    pub opset_imports: std::collections::BTreeMap<String, i64>,
    pub model: String,
    pub inputs: String,
    pub outputs: String,
    /// Slow to evaluate in a debug build: the mutation pass does not run its mutants.
    #[serde(default)]
    pub heavy: bool,
    /// Slower still: evaluated only with `KILN_ONNX_CORPUS_SLOW=1`.
    #[serde(default)]
    pub slow: bool,
    /// Why the model cannot be run right by anyone (ORT reads past an input), when it cannot: kiln
    /// must refuse it with an error.
    #[serde(default)]
    pub malformed: Option<String>,
    /// ORT outputs that are not tensors (ZipMap's maps), so not stored and not compared.
    #[serde(default)]
    pub outputs_left_out: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct DroppedModel {
    pub id: String,
    pub package: String,
    pub ort: String,
}

impl CorpusModel {
    /// `pytorch 2.3.1`, or the producer alone when it gives no version.
    pub fn producer_label(&self) -> String {
        format!("{} {}", self.producer, self.producer_version)
            .trim()
            .to_owned()
    }

    /// The ai.onnx opset, or the imports when there is none (a scikit-learn model imports only
    /// ai.onnx.ml).
    pub fn opset_label(&self) -> String {
        match self.opset {
            Some(opset) => opset.to_string(),
            None => self
                .opset_imports
                .iter()
                .map(|(domain, version)| format!("{domain} {version}"))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// The corpus folder: `KILN_ONNX_CORPUS`, else `target/onnx-corpus` in the workspace.
pub fn corpus_dir() -> PathBuf {
    std::env::var_os("KILN_ONNX_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/onnx-corpus"))
}

/// Reads the listing; panics with how to fetch the corpus when it is not there, so that a run without
/// the data can never pass.
pub fn load() -> (PathBuf, Listing) {
    let dir = corpus_dir();
    let path = dir.join("corpus.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}: {FETCH_HINT}", path.display()));
    let listing: Listing = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {e}: {FETCH_HINT}", path.display()));
    assert!(
        !listing.models.is_empty(),
        "{}: no models: {FETCH_HINT}",
        path.display()
    );
    (dir, listing)
}

/// The models to run: all, or those whose id contains `KILN_ONNX_CORPUS_FILTER`.
pub fn selected(listing: &Listing) -> Vec<CorpusModel> {
    let filter = std::env::var("KILN_ONNX_CORPUS_FILTER").unwrap_or_default();
    let models: Vec<CorpusModel> = listing
        .models
        .iter()
        .filter(|m| m.id.contains(&filter))
        .cloned()
        .collect();
    assert!(
        !models.is_empty(),
        "no corpus model matches KILN_ONNX_CORPUS_FILTER={filter:?}"
    );
    models
}

pub fn read_model(dir: &Path, model: &CorpusModel) -> Vec<u8> {
    let path = dir.join(&model.model);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}: {FETCH_HINT}", path.display()))
}

/// A stored safetensors file of named tensors.
pub fn read_tensors(dir: &Path, file: &str) -> HashMap<String, Tensor> {
    let path = dir.join(file);
    candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap_or_else(|e| panic!("{}: {e}: {FETCH_HINT}", path.display()))
}
