use thiserror::Error;

/// Everything that can be wrong with a value kiln parses from a user: a name, a path, a reference, a digest.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidName {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("invalid file path {value:?}: {reason}")]
    InvalidPath { value: String, reason: &'static str },
    #[error(
        "invalid digest {value:?}: expected \"sha256:\" followed by 64 lowercase hex characters"
    )]
    InvalidDigest { value: String },
    #[error(
        "invalid model reference {value:?}: expected NAMESPACE/MODEL, NAMESPACE/MODEL:VERSION or NAMESPACE"
    )]
    InvalidReference { value: String },
}
