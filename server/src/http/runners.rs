//! The runner protocol (docs/runners.md) and the runner list.

use actix_web::web::{Data, Json, Path};
use actix_web::{HttpRequest, HttpResponse, get, post};
use kiln_core::FilePath;
use kiln_core::api::ErrorResponse;
use kiln_core::runners::{
    BenchmarkJob, BenchmarkReport, HeartbeatAck, RegisteredRunner, RunnerHeartbeat,
    RunnerRegistration, RunnerView,
};

use super::params::{RunnerFilePath, RunnerJobPath, RunnerPath};
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;
use crate::services::downloads::FileSource;

/// The runner credential's id; the access rules already refused anyone else.
fn runner_token(principal: &Principal) -> Result<String, Error> {
    match principal {
        Principal::Runner { token_id, .. } => Ok(token_id.clone()),
        _ => Err(Error::forbidden(
            "this route is for runners (an API token with the runner scope)",
        )),
    }
}

/// Register a runner: what device it measures on and with what. Needs a token with the `runner` scope.
#[utoipa::path(tag = "runners", request_body = RunnerRegistration, responses(
    (status = 201, body = RegisteredRunner),
    (status = 400, body = ErrorResponse),
    (status = 401, body = ErrorResponse),
    (status = 403, body = ErrorResponse),
))]
#[post("/runners")]
async fn register_runner(
    principal: Principal,
    services: Data<Services>,
    body: Json<RunnerRegistration>,
) -> Result<HttpResponse, Error> {
    let registered = services
        .runners
        .register(runner_token(&principal)?, body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(registered))
}

/// The runner is alive; with `job_id`, the lease on that job is extended (409 `lease_lost` when the runner
/// no longer holds it: stop working on it).
#[utoipa::path(tag = "runners", params(RunnerPath), request_body = RunnerHeartbeat, responses(
    (status = 200, body = HeartbeatAck),
    (status = 404, body = ErrorResponse),
    (status = 409, body = ErrorResponse),
))]
#[post("/runners/{runner}/heartbeat")]
async fn runner_heartbeat(
    principal: Principal,
    services: Data<Services>,
    path: Path<RunnerPath>,
    body: Json<RunnerHeartbeat>,
) -> Result<Json<HeartbeatAck>, Error> {
    let ack = services
        .runners
        .heartbeat(
            path.into_inner().runner,
            runner_token(&principal)?,
            body.into_inner().job_id,
        )
        .await?;
    Ok(Json(ack))
}

/// Claim the oldest benchmark job queued for the runner's device class: 200 with the job (leased to this
/// runner until `lease_expires_at`), or 204 when there is none.
#[utoipa::path(tag = "runners", params(RunnerPath), responses(
    (status = 200, body = BenchmarkJob),
    (status = 204, description = "No job is waiting"),
    (status = 404, body = ErrorResponse),
))]
#[post("/runners/{runner}/claim")]
async fn claim_job(
    principal: Principal,
    services: Data<Services>,
    path: Path<RunnerPath>,
) -> Result<HttpResponse, Error> {
    let job = services
        .runners
        .claim(path.into_inner().runner, runner_token(&principal)?)
        .await?;
    Ok(match job {
        Some(job) => HttpResponse::Ok().json(job),
        None => HttpResponse::NoContent().finish(),
    })
}

/// A file of the variant a held job measures (ranges supported); 409 once the lease is gone.
#[utoipa::path(tag = "runners", params(RunnerFilePath), responses(
    (status = 200, description = "The file's bytes", content_type = "application/octet-stream"),
    (status = 206, description = "The requested range", content_type = "application/octet-stream"),
    (status = 404, body = ErrorResponse),
    (status = 409, body = ErrorResponse),
))]
#[get("/runners/{runner}/jobs/{job}/files/{path:.+}")]
async fn job_file(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<RunnerFilePath>,
) -> Result<HttpResponse, Error> {
    let RunnerFilePath { runner, job, path } = path.into_inner();
    let file: FilePath = path.parse()?;
    let subject = services
        .runners
        .held_job(runner, runner_token(&principal)?, job)
        .await?;
    super::files::serve(
        &req,
        &services,
        subject.namespace,
        subject.model,
        subject.version,
        FileSource::Variant(subject.variant),
        file,
    )
    .await
}

/// Report a held job's measurements (or why the variant cannot be measured). A runner whose lease ran out
/// gets 409 `lease_lost` and nothing is recorded: another runner has the job.
#[utoipa::path(tag = "runners", params(RunnerJobPath), request_body = BenchmarkReport, responses(
    (status = 204, description = "Recorded"),
    (status = 400, body = ErrorResponse),
    (status = 404, body = ErrorResponse),
    (status = 409, body = ErrorResponse),
))]
#[post("/runners/{runner}/jobs/{job}/result")]
async fn report_result(
    principal: Principal,
    services: Data<Services>,
    path: Path<RunnerJobPath>,
    body: Json<BenchmarkReport>,
) -> Result<HttpResponse, Error> {
    let RunnerJobPath { runner, job } = path.into_inner();
    services
        .runners
        .report(runner, runner_token(&principal)?, job, body.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every registered runner with its state (idle, busy, lost) and last heartbeat. Needs a signed-in user.
#[utoipa::path(tag = "runners", responses(
    (status = 200, body = Vec<RunnerView>),
    (status = 401, body = ErrorResponse),
))]
#[get("/runners")]
async fn list_runners(services: Data<Services>) -> Result<Json<Vec<RunnerView>>, Error> {
    Ok(Json(services.runners.list().await?))
}
