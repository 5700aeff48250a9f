//! The server's one error type, and the one place it becomes an HTTP response.
//!
//! Variants for failures around a request (database, store, I/O, tasks) keep their cause as the error's
//! `source`, so a log line shows the whole chain ([`Chain`]); nothing is flattened to a string before
//! this edge. Control flow between the server's own floors uses its own types (e.g. [`LeaseLost`]),
//! which become HTTP answers here and nowhere else.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use kiln_core::api::{ErrorBody, ErrorResponse};
use kiln_core::{CoreError, ErrorCode};
use serde_json::Value;

use crate::db::repos::pipeline_jobs::LeaseLost;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidName(#[from] CoreError),
    #[error("{message}")]
    BadRequest {
        code: ErrorCode,
        message: String,
        details: Option<Value>,
    },
    #[error("{message}")]
    Unauthorized { message: String },
    #[error("{message}")]
    Forbidden { message: String },
    #[error("{method} is not allowed on this route; it answers {}", allowed.join(", "))]
    MethodNotAllowed {
        method: String,
        /// What the route answers, for the `Allow` header a 405 must carry.
        allowed: Vec<&'static str>,
    },
    #[error("too many requests; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{message}")]
    Conflict {
        code: ErrorCode,
        message: String,
        details: Option<Value>,
    },
    /// Another request holds the upload session the chunk is for: the client waits `retry_after` seconds.
    #[error("{message}")]
    UploadBusy {
        message: String,
        offset: i64,
        retry_after: u64,
    },
    #[error(transparent)]
    LeaseLost(#[from] LeaseLost),
    #[error("{message}")]
    PayloadTooLarge { message: String },
    #[error("range not satisfiable for a {size}-byte file")]
    RangeNotSatisfiable { size: i64 },
    /// A request body slower than the server's minimum rate.
    #[error("{message}")]
    RequestTimeout { message: String },
    /// An `If-Match` the resource does not meet.
    #[error("{message}")]
    PreconditionFailed { message: String },
    #[error("database error")]
    Database(#[from] diesel::result::Error),
    #[error("database unavailable")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// Something the request needs is briefly unavailable (a blob collection is deleting): try again.
    #[error("{message}")]
    Busy { message: String },
    /// The push would take a namespace past its quota.
    #[error("{message}")]
    QuotaExceeded {
        message: String,
        details: serde_json::Value,
    },
    #[error("object store error")]
    Storage(#[from] object_store::Error),
    #[error("i/o error")]
    Io(#[from] std::io::Error),
    #[error("JSON that the server wrote or stored does not read back")]
    Json(#[from] serde_json::Error),
    #[error("a background task failed")]
    Task(#[from] tokio::task::JoinError),
    #[error("signing failed")]
    Signing(#[from] jsonwebtoken::errors::Error),
    #[error("{0}")]
    Startup(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn bad_request(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::BadRequest {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn conflict(code: ErrorCode, message: impl Into<String>) -> Self {
        Error::Conflict {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Error::NotFound { what: what.into() }
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Error::Unauthorized {
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::Forbidden {
            message: message.into(),
        }
    }

    /// What a client is told, in an API answer, a page or an OCI error alike: the error itself, or for a
    /// server error a line that gives nothing away, its internals (SQL, bucket names, paths) logged here,
    /// tied to the request id.
    pub fn client_message(&self) -> String {
        if !self.status_code().is_server_error() || matches!(self, Error::Busy { .. }) {
            return self.to_string();
        }
        tracing::error!(error = %self.chain(), "request failed");
        match self {
            Error::Pool(_) => "the database is unavailable; retry shortly".to_owned(),
            _ => "internal server error; the server log has the details under this request's id"
                .to_owned(),
        }
    }

    /// The error with every cause after it, for logs and job messages.
    pub fn chain(&self) -> Chain<'_> {
        Chain(self)
    }

    /// Whether the failure is around the request (database, store, a task) rather than in what was asked:
    /// worth a retry.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Database(_)
                | Error::Pool(_)
                | Error::Storage(_)
                | Error::Io(_)
                | Error::Task(_)
                | Error::Internal(_)
                | Error::Json(_)
                | Error::Signing(_)
        )
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidName(e) => e.code(),
            Error::BadRequest { code, .. } | Error::Conflict { code, .. } => *code,
            Error::UploadBusy { .. } => ErrorCode::UploadBusy,
            Error::LeaseLost(_) => ErrorCode::LeaseLost,
            Error::Unauthorized { .. } => ErrorCode::Unauthorized,
            Error::Forbidden { .. } => ErrorCode::Forbidden,
            Error::TooManyRequests { .. } => ErrorCode::RateLimited,
            Error::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Error::RangeNotSatisfiable { .. } => ErrorCode::RangeNotSatisfiable,
            Error::PreconditionFailed { .. } => ErrorCode::PreconditionFailed,
            Error::RequestTimeout { .. } => ErrorCode::RequestTimeout,
            Error::Pool(_) | Error::Busy { .. } => ErrorCode::Unavailable,
            Error::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
            Error::Database(_)
            | Error::Storage(_)
            | Error::Io(_)
            | Error::Json(_)
            | Error::Task(_)
            | Error::Signing(_)
            | Error::Startup(_)
            | Error::Internal(_) => ErrorCode::Internal,
        }
    }
}

/// Displays an error and its causes, `outer: inner: innermost`.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        match self {
            Error::InvalidName(_) | Error::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Error::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Error::Forbidden { .. } => StatusCode::FORBIDDEN,
            Error::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::Conflict { .. } | Error::UploadBusy { .. } | Error::LeaseLost(_) => {
                StatusCode::CONFLICT
            }
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            Error::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Error::Pool(_) | Error::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            // The namespace's state (its quota and usage) refuses the request, as a conflict does.
            Error::QuotaExceeded { .. } => StatusCode::CONFLICT,
            Error::Database(_)
            | Error::Storage(_)
            | Error::Io(_)
            | Error::Json(_)
            | Error::Task(_)
            | Error::Signing(_)
            | Error::Startup(_)
            | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = self.client_message();
        let details = match self {
            Error::BadRequest { details, .. } | Error::Conflict { details, .. } => details.clone(),
            Error::RangeNotSatisfiable { size } => Some(serde_json::json!({ "size": size })),
            Error::UploadBusy {
                offset,
                retry_after,
                ..
            } => Some(serde_json::json!({ "offset": offset, "retry_after": retry_after })),
            Error::QuotaExceeded { details, .. } => Some(details.clone()),
            _ => None,
        };
        let mut response = HttpResponse::build(status);
        if let Error::RangeNotSatisfiable { size } = self {
            response.insert_header((header::CONTENT_RANGE, format!("bytes */{size}")));
        }
        if let Error::Unauthorized { .. } = self {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"kiln\""),
            ));
        }
        if let Error::MethodNotAllowed { allowed, .. } = self {
            response.insert_header((header::ALLOW, allowed.join(", ")));
        }
        if let Error::RequestTimeout { .. } = self {
            // The rest of the body may still be on its way: the connection cannot be reused.
            response.insert_header((header::CONNECTION, "close"));
        }
        if let Error::TooManyRequests { retry_after } | Error::UploadBusy { retry_after, .. } = self
        {
            response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        if let Error::Pool(_) | Error::Busy { .. } = self {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        response.json(ErrorResponse {
            error: ErrorBody {
                code: self.code().as_str().to_owned(),
                message,
                details,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_names_every_cause() {
        let io = std::io::Error::other("disk on fire");
        let error = Error::from(io);
        assert_eq!(error.chain().to_string(), "i/o error: disk on fire");
    }

    #[test]
    fn a_lost_lease_is_a_conflict_with_its_code() {
        let error = Error::from(LeaseLost::runner("j1"));
        assert_eq!(error.status_code(), StatusCode::CONFLICT);
        assert_eq!(error.code(), ErrorCode::LeaseLost);
        assert!(
            error
                .to_string()
                .starts_with("this runner no longer holds job j1")
        );
    }
}
