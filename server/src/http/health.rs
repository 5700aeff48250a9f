use actix_web::web::Data;
use actix_web::{HttpResponse, get};
use diesel::RunQueryDsl;
use kiln_core::api::{HealthCheck, HealthResponse};

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
    let database = services
        .db
        .run(|conn| Ok(diesel::sql_query("SELECT 1").execute(conn)?))
        .await
        .map(|_| ());
    let storage = services.store.check().await;
    let checks = vec![
        HealthCheck {
            name: "database".to_owned(),
            ok: database.is_ok(),
            error: database.err().map(|e| e.to_string()),
        },
        HealthCheck {
            name: "storage".to_owned(),
            ok: storage.is_ok(),
            error: storage.err().map(|e| e.to_string()),
        },
    ];
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
