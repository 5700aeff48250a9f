use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use kiln_core::api::HealthResponse;

use crate::services::Services;

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(tag = "health", responses((status = 200, body = HealthResponse)))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse {
        status: "ok".to_owned(),
        checks: Vec::new(),
    })
}

/// Readiness: the database and the blob store both answer.
#[utoipa::path(tag = "health", responses(
    (status = 200, body = HealthResponse),
    (status = 503, description = "A dependency is down", body = HealthResponse),
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
