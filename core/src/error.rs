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

impl CoreError {
    /// The API's code for this error.
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            CoreError::InvalidPath { .. } => crate::ErrorCode::InvalidPath,
            CoreError::InvalidDigest { .. } => crate::ErrorCode::InvalidDigest,
            CoreError::InvalidName { .. } | CoreError::InvalidReference { .. } => {
                crate::ErrorCode::InvalidName
            }
        }
    }

    /// The code of a `CoreError` that reached a JSON body's deserializer: serde keeps only its message
    /// (the `Display` above, followed by where in the document it was), so the message's start tells
    /// which it was.
    pub fn code_of_message(message: &str) -> Option<crate::ErrorCode> {
        if message.starts_with("invalid file path ") {
            Some(crate::ErrorCode::InvalidPath)
        } else if message.starts_with("invalid digest ") {
            Some(crate::ErrorCode::InvalidDigest)
        } else if message.starts_with("invalid model reference ") {
            Some(crate::ErrorCode::InvalidName)
        } else {
            // InvalidName's kinds are the name types' own words.
            ["namespace", "model name", "version", "alias"]
                .iter()
                .any(|kind| message.starts_with(&format!("invalid {kind} ")))
                .then_some(crate::ErrorCode::InvalidName)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::CoreError;
    use crate::{ErrorCode, FilePath, ModelName, Sha256Digest};

    #[test]
    fn a_messages_start_names_its_code() {
        let path = "C:x".parse::<FilePath>().unwrap_err();
        let name = "Bad".parse::<ModelName>().unwrap_err();
        for other in [
            "Bad".parse::<crate::NamespaceName>().unwrap_err(),
            "-1".parse::<crate::VersionName>().unwrap_err(),
            "Bad".parse::<crate::AliasName>().unwrap_err(),
        ] {
            assert_eq!(
                CoreError::code_of_message(&other.to_string()),
                Some(ErrorCode::InvalidName),
                "{other}"
            );
        }
        let digest = "sha256:x".parse::<Sha256Digest>().unwrap_err();
        for (error, code) in [
            (path, ErrorCode::InvalidPath),
            (name, ErrorCode::InvalidName),
            (digest, ErrorCode::InvalidDigest),
        ] {
            assert_eq!(error.code(), code);
            let in_json = format!("{error} at line 1 column 20");
            assert_eq!(
                CoreError::code_of_message(&in_json),
                Some(code),
                "{in_json}"
            );
        }
        assert_eq!(CoreError::code_of_message("invalid type: integer"), None);
    }
}
