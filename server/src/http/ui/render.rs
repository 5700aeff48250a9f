//! Turning a template into a response: the security headers every page carries, and errors as pages.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use askama::Template;

use super::session::Visitor;
use crate::error::Error;

/// What the frame of every page needs: who is signed in, whether they administer the registry, and the
/// session's CSRF token for the sign-out form.
pub struct Layout {
    pub user: Option<String>,
    pub admin: bool,
    pub csrf: String,
}

impl Layout {
    pub fn of(visitor: &Visitor) -> Self {
        Self {
            user: visitor.name(),
            admin: visitor.is_admin(),
            csrf: visitor.csrf.clone(),
        }
    }

    pub fn signed_in(&self) -> bool {
        self.user.is_some()
    }
}

/// No script runs but kiln's own files (there are none today), no page frames these, and nothing of a
/// page leaks in the Referer of a link to another site.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     script-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn with_security_headers(mut builder: HttpResponseBuilder) -> HttpResponseBuilder {
    builder
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        // Pages show what one caller may see: never cached for another.
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        ));
    builder
}

pub fn page(template: &impl Template) -> Result<HttpResponse, PageError> {
    page_with(StatusCode::OK, template)
}

pub fn page_with(status: StatusCode, template: &impl Template) -> Result<HttpResponse, PageError> {
    let html = template
        .render()
        .map_err(|e| Error::Internal(format!("template: {e}")))?;
    Ok(with_security_headers(HttpResponse::build(status))
        .content_type("text/html; charset=utf-8")
        .body(html))
}

/// A redirect after a form (303: the browser follows with GET).
pub fn see_other(location: &str) -> HttpResponse {
    with_security_headers(HttpResponse::SeeOther())
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    heading: &'a str,
    message: String,
}

/// An error of a page, answered as a page with the error's status. A signed-out visitor asked to sign
/// in is sent to the sign-in page.
#[derive(Debug)]
pub struct PageError(pub Error);

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        PageError(e)
    }
}

impl From<kiln_core::CoreError> for PageError {
    fn from(e: kiln_core::CoreError) -> Self {
        PageError(e.into())
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        if status == StatusCode::UNAUTHORIZED {
            return see_other("/sign-in");
        }
        let heading = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            s if s.is_server_error() => "Something went wrong",
            _ => "That did not work",
        };
        let message = self.0.client_message();
        let template = ErrorPage {
            layout: Layout {
                user: None,
                admin: false,
                csrf: String::new(),
            },
            heading,
            message,
        };
        match template.render() {
            Ok(html) => with_security_headers(HttpResponse::build(status))
                .content_type("text/html; charset=utf-8")
                .body(html),
            Err(_) => HttpResponse::build(status).finish(),
        }
    }
}
