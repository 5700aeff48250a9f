use std::path::PathBuf;

/// Everything the CLI reports to its user. Each message says what went wrong and, where it can, what to do.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(
        "cannot reach the kiln server at {server}: {reason}\n  is kiln-server running? Point the CLI at it with --server URL or KILN_SERVER"
    )]
    Unreachable { server: String, reason: String },
    #[error("{message}\n  {}", if *signed_in { "the stored token was refused: run kiln login --token TOKEN again, or set KILN_TOKEN" } else { "sign in first: kiln login --token TOKEN (or set KILN_TOKEN)" })]
    Unauthenticated { message: String, signed_in: bool },
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
        details: Option<serde_json::Value>,
    },
    #[error("unexpected answer from the server ({status}): {body}")]
    Protocol { status: u16, body: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Integrity(String),
    #[error(
        "the connection to the server broke: {0}\n  rerun the same command to continue where it stopped"
    )]
    Transfer(String),
}

impl CliError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CliError {
        let path = path.into();
        move |source| CliError::Io { path, source }
    }

    /// The API's error code, for callers that handle some codes (e.g. `blob_exists`) as outcomes.
    pub fn api_code(&self) -> Option<kiln_core::ErrorCode> {
        match self {
            CliError::Api { code, .. } => code.parse().ok(),
            _ => None,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Api { status: 404, .. } => 4,
            CliError::Unauthenticated { .. } | CliError::Api { status: 403, .. } => 3,
            CliError::Integrity(_) => 5,
            _ => 1,
        }
    }
}
