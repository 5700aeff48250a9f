//! Where models are being served: serving processes (`kiln-runner serve` with a runner-scoped token)
//! report and withdraw; a model's readers list the live reports.

use actix_web::web::{Data, Json, Path};
use actix_web::{HttpResponse, delete, get, put};
use kiln_core::api::{ErrorResponse, ServingReport, ServingView};
use serde::Deserialize;
use utoipa::IntoParams;

use super::json_object::JsonObject;
use super::params::ModelPath;
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ServingPath {
    /// The serving process's id, chosen by it (1 to 64 letters, digits, '-' or '_')
    pub serving: String,
}

/// The runner credential's id and its owner; the access rules already refused anyone else.
fn reporter(principal: &Principal) -> Result<(String, String), Error> {
    match principal {
        Principal::Runner { token_id, owner } => Ok((token_id.clone(), owner.clone())),
        _ => Err(Error::forbidden(
            "this route is for serving processes (an API token with the runner scope)",
        )),
    }
}

/// Report what a serving process serves
///
/// `kiln-runner serve` reports the model, alias, version, variant and manifest sequence it serves and
/// where it answers, every 30 s while it serves (a report not refreshed for 90 s is no longer listed).
/// Needs an API token with the `runner` scope; a report can be refreshed only with the token that made it.
#[utoipa::path(tag = "servings", params(ServingPath), request_body = ServingReport, responses(
    (status = 200, description = "Recorded", body = ServingView),
    (status = 400, description = "A field empty, too long or out of bounds (`invalid_serving`), a bad name (`invalid_name`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 403, description = "The report was made with another runner token", body = ErrorResponse),
    (status = 404, description = "No such model", body = ErrorResponse),
    (status = 409, description = "The model already lists as many serving processes as it may (`invalid_serving`)", body = ErrorResponse),
))]
#[put("/servings/{serving}")]
async fn report_serving(
    principal: Principal,
    services: Data<Services>,
    path: Path<ServingPath>,
    body: JsonObject<ServingReport>,
) -> Result<Json<ServingView>, Error> {
    let view = services
        .servings
        .report(
            path.into_inner().serving,
            reporter(&principal)?,
            body.into_inner(),
        )
        .await?;
    Ok(Json(view))
}

/// Withdraw a serving process's report
///
/// The process stopped serving. Only the runner token that made the report may withdraw it.
#[utoipa::path(tag = "servings", params(ServingPath), responses(
    (status = 204, description = "Withdrawn"),
    (status = 400, description = "Not a serving id (`invalid_serving`)", body = ErrorResponse),
    (status = 403, description = "The report was made with another runner token", body = ErrorResponse),
    (status = 404, description = "No such report", body = ErrorResponse),
))]
#[delete("/servings/{serving}")]
async fn withdraw_serving(
    principal: Principal,
    services: Data<Services>,
    path: Path<ServingPath>,
) -> Result<HttpResponse, Error> {
    services
        .servings
        .withdraw(path.into_inner().serving, reporter(&principal)?.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List where a model is served
///
/// The serving processes that reported in the last 90 s what they serve of this model: alias, version,
/// variant, manifest sequence, engine, device and endpoints.
#[utoipa::path(tag = "servings", params(ModelPath), responses(
    (status = 200, description = "The live serving processes, by name", body = Vec<ServingView>),
    (status = 400, description = "The namespace or model is not a valid name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such model, or a private one the caller may not read", body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/servings")]
async fn list_servings(
    services: Data<Services>,
    path: Path<ModelPath>,
) -> Result<Json<Vec<ServingView>>, Error> {
    let (ns, model) = path.parse()?;
    Ok(Json(services.servings.list(ns, model).await?))
}
