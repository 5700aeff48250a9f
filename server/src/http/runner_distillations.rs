//! The runner's side of distillation jobs (docs/runners.md, "Distillation jobs"): claim, fetch the
//! teacher's and the dataset's files, save and load the training state, upload the student's files,
//! report.

use actix_web::web::{Data, Path, Payload, Query};
use actix_web::{HttpRequest, HttpResponse, get, post, put};
use futures_util::TryStreamExt;
use kiln_core::FilePath;
use kiln_core::api::{DistillationJob, DistillationResult, ErrorResponse, FileEntry};
use serde::Deserialize;
use utoipa::IntoParams;

use super::json_object::JsonObject;
use super::openapi::{Binary, NotModified, PreconditionFailed, RangeNotSatisfiable};
use super::params::{RunnerFilePath, RunnerJobPath, RunnerPath};
use super::runners::runner_token;
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;
use crate::services::distillations::runner_side::Input;
use crate::services::downloads::FileSource;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckpointQuery {
    /// The training step the state was taken at
    pub step: u64,
}

/// Claim a distillation job
///
/// Claim the oldest distillation queued for the runner's device class (or one whose runner died: resume it
/// from `checkpoint_step`), leased to this runner until `lease_expires_at`; heartbeats extend it and carry
/// the job's progress.
#[utoipa::path(tag = "runners", params(RunnerPath), responses(
    (status = 200, description = "A job, now leased to this runner", body = DistillationJob),
    (status = 204, description = "No job is waiting: ask again later"),
    (status = 404, description = "No such runner registered by this credential: register again", body = ErrorResponse),
))]
#[post("/runners/{runner}/distillations/claim")]
async fn claim_distillation(
    principal: Principal,
    services: Data<Services>,
    path: Path<RunnerPath>,
) -> Result<HttpResponse, Error> {
    let job = services
        .distillations
        .claim(
            path.into_inner().runner,
            runner_token(&principal)?,
            services.runners.lease_until(),
        )
        .await?;
    Ok(match job {
        Some(job) => HttpResponse::Ok().json(job),
        None => HttpResponse::NoContent().finish(),
    })
}

async fn serve_input(
    req: &HttpRequest,
    principal: &Principal,
    services: &Services,
    path: RunnerFilePath,
    input: Input,
) -> Result<HttpResponse, Error> {
    let RunnerFilePath { runner, job, path } = path;
    let file: FilePath = path.parse()?;
    let subject = services
        .distillations
        .input(runner, runner_token(principal)?, job, input)
        .await?;
    super::file_responses::serve(
        req,
        services,
        subject.namespace,
        subject.model,
        subject.version,
        FileSource::Version,
        file,
    )
    .await
}

/// Download a teacher file
///
/// A file of the teacher a held distillation job trains from, streamed, with `Range` support and the
/// digest as `ETag`.
#[utoipa::path(tag = "runners", params(RunnerFilePath,
        ("Range" = Option<String>, Header, description = "bytes=START-END, bytes=START- or bytes=-SUFFIX")),
    responses(
        (status = 200, description = "The whole file", content_type = "application/octet-stream", body = inline(Binary)),
        (status = 206, description = "The requested range of the file", content_type = "application/octet-stream", body = inline(Binary)),
        (status = 400, description = "The file path is not valid (`invalid_path`)", body = ErrorResponse),
        (status = 404, description = "No such runner of this credential, or no such file in the teacher", body = ErrorResponse),
        (status = 409, description = "The runner no longer holds the job (`lease_lost`)", body = ErrorResponse),
        (status = 304, response = NotModified),
        (status = 412, response = PreconditionFailed),
        (status = 416, response = RangeNotSatisfiable),
))]
#[get("/runners/{runner}/distillations/{job}/teacher/{path:.+}")]
async fn teacher_file(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<RunnerFilePath>,
) -> Result<HttpResponse, Error> {
    serve_input(
        &req,
        &principal,
        &services,
        path.into_inner(),
        Input::Teacher,
    )
    .await
}

/// Download a dataset file
///
/// A file of the dataset version a held distillation job trains on.
#[utoipa::path(tag = "runners", params(RunnerFilePath,
        ("Range" = Option<String>, Header, description = "bytes=START-END, bytes=START- or bytes=-SUFFIX")),
    responses(
        (status = 200, description = "The whole file", content_type = "application/octet-stream", body = inline(Binary)),
        (status = 206, description = "The requested range of the file", content_type = "application/octet-stream", body = inline(Binary)),
        (status = 400, description = "The file path is not valid (`invalid_path`)", body = ErrorResponse),
        (status = 404, description = "No such runner of this credential, the job has no dataset, or no such file in it", body = ErrorResponse),
        (status = 409, description = "The runner no longer holds the job (`lease_lost`)", body = ErrorResponse),
        (status = 304, response = NotModified),
        (status = 412, response = PreconditionFailed),
        (status = 416, response = RangeNotSatisfiable),
))]
#[get("/runners/{runner}/distillations/{job}/data/{path:.+}")]
async fn data_file(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<RunnerFilePath>,
) -> Result<HttpResponse, Error> {
    serve_input(&req, &principal, &services, path.into_inner(), Input::Data).await
}

/// Save a training state
///
/// Replace the held job's training state (a safetensors file the runner resumes from) with the body. The
/// previous state stays readable until this one is stored whole.
#[utoipa::path(tag = "runners", params(RunnerJobPath, CheckpointQuery),
    request_body(content = inline(Binary), content_type = "application/octet-stream"),
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Larger than three times the teacher (`body_too_long`), or a body that broke off (`truncated_body`)", body = ErrorResponse),
        (status = 404, description = "No such runner registered by this credential", body = ErrorResponse),
        (status = 409, description = "The runner no longer holds the job (`lease_lost`): nothing is stored", body = ErrorResponse),
))]
#[put("/runners/{runner}/distillations/{job}/checkpoint")]
async fn save_checkpoint(
    principal: Principal,
    services: Data<Services>,
    path: Path<RunnerJobPath>,
    query: Query<CheckpointQuery>,
    payload: Payload,
) -> Result<HttpResponse, Error> {
    let RunnerJobPath { runner, job } = path.into_inner();
    let body = payload.map_err(super::body_rate::as_io);
    services
        .distillations
        .save_checkpoint(runner, runner_token(&principal)?, job, query.step, body)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Load a training state
///
/// The held job's last saved training state, to resume from.
#[utoipa::path(tag = "runners", params(RunnerJobPath), responses(
    (status = 200, description = "The state", content_type = "application/octet-stream", body = inline(Binary)),
    (status = 404, description = "No such runner of this credential, or no state saved for this job", body = ErrorResponse),
    (status = 409, description = "The runner no longer holds the job (`lease_lost`)", body = ErrorResponse),
))]
#[get("/runners/{runner}/distillations/{job}/checkpoint")]
async fn load_checkpoint(
    principal: Principal,
    services: Data<Services>,
    path: Path<RunnerJobPath>,
) -> Result<HttpResponse, Error> {
    let RunnerJobPath { runner, job } = path.into_inner();
    let (stream, size) = services
        .distillations
        .checkpoint(runner, runner_token(&principal)?, job)
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .no_chunking(size)
        .streaming(stream.map_err(std::io::Error::other)))
}

/// Upload a student file
///
/// One file of the student a held job made, stored as a blob for the report to commit.
#[utoipa::path(tag = "runners", params(RunnerFilePath),
    request_body(content = inline(Binary), content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Stored: the file's path, digest and size, for the report", body = FileEntry),
        (status = 400, description = "The file path is not valid (`invalid_path`), larger than the teacher (`body_too_long`), or a body that broke off (`truncated_body`)", body = ErrorResponse),
        (status = 404, description = "No such runner registered by this credential", body = ErrorResponse),
        (status = 409, description = "The runner no longer holds the job (`lease_lost`)", body = ErrorResponse),
))]
#[put("/runners/{runner}/distillations/{job}/files/{path:.+}")]
async fn upload_student_file(
    principal: Principal,
    services: Data<Services>,
    path: Path<RunnerFilePath>,
    payload: Payload,
) -> Result<HttpResponse, Error> {
    let RunnerFilePath { runner, job, path } = path.into_inner();
    let file: FilePath = path.parse()?;
    let body = payload.map_err(super::body_rate::as_io);
    let entry = services
        .distillations
        .upload_file(runner, runner_token(&principal)?, job, file, body)
        .await?;
    Ok(HttpResponse::Ok().json(entry))
}

/// Report a distillation
///
/// End a held job: the student's uploaded files and report (committed as the requested version, with its
/// lineage), or why it cannot be distilled (final).
#[utoipa::path(tag = "runners", params(RunnerJobPath), request_body = DistillationResult, responses(
    (status = 204, description = "Recorded; the job is finished"),
    (status = 400, description = "Not 1 to 64 files (`invalid_distillation`), files not uploaded (`missing_blobs`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "No such runner registered by this credential", body = ErrorResponse),
    (status = 409, description = "The runner no longer holds the job (`lease_lost`), or the student's version exists with other content (`version_conflict`)", body = ErrorResponse),
))]
#[post("/runners/{runner}/distillations/{job}/result")]
async fn report_distillation(
    principal: Principal,
    services: Data<Services>,
    path: Path<RunnerJobPath>,
    body: JsonObject<DistillationResult>,
) -> Result<HttpResponse, Error> {
    let RunnerJobPath { runner, job } = path.into_inner();
    services
        .distillations
        .report(runner, runner_token(&principal)?, job, body.into_inner())
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
