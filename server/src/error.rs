//! The server's one error type, and the one place it becomes an HTTP response.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use kiln_core::CoreError;
use kiln_core::api::{ErrorBody, ErrorResponse};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    InvalidName(#[from] CoreError),
    #[error("{message}")]
    BadRequest {
        code: &'static str,
        message: String,
        details: Option<Value>,
    },
    #[error("{message}")]
    Unauthorized { message: String },
    #[error("{message}")]
    Forbidden { message: String },
    #[error("{method} is not allowed on this route")]
    MethodNotAllowed { method: String },
    #[error("too many requests; retry in {retry_after} s")]
    TooManyRequests { retry_after: u64 },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Option<Value>,
    },
    #[error("{message}")]
    PayloadTooLarge { message: String },
    #[error("range not satisfiable for a {size}-byte file")]
    RangeNotSatisfiable { size: i64 },
    #[error("database error: {0}")]
    Database(#[from] diesel::result::Error),
    #[error("database unavailable: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    #[error("object store error: {0}")]
    Storage(#[from] object_store::Error),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Startup(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Error::BadRequest {
            code,
            message: message.into(),
            details: None,
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
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

    fn code(&self) -> &'static str {
        match self {
            Error::InvalidName(CoreError::InvalidPath { .. }) => "invalid_path",
            Error::InvalidName(CoreError::InvalidDigest { .. }) => "invalid_digest",
            Error::InvalidName(_) => "invalid_name",
            Error::BadRequest { code, .. } | Error::Conflict { code, .. } => code,
            Error::Unauthorized { .. } => "unauthorized",
            Error::Forbidden { .. } => "forbidden",
            Error::TooManyRequests { .. } => "rate_limited",
            Error::MethodNotAllowed { .. } => "method_not_allowed",
            Error::NotFound { .. } => "not_found",
            Error::PayloadTooLarge { .. } => "payload_too_large",
            Error::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            Error::Pool(_) => "unavailable",
            Error::Database(_)
            | Error::Storage(_)
            | Error::Io(_)
            | Error::Startup(_)
            | Error::Internal(_) => "internal",
        }
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
            Error::Conflict { .. } => StatusCode::CONFLICT,
            Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Error::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Error::Pool(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Database(_)
            | Error::Storage(_)
            | Error::Io(_)
            | Error::Startup(_)
            | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let message = if status.is_server_error() {
            // Internals (SQL, bucket names, paths) stay in the log, tied to the request id.
            tracing::error!(error = %self, "request failed");
            match self {
                Error::Pool(_) => "the database is unavailable; retry shortly".to_owned(),
                _ => {
                    "internal server error; the server log has the details under this request's id"
                        .to_owned()
                }
            }
        } else {
            self.to_string()
        };
        let details = match self {
            Error::BadRequest { details, .. } | Error::Conflict { details, .. } => details.clone(),
            Error::RangeNotSatisfiable { size } => Some(serde_json::json!({ "size": size })),
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
        if let Error::TooManyRequests { retry_after } = self {
            response.insert_header((header::RETRY_AFTER, retry_after.to_string()));
        }
        if let Error::Pool(_) = self {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        response.json(ErrorResponse {
            error: ErrorBody {
                code: self.code().to_owned(),
                message,
                details,
            },
        })
    }
}
