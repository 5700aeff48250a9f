//! Cross-origin requests from browsers (a web UI on another origin): off unless the operator lists the
//! origins (`cors_allowed_origins`). Preflights are answered here, before authentication, as the Fetch
//! standard requires: a preflight carries no credentials.

use actix_cors::Cors;
use actix_web::http::{Method, header};
use actix_web::middleware::Condition;

/// How long a browser may reuse a preflight's answer, seconds.
const PREFLIGHT_MAX_AGE: usize = 600;

pub fn policy(origins: &[String]) -> Condition<Cors> {
    let mut cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allowed_headers([
            header::AUTHORIZATION,
            header::ACCEPT,
            header::CONTENT_TYPE,
            header::CONTENT_RANGE,
            header::RANGE,
            header::IF_MATCH,
            header::IF_NONE_MATCH,
        ])
        // What a browser page may read of an answer beyond the basics.
        .expose_headers([
            header::ETAG,
            header::CONTENT_RANGE,
            header::ACCEPT_RANGES,
            header::LOCATION,
            header::RETRY_AFTER,
            header::HeaderName::from_static("x-request-id"),
        ])
        .max_age(PREFLIGHT_MAX_AGE);
    for origin in origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    Condition::new(!origins.is_empty(), cors)
}
