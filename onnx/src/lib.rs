//! kiln-onnx: what kiln knows about model files. A pure library (no HTTP, no database), so every check
//! here can be tested and fuzzed on its own.
//!
//! - Format detection and safety scans: a file's format recognised by its content ([`format::detect`]),
//!   the scans of safetensors files ([`safetensors::scan`]), pickles ([`pickle::scan`]) and PyTorch zip
//!   checkpoints ([`pytorch::scan`]), one file at a time for the scan job ([`inspect`]).
//! - The evaluator: an ONNX graph interpreter on candle tensors ([`eval::Session`]).
//! - Conversion: what a version holds ([`convert::plan`]), and Hugging Face BERT, GPT-2 and Llama
//!   checkpoints ([`checkpoint`]) turned into ONNX graphs ([`convert::convert_hf`]).
//! - Optimization passes that rewrite a model in place until nothing changes ([`optimize::optimize`]).
//! - Variants: fp16, int8 weight-only and pruned copies of an optimized model ([`variants`]).
//! - Validation: a converted model or variant compared with what the original computes ([`validate`]),
//!   and the checks an ONNX model passes before it is stored ([`model_check`]).
//! - Model writing: one protobuf, or external data beside it past protobuf's size limit
//!   ([`model_writer::write`]).

#[cfg(feature = "pipeline")]
pub mod block_quant;
#[cfg(feature = "pipeline")]
pub mod checkpoint;
#[cfg(feature = "pipeline")]
pub mod convert;
#[cfg(feature = "pipeline")]
pub mod dcp_shards;
#[cfg(feature = "pipeline")]
pub mod distill;
pub mod error;
#[cfg(feature = "pipeline")]
pub mod eval;
pub mod external_data;
pub mod format;
#[cfg(feature = "pipeline")]
pub mod graph_builder;
#[cfg(feature = "pipeline")]
pub mod inspect;
pub mod model_check;
#[cfg(feature = "pipeline")]
pub mod model_writer;
#[cfg(feature = "pipeline")]
pub mod optimize;
pub mod pickle;
/// The ONNX protobuf types, generated from ONNX's published `onnx-ml.proto` (IR version 14). kiln decodes
/// and writes models with these rather than candle-onnx's IR-9 types, which would drop newer fields.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}
#[cfg(feature = "pipeline")]
pub mod pytorch;
pub mod safetensors;
#[cfg(feature = "pipeline")]
pub mod sample_models;
#[cfg(feature = "pipeline")]
pub mod validate;
#[cfg(feature = "pipeline")]
pub mod variants;

pub use error::ModelError;
pub use format::{ModelFormat, detect};

/// Pickles written by Python itself (`testdata/make_pickle_vectors.py`), shared by the scanners' tests.
#[cfg(test)]
mod pickle_vectors {
    include!("../testdata/pickle_vectors.rs");
}
