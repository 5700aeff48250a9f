use thiserror::Error;

/// Why a file was refused, in words a user can act on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ScanError {
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
    #[error("i/o error while scanning: {0}")]
    Io(String),
}

impl From<std::io::Error> for ScanError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ScanError::Truncated(e.to_string())
        } else {
            ScanError::Io(e.to_string())
        }
    }
}
