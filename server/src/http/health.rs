use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use kiln_core::api::HealthResponse;

use crate::services::Services;

/// Liveness
///
/// The process is up and serving HTTP; checks nothing else. Public.
#[utoipa::path(tag = "health", responses(
    (status = 200, description = "Alive: `{\"status\": \"ok\"}`", body = HealthResponse),
))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse {
        status: "ok".to_owned(),
        checks: Vec::new(),
    })
}

/// Readiness
///
/// Whether the database and the blob store both answer: route traffic here only when this is 200.
/// Public; the failing dependency is named, its internals stay in the server's log.
#[utoipa::path(tag = "health", responses(
    (status = 200, description = "Ready: every check passed", body = HealthResponse),
    (status = 503, description = "Not ready: a dependency is down; `checks` names it", body = HealthResponse),
))]
#[get("/readyz")]
async fn readyz(services: Data<Services>) -> HttpResponse {
    let checks = services.health.checks().await;
    let ready = checks.iter().all(|c| c.ok);
    let body = HealthResponse {
        status: if ready { "ready" } else { "unavailable" }.to_owned(),
        checks,
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
