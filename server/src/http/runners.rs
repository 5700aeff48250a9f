//! The runner protocol (docs/runners.md) and the runner list.

use super::json_object::JsonObject;
use actix_web::web::{Data, Json, Path, Query};
use actix_web::{HttpRequest, HttpResponse, get, post};
use kiln_core::FilePath;
use kiln_core::api::ErrorResponse;
use kiln_core::runners::{
    BenchmarkJob, BenchmarkReport, HeartbeatAck, RegisteredRunner, RunnerHeartbeat,
    RunnerRegistration, RunnerView,
};

use super::openapi::{Binary, NotModified, PreconditionFailed, RangeNotSatisfiable};
use super::pages::page_response;
use super::params::{PageQuery, RunnerFilePath, RunnerJobPath, RunnerPath};
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;
use crate::services::downloads::FileSource;

/// The runner credential's id; the access rules already refused anyone else.
pub(super) fn runner_token(principal: &Principal) -> Result<String, Error> {
    match principal {
        Principal::Runner { token_id, .. } => Ok(token_id.clone()),
        _ => Err(Error::forbidden(
            "this route is for runners (an API token with the runner scope)",
        )),
    }
}

/// Register a runner
///
/// A runner says what device it measures on and with what engine, and gets its id and the lease timing
/// it must keep. Needs an API token with the `runner` scope.
#[utoipa::path(tag = "runners", request_body = RunnerRegistration, responses(
    (status = 201, description = "Registered: the runner's id, lease and heartbeat periods", body = RegisteredRunner),
    (status = 400, description = "A field empty or too long, or an unknown device (`invalid_runner`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
))]
#[post("/runners")]
async fn register_runner(
    principal: Principal,
    services: Data<Services>,
    body: JsonObject<RunnerRegistration>,
) -> Result<HttpResponse, Error> {
    let registered = services
        .runners
        .register(runner_token(&principal)?, body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(registered))
}

/// Send a runner heartbeat
///
/// The runner is alive; with `job_id`, the lease on that job is extended.
#[utoipa::path(tag = "runners", params(RunnerPath), request_body = RunnerHeartbeat, responses(
    (status = 200, description = "Noted; with a job, its new lease end", body = HeartbeatAck),
    (status = 404, description = "No such runner registered by this credential: register again", body = ErrorResponse),
    (status = 409, description = "The runner no longer holds the job (`lease_lost`): stop working on it", body = ErrorResponse),
))]
#[post("/runners/{runner}/heartbeat")]
async fn runner_heartbeat(
    principal: Principal,
    services: Data<Services>,
    path: Path<RunnerPath>,
    body: JsonObject<RunnerHeartbeat>,
) -> Result<Json<HeartbeatAck>, Error> {
    let ack = services
        .runners
        .heartbeat(
            path.into_inner().runner,
            runner_token(&principal)?,
            body.into_inner(),
        )
        .await?;
    Ok(Json(ack))
}

/// Claim a benchmark job
///
/// Claim the oldest benchmark job queued for the runner's device class, leased to this runner until
/// `lease_expires_at` (heartbeats extend it).
#[utoipa::path(tag = "runners", params(RunnerPath), responses(
    (status = 200, description = "A job, now leased to this runner", body = BenchmarkJob),
    (status = 204, description = "No job is waiting: ask again later"),
    (status = 404, description = "No such runner registered by this credential: register again", body = ErrorResponse),
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

/// Download a job's file
///
/// A file of the variant a held job measures, streamed, with `Range` support and the digest as `ETag`.
#[utoipa::path(tag = "runners", params(RunnerFilePath,
        ("Range" = Option<String>, Header, description = "bytes=START-END, bytes=START- or bytes=-SUFFIX")),
    responses(
        (status = 200, description = "The whole file", content_type = "application/octet-stream", body = inline(Binary),
            headers(("ETag" = String, description = "The file's sha256 digest, quoted"), ("Content-Length" = u64))),
        (status = 206, description = "The requested range of the file", content_type = "application/octet-stream", body = inline(Binary),
            headers(("Content-Range" = String, description = "bytes START-END/SIZE"), ("ETag" = String, description = "The file's sha256 digest, quoted"))),
        (status = 400, description = "The file path is not valid (`invalid_path`)", body = ErrorResponse),
        (status = 404, description = "No such runner of this credential, or no such file in the job's variant", body = ErrorResponse),
        (status = 409, description = "The runner no longer holds the job (`lease_lost`)", body = ErrorResponse),
        (status = 304, response = NotModified),
        (status = 412, response = PreconditionFailed),
        (status = 416, response = RangeNotSatisfiable),
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
    super::file_responses::serve(
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

/// Report a job's result
///
/// Report a held job's measurements, or why the variant cannot be measured on this runner. The version's
/// manifest is re-signed with the new benchmarks.
#[utoipa::path(tag = "runners", params(RunnerJobPath), request_body = BenchmarkReport, responses(
    (status = 204, description = "Recorded; the job is finished"),
    (status = 400, description = "Measurements a manifest cannot carry (`invalid_benchmark`): not 1 to 16 results, a batch size or iteration count under 1, latencies or throughput negative or not finite, or percentiles out of order, or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "No such runner registered by this credential", body = ErrorResponse),
    (status = 409, description = "The runner no longer holds the job (`lease_lost`): nothing is recorded, another runner has it", body = ErrorResponse),
))]
#[post("/runners/{runner}/jobs/{job}/result")]
async fn report_result(
    principal: Principal,
    services: Data<Services>,
    path: Path<RunnerJobPath>,
    body: JsonObject<BenchmarkReport>,
) -> Result<HttpResponse, Error> {
    let RunnerJobPath { runner, job } = path.into_inner();
    services
        .runners
        .report(runner, runner_token(&principal)?, job, body.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List runners
///
/// Registered runners by name, each with its device, state (idle, busy, lost) and last heartbeat. Needs
/// a signed-in user.
#[utoipa::path(tag = "runners", params(PageQuery), responses(
    (status = 200, description = "One page of registered runners, by name", body = Vec<RunnerView>,
        headers(("Link" = String, description = "`<URL>; rel=\"next\"`: the next page, when this one is full"))),
    (status = 400, description = "`limit` outside 1 to 1000 or a cursor this server did not give (`invalid_page`), or `limit` not a number (`invalid_query`)", body = ErrorResponse),
))]
#[get("/runners")]
async fn list_runners(
    req: HttpRequest,
    services: Data<Services>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let runners = services.runners.list(query.page()?).await?;
    Ok(page_response(&req, runners))
}
