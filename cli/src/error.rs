use std::path::PathBuf;

use kiln_core::ErrorCode;

/// Everything the CLI reports to its user. Each message says what went wrong and, where it can, what to do.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(
        "cannot reach the kiln server at {server}: {reason}\n  is kiln-server running? Point the CLI at it with --server URL or KILN_SERVER; a push or pull you rerun once it answers continues where it stopped"
    )]
    Unreachable { server: String, reason: String },
    /// The server wants a credential. Its own message speaks HTTP ("send Authorization: Bearer"), so the
    /// CLI says what to run instead, keeping the server's reason only when a stored token was refused.
    #[error("{}", unauthenticated_message(message, *signed_in))]
    Unauthenticated { message: String, signed_in: bool },
    #[error("{message}{}", api_hint(code).map(|h| format!("\n  {h}")).unwrap_or_default())]
    Api {
        status: u16,
        code: String,
        message: String,
        details: Option<serde_json::Value>,
    },
    #[error(
        "the server answered something this kiln does not understand (HTTP status {status}): {body}\n  is --server (or KILN_SERVER) a kiln server, of a version this CLI knows?"
    )]
    Protocol { status: u16, body: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    /// One of the CLI's own files (credentials.json) holds something it does not accept.
    #[error("{}: {message}", path.display())]
    Config { path: PathBuf, message: String },
    /// Something the CLI looked for itself (an alias in the list the API gave) is not there.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Integrity(String),
    /// A job the command waited for (a distillation) ended without its result.
    #[error("{0}")]
    JobFailed(String),
    #[error(
        "the connection to the server broke: {0}\n  rerun the same command to continue where it stopped"
    )]
    Transfer(String),
}

/// The exit codes, for `kiln --help` and docs/cli.md; [`CliError::exit_code`] is the mapping.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  the server refused the request (e.g. a conflict), a local file could not be read or written, a
     job waited for (kiln distill --wait) failed or was cancelled, or
     the server's answer was not understood
  2  usage: the command line, or the CLI's credentials file, is wrong
  3  not signed in, the token was refused, or it may not do this
  4  not found: the namespace, model, version, alias or token does not exist (or is not visible to you)
  5  integrity: a digest, signature, expiry, subject or manifest sequence check failed
  6  try again: the server is unreachable, the connection broke, or the server is busy or failing;
     rerunning a push or pull continues where it stopped";

fn unauthenticated_message(message: &str, signed_in: bool) -> String {
    if !signed_in {
        return "this needs you to sign in: run kiln login --token TOKEN (or kiln login --username NAME), or set KILN_TOKEN".to_owned();
    }
    let speaks_http = message.contains("Authorization") || message.contains("Bearer");
    let reason = if speaks_http {
        "the token was refused"
    } else {
        message
    };
    format!(
        "{reason}\n  the stored token (or KILN_TOKEN) no longer works: run kiln login --token TOKEN again, or set KILN_TOKEN"
    )
}

/// What to run next, for the API errors where the server's message alone leaves the user guessing.
fn api_hint(code: &str) -> Option<&'static str> {
    Some(match code.parse().ok()? {
        ErrorCode::Forbidden => {
            "kiln whoami shows your scopes and roles; a namespace admin can grant a role with kiln namespace add-member NAMESPACE USER ROLE"
        }
        ErrorCode::NotFound => {
            "kiln ls NAMESPACE lists the models you can see (private models look absent to those who cannot read them)"
        }
        ErrorCode::InvalidLineage => {
            "fix that field of the --lineage file and push again; the files already uploaded are not sent twice"
        }
        ErrorCode::QuotaExceeded => {
            "kiln usage NAMESPACE shows what each model holds; nothing was uploaded"
        }
        ErrorCode::VersionDamaged => {
            "kiln show NAMESPACE/MODEL:VERSION says which blob is missing; push the same files again to restore it"
        }
        ErrorCode::CollectionRunning => "wait for the running collection, then rerun",
        ErrorCode::InvalidScope => "scopes are read, write, admin, admin:NAMESPACE and runner",
        ErrorCode::WeakPassword => "choose a password of 12 characters or more",
        ErrorCode::RateLimited => "the server is busy: wait a moment and rerun the same command",
        ErrorCode::Unavailable | ErrorCode::Internal => {
            "the server failed: rerun the same command later, or ask its operator to look at its log"
        }
        _ => return None,
    })
}

impl From<kiln_core::manifest_trust::ManifestRefused> for CliError {
    fn from(e: kiln_core::manifest_trust::ManifestRefused) -> Self {
        CliError::Integrity(e.to_string())
    }
}

impl CliError {
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> CliError {
        let path = path.into();
        move |source| CliError::Io { path, source }
    }

    /// The API's error code, for callers that handle some codes (e.g. `blob_exists`) as outcomes.
    pub fn api_code(&self) -> Option<ErrorCode> {
        match self {
            CliError::Api { code, .. } => code.parse().ok(),
            _ => None,
        }
    }

    /// The seconds the server asked to wait before trying again (`details.retry_after`), if it did.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            CliError::Api {
                details: Some(details),
                ..
            } => details.get("retry_after")?.as_u64(),
            _ => None,
        }
    }

    /// The process's exit status, as [`EXIT_CODES`] documents it.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) | CliError::Config { .. } => 2,
            CliError::Unauthenticated { .. } | CliError::Api { status: 403, .. } => 3,
            CliError::Api { status: 404, .. } | CliError::NotFound(_) => 4,
            CliError::Integrity(_) => 5,
            CliError::Unreachable { .. } | CliError::Transfer(_) => 6,
            CliError::Api { status, .. } | CliError::Protocol { status, .. }
                if *status == 429 || *status >= 500 =>
            {
                6
            }
            CliError::Api { .. }
            | CliError::Protocol { .. }
            | CliError::Io { .. }
            | CliError::JobFailed(_) => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> CliError {
        CliError::Api {
            status,
            code: code.to_owned(),
            message: "m".to_owned(),
            details: None,
        }
    }

    #[test]
    fn exit_codes_follow_the_documented_table() {
        let cases = [
            (api(409, "version_conflict"), 1),
            (CliError::Usage("u".into()), 2),
            (
                CliError::Config {
                    path: "c".into(),
                    message: "m".into(),
                },
                2,
            ),
            (
                CliError::Unauthenticated {
                    message: "m".into(),
                    signed_in: false,
                },
                3,
            ),
            (api(403, "forbidden"), 3),
            (api(404, "not_found"), 4),
            (CliError::NotFound("n".into()), 4),
            (CliError::Integrity("i".into()), 5),
            (CliError::Transfer("t".into()), 6),
            (api(503, "unavailable"), 6),
            (api(429, "rate_limited"), 6),
        ];
        for (error, code) in cases {
            assert_eq!(error.exit_code(), code, "{error:?}");
            assert!(
                EXIT_CODES.contains(&format!("\n  {code}  ")),
                "{code} is documented"
            );
        }
    }

    #[test]
    fn sign_in_messages_name_commands_not_headers() {
        let anonymous = CliError::Unauthenticated {
            message: "sign in: send Authorization: Bearer TOKEN (see `kiln login`)".into(),
            signed_in: false,
        }
        .to_string();
        assert!(
            anonymous.contains("kiln login --token TOKEN"),
            "{anonymous}"
        );
        assert!(!anonymous.contains("Bearer"), "{anonymous}");
        let refused = CliError::Unauthenticated {
            message: "token expired".into(),
            signed_in: true,
        }
        .to_string();
        assert!(refused.starts_with("token expired\n"), "{refused}");
        assert!(refused.contains("run kiln login"), "{refused}");
    }

    #[test]
    fn known_api_codes_carry_a_hint() {
        assert!(api(403, "forbidden").to_string().contains("kiln whoami"));
        assert_eq!(api(409, "version_conflict").to_string(), "m");
        assert_eq!(api(400, "some_future_code").to_string(), "m");
    }
}
