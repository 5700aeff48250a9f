//! The API's error codes: one enum shared by the server (which sends them), the CLI and runners (which act
//! on some of them). On the wire each is the snake_case string in `ErrorBody::code`; the strings are a
//! contract with clients and never change once published.

use std::fmt;
use std::str::FromStr;

macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident => $text:literal,)+) => {
        /// A stable, machine-readable reason for an error answer.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, in the order declared.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code as clients see it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)+
                }
            }
        }

        impl FromStr for ErrorCode {
            type Err = UnknownErrorCode;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(ErrorCode::$variant),)+
                    other => Err(UnknownErrorCode(other.to_owned())),
                }
            }
        }
    };
}

error_codes! {
    // Names, paths and digests that do not parse.
    InvalidName => "invalid_name",
    InvalidPath => "invalid_path",
    InvalidDigest => "invalid_digest",
    // Request bodies, parameters and headers.
    InvalidJson => "invalid_json",
    InvalidContentType => "invalid_content_type",
    InvalidPathParameter => "invalid_path_parameter",
    InvalidQuery => "invalid_query",
    InvalidPage => "invalid_page",
    InvalidSize => "invalid_size",
    InvalidContentRange => "invalid_content_range",
    MissingContentRange => "missing_content_range",
    BodyTooLong => "body_too_long",
    TruncatedBody => "truncated_body",
    // Versions and their files.
    NoFiles => "no_files",
    TooManyFiles => "too_many_files",
    DuplicatePath => "duplicate_path",
    PathConflict => "path_conflict",
    InvalidDescription => "invalid_description",
    InvalidTags => "invalid_tags",
    InvalidVariant => "invalid_variant",
    InvalidTolerance => "invalid_tolerance",
    InvalidBenchmarkOptions => "invalid_benchmark_options",
    /// A lineage out of its bounds or malformed; `details.field` names the field.
    InvalidLineage => "invalid_lineage",
    /// A distillation request out of its bounds (a student shape, a step count, a device...).
    InvalidDistillation => "invalid_distillation",
    /// The distillation has finished (succeeded, failed or cancelled): it cannot be cancelled or reported.
    DistillationFinished => "distillation_finished",
    TooManyDigests => "too_many_digests",
    MissingBlobs => "missing_blobs",
    SizeMismatch => "size_mismatch",
    VersionConflict => "version_conflict",
    /// The store check found a blob of the version missing or wrong: it is not served until repaired.
    VersionDamaged => "version_damaged",
    /// The push would take the namespace past its quota (bytes or versions).
    QuotaExceeded => "quota_exceeded",
    /// Another garbage collection (on this replica or another) holds the lease.
    CollectionRunning => "collection_running",
    // Upload sessions.
    BlobExists => "blob_exists",
    OffsetMismatch => "offset_mismatch",
    /// Another request is writing the upload session (one writer at a time; a writer whose server stopped
    /// lets go within seconds): retry after `Retry-After` (also `details.retry_after`) seconds.
    UploadBusy => "upload_busy",
    ChunkNotAligned => "chunk_not_aligned",
    RangePastEnd => "range_past_end",
    UploadIncomplete => "upload_incomplete",
    DigestMismatch => "digest_mismatch",
    RangeNotSatisfiable => "range_not_satisfiable",
    PreconditionFailed => "precondition_failed",
    RequestTimeout => "request_timeout",
    PayloadTooLarge => "payload_too_large",
    // Aliases.
    VersionNotReady => "version_not_ready",
    VersionAliased => "version_aliased",
    ModelAliased => "model_aliased",
    AliasMoved => "alias_moved",
    // Accounts and namespaces.
    InvalidCredentialsRequest => "invalid_credentials_request",
    InvalidTokenName => "invalid_token_name",
    InvalidScope => "invalid_scope",
    InvalidExpiry => "invalid_expiry",
    WeakPassword => "weak_password",
    NameTaken => "name_taken",
    OwnerRole => "owner_role",
    InvalidRetention => "invalid_retention",
    InvalidQuota => "invalid_quota",
    /// A webhook URL kiln will not send to: not http(s), or a private, loopback or link-local address.
    InvalidWebhookUrl => "invalid_webhook_url",
    InvalidWebhook => "invalid_webhook",
    /// A redelivery asked while a replica is sending that very delivery.
    DeliveryInProgress => "delivery_in_progress",
    // Runners.
    InvalidRunner => "invalid_runner",
    InvalidBenchmark => "invalid_benchmark",
    /// A serving report out of its bounds (a field empty or too long, too many endpoints).
    InvalidServing => "invalid_serving",
    /// The caller no longer holds the job: its lease ran out and the job went back to the queue.
    LeaseLost => "lease_lost",
    // Access and the server itself.
    Unauthorized => "unauthorized",
    Forbidden => "forbidden",
    NotFound => "not_found",
    MethodNotAllowed => "method_not_allowed",
    /// Understood but not done: through `/v2/`, deleting what only kiln may delete (an alias's tag, a
    /// file a version holds, a manifest kiln wrote for a version).
    Unsupported => "unsupported",
    RateLimited => "rate_limited",
    Unavailable => "unavailable",
    Internal => "internal",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A code this build does not know (a newer server's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownErrorCode(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_wire_string() {
        for &code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(code));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn wire_strings_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} is listed twice");
            assert!(
                text.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{text} is not snake_case"
            );
        }
    }

    #[test]
    fn an_unknown_code_is_an_error_not_a_guess() {
        assert_eq!(
            "teapot".parse::<ErrorCode>(),
            Err(UnknownErrorCode("teapot".to_owned()))
        );
    }
}
