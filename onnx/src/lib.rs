//! kiln-onnx: what kiln knows about model files. A pure library (no HTTP, no database), so every check
//! here can be tested and fuzzed on its own.
//!
//! Today: recognising a file's format by its content ([`format::detect`]), the safety scan of safetensors
//! files ([`safetensors::scan`]), of pickles ([`pickle::scan`]) and of PyTorch zip checkpoints
//! ([`pytorch::scan`]). The PyTorch pickle reader, conversion to ONNX, optimization
//! passes and variants follow (issues 4 and 5).

pub mod error;
pub mod format;
pub mod pickle;
pub mod pytorch;
pub mod safetensors;

pub use error::ScanError;
pub use format::{ModelFormat, detect};

/// Pickles written by Python itself (`testdata/make_pickle_vectors.py`), shared by the scanners' tests.
#[cfg(test)]
mod pickle_vectors {
    include!("../testdata/pickle_vectors.rs");
}
