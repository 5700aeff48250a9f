//! The web UI: pages rendered on the server from askama templates (`server/templates`, checked when the
//! crate compiles), one stylesheet embedded in the binary, no script and no CDN, so it works offline and
//! without JavaScript. Pages call the same services as the API's handlers, after the same access
//! decision (`crate::auth::policy`): a private model is as invisible here as there.
//!
//! A browser signs in with a password or an API token and keeps a session cookie (HttpOnly, SameSite,
//! Secure over TLS); every form carries the session's CSRF token. Pages carry a Content-Security-Policy
//! without inline scripts, `frame-ancestors 'none'`, `nosniff` and a same-origin Referrer-Policy.

mod account;
mod alias_page;
mod browse;
mod chart;
mod display;
mod lineage_section;
mod manage;
mod markdown;
mod model_page;
mod render;
pub mod session;
mod usage_page;
mod version_page;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};

const STYLESHEET: &str = include_str!("../../../static/kiln.css");

/// The stylesheet, cached for an hour (it changes only with the binary).
#[get("/static/kiln.css")]
async fn stylesheet() -> HttpResponse {
    render::with_security_headers(HttpResponse::Ok())
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .content_type("text/css; charset=utf-8")
        .body(STYLESHEET)
}

/// Registers every page.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(stylesheet)
        .service(browse::models_list)
        .service(browse::model_detail)
        .service(browse::version_detail)
        .service(alias_page::alias_detail)
        .service(manage::move_alias)
        .service(manage::set_visibility)
        .service(manage::runners_list)
        .service(manage::audit_list)
        .service(usage_page::namespace_usage)
        .service(account::sign_in_form)
        .service(account::sign_in)
        .service(account::sign_out)
        .service(account::tokens_list)
        .service(account::create_token)
        .service(account::revoke_token);
}
