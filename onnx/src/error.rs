use thiserror::Error;

/// Why a model was refused or could not be converted, in words a user can act on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ModelError {
    #[error("the file is truncated: {0}")]
    Truncated(String),
    #[error("the safetensors header is invalid: {0}")]
    InvalidHeader(String),
    #[error("tensor {tensor:?}: {reason}")]
    InvalidTensor { tensor: String, reason: String },
    #[error("{what} is {actual} bytes, above the limit of {limit}")]
    TooLarge {
        what: &'static str,
        actual: u64,
        limit: u64,
    },
    #[error("the archive is refused: {0}")]
    InvalidArchive(String),
    #[error("the pickle is refused: {0}")]
    UnsafePickle(String),
    #[error("the ONNX model is refused: {0}")]
    InvalidModel(String),
    #[error("unsupported format: {0}")]
    Unsupported(String),
    #[error("conversion to ONNX failed: {0}")]
    Conversion(String),
    #[error("cannot evaluate the model: {0}")]
    Evaluation(String),
    /// Operators kiln's evaluator does not implement, comma-separated.
    #[error("cannot validate: op {0} is not implemented by kiln's evaluator")]
    UnsupportedOp(String),
    #[error("the converted model does not compute what the original computes: {0}")]
    Validation(String),
    #[error("i/o error: {0}")]
    Io(String),
    /// A run's values would hold more than the limit its caller set (`eval::Session::with_memory_limit`).
    #[error("the run's tensors need {needed} bytes, more than the {limit} it may hold")]
    MemoryLimit { needed: u64, limit: u64 },
    /// The run was stopped from outside before it finished (`eval::Session::with_stop_flag`): a server's
    /// deadline for the run passed, or every client waiting for it went.
    #[error("the run was stopped before it finished")]
    Stopped,
}

impl From<std::io::Error> for ModelError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ModelError::Truncated(e.to_string())
        } else {
            ModelError::Io(e.to_string())
        }
    }
}

#[cfg(feature = "pipeline")]
impl From<candle_core::Error> for ModelError {
    fn from(e: candle_core::Error) -> Self {
        ModelError::Evaluation(e.to_string())
    }
}
