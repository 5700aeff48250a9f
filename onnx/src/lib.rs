//! kiln-onnx: what kiln knows about model files. A pure library (no HTTP, no database), so every check
//! here can be tested and fuzzed on its own.
//!
//! Today: recognising a file's format by its content ([`format::detect`]), the safety scan of safetensors
//! files ([`safetensors::scan`]), of pickles ([`pickle::scan`]) and of PyTorch zip checkpoints
//! ([`pytorch::scan`]). The PyTorch pickle reader, conversion to ONNX, optimization
//! passes and variants follow (issues 4 and 5).

pub mod checkpoint;
pub mod convert;
pub mod error;
pub mod eval;
pub mod format;
pub mod graph_builder;
pub mod inspect;
pub mod model_check;
pub mod model_writer;
pub mod optimize;
pub mod pickle;
/// The ONNX protobuf types, generated from ONNX's published `onnx-ml.proto` (IR version 14). kiln decodes
/// and writes models with these rather than candle-onnx's IR-9 types, which would drop newer fields.
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}
pub mod pytorch;
pub mod safetensors;
pub mod sample_models;
pub mod validate;
pub mod variants;

pub use error::ModelError;
pub use format::{ModelFormat, detect};

/// Pickles written by Python itself (`testdata/make_pickle_vectors.py`), shared by the scanners' tests.
#[cfg(test)]
mod pickle_vectors {
    include!("../testdata/pickle_vectors.rs");
}
