//! Distillation jobs, as users ask for and follow them (docs/distillation.md). The runner's routes are
//! [`super::runner_distillations`].

use actix_web::web::{Data, Json, Path};
use actix_web::{HttpResponse, get, post};
use kiln_core::api::{Distillation, DistillationRequest, ErrorResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use super::json_object::JsonObject;
use super::params::VersionPath;
use super::signed_in;
use crate::auth::{Level, Principal, User};
use crate::error::Error;
use crate::services::Services;
use crate::services::distillations::RequesterIdentity;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DistillationPath {
    /// The distillation's id, from its request
    pub id: String,
}

fn identity(user: &User) -> RequesterIdentity {
    RequesterIdentity {
        user_id: user.id.clone(),
        name: user.name.clone(),
        visible: user.visible(),
    }
}

fn may_write(user: &User, namespace: &str) -> bool {
    user.is_global_admin() || user.level_in(namespace) >= Some(Level::Write)
}

/// Distill a version
///
/// Queue a distillation of this version (the teacher) into a new version `into`, which the caller must
/// be able to write: a runner that distills claims it under a lease, trains a student with fewer layers
/// on the teacher's outputs, checkpoints every few minutes (a runner that dies loses at most one interval)
/// and reports progress; the student is committed as a new version with its lineage and report, and runs
/// through the normal pipeline.
#[utoipa::path(tag = "models", params(VersionPath), request_body = DistillationRequest, responses(
    (status = 201, description = "Queued", body = Distillation),
    (status = 400, description = "A field out of its bounds (`invalid_distillation`, `details.field` names it), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 403, description = "The caller may not write where the student would go", body = ErrorResponse),
    (status = 404, description = "No such version, a private model the caller may not read, or a dataset version the caller cannot read", body = ErrorResponse),
    (status = 409, description = "`into` exists already, or another distillation is making it (`version_conflict`)", body = ErrorResponse),
))]
#[post("/models/{namespace}/{model}/versions/{version}/distillations")]
async fn request_distillation(
    principal: Principal,
    services: Data<Services>,
    path: Path<VersionPath>,
    body: JsonObject<DistillationRequest>,
) -> Result<HttpResponse, Error> {
    let teacher = path.parse()?;
    let user = signed_in(&principal)?;
    let request = body.into_inner();
    let target_ns = request.into.split('/').next().unwrap_or_default();
    let allowed = may_write(user, target_ns);
    let queued = services
        .distillations
        .request(teacher, request, identity(user), allowed)
        .await?;
    Ok(HttpResponse::Created().json(queued))
}

/// List a version's distillations
///
/// The distillations of this version as a teacher, newest first, each with its state and progress.
#[utoipa::path(tag = "models", params(VersionPath), responses(
    (status = 200, description = "Newest first", body = Vec<Distillation>),
    (status = 400, description = "The namespace, model or version is not a valid name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such version, or a private model the caller may not read", body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/versions/{version}/distillations")]
async fn list_distillations(
    services: Data<Services>,
    path: Path<VersionPath>,
) -> Result<Json<Vec<Distillation>>, Error> {
    let (ns, model, version) = path.parse()?;
    Ok(Json(
        services
            .distillations
            .of_version(ns, model, version)
            .await?,
    ))
}

/// Get a distillation
///
/// A distillation's state, progress (step, loss, rate, ETA, last checkpoint) while it runs, and its
/// report once it has succeeded.
#[utoipa::path(tag = "models", params(DistillationPath), responses(
    (status = 200, description = "The distillation", body = Distillation),
    (status = 404, description = "No such distillation, or one of a teacher the caller may not read", body = ErrorResponse),
))]
#[get("/distillations/{id}")]
async fn get_distillation(
    principal: Principal,
    services: Data<Services>,
    path: Path<DistillationPath>,
) -> Result<Json<Distillation>, Error> {
    Ok(Json(
        services
            .distillations
            .get(path.into_inner().id, principal.visible())
            .await?,
    ))
}

/// Cancel a distillation
///
/// Stop a distillation that has not finished: its runner drops it at its next heartbeat and its saved
/// training state is deleted. Allowed to the one who asked for it and to writers of the student's
/// namespace.
#[utoipa::path(tag = "models", params(DistillationPath), responses(
    (status = 200, description = "Cancelled", body = Distillation),
    (status = 403, description = "Neither the one who asked for it nor a writer where the student would go", body = ErrorResponse),
    (status = 404, description = "No such distillation, or one of a teacher the caller may not read", body = ErrorResponse),
    (status = 409, description = "It has finished already (`distillation_finished`)", body = ErrorResponse),
))]
#[post("/distillations/{id}/cancel")]
async fn cancel_distillation(
    principal: Principal,
    services: Data<Services>,
    path: Path<DistillationPath>,
) -> Result<Json<Distillation>, Error> {
    let user = signed_in(&principal)?.clone();
    let caller = identity(&user);
    Ok(Json(
        services
            .distillations
            .cancel(path.into_inner().id, caller, move |ns| may_write(&user, ns))
            .await?,
    ))
}
