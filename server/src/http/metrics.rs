//! `/metrics`: the Prometheus exposition, on a listener of its own (no credential) or on the public one
//! for a scraper holding the metrics token. Outside `/api/v1`, so the API's credentials and rate limits
//! do not apply, and absent from the OpenAPI document (an operator's endpoint, not the API).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::Error;
use crate::services::Services;

/// Who may scrape on the listener these routes are mounted on.
#[derive(Clone)]
pub enum MetricsAccess {
    /// The dedicated metrics listener: anyone who can reach it.
    Open,
    /// The public listener: a bearer of this token (None: metrics are not served here).
    Token(Option<String>),
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(scrape));
}

async fn scrape(
    req: HttpRequest,
    services: web::Data<Services>,
    access: web::Data<MetricsAccess>,
) -> Result<HttpResponse, Error> {
    match access.get_ref() {
        MetricsAccess::Open => {}
        MetricsAccess::Token(None) => {
            return Err(Error::not_found(
                "metrics on this listener (set KILN_METRICS_LISTEN for a listener of their own, or \
                 KILN_METRICS_TOKEN to serve them here to a scraper holding that token)",
            ));
        }
        MetricsAccess::Token(Some(token)) => {
            let offered = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            if aws_lc_rs::constant_time::verify_slices_are_equal(
                offered.as_bytes(),
                token.as_bytes(),
            )
            .is_err()
            {
                return Err(Error::unauthorized(
                    "send the metrics token (KILN_METRICS_TOKEN) as Authorization: Bearer <token>",
                ));
            }
        }
    }
    let text = services.operations.metrics().await?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(text))
}
