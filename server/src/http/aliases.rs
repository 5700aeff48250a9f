use actix_web::web::{Data, Json, Path};
use actix_web::{HttpRequest, get, put};
use kiln_core::api::ErrorResponse;
use kiln_core::deployment::{AliasEvent, AliasView, SetAliasRequest};

use super::actor;
use super::params::{AliasPath, ModelPath};
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;

/// A model's aliases and the versions they name.
#[utoipa::path(tag = "aliases", params(ModelPath), responses(
    (status = 200, body = Vec<AliasView>),
    (status = 404, body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/aliases")]
async fn list_aliases(
    services: Data<Services>,
    path: Path<ModelPath>,
) -> Result<Json<Vec<AliasView>>, Error> {
    let (ns, model) = path.parse()?;
    Ok(Json(services.aliases.list(ns, model).await?))
}

/// Point an alias at a ready version (creating the alias). Each move publishes a new signed manifest for
/// the alias with the next sequence and is kept in its history. Needs write access to the model.
#[utoipa::path(tag = "aliases", params(AliasPath), request_body = SetAliasRequest, responses(
    (status = 200, body = AliasView),
    (status = 400, body = ErrorResponse),
    (status = 401, body = ErrorResponse),
    (status = 403, body = ErrorResponse),
    (status = 404, body = ErrorResponse),
    (status = 409, description = "The version is not ready (pending, processing or failed), or the alias moved concurrently", body = ErrorResponse),
))]
#[put("/models/{namespace}/{model}/aliases/{alias}")]
async fn set_alias(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<AliasPath>,
    body: Json<SetAliasRequest>,
) -> Result<Json<AliasView>, Error> {
    let (ns, model, alias) = path.parse()?;
    let body = body.into_inner();
    let view = services
        .aliases
        .set(ns, model, alias, body.version, actor(&req, &principal))
        .await?;
    Ok(Json(view))
}

/// Every move of an alias, newest first: who, when, from which version to which, and the sequence of
/// the manifest each move published.
#[utoipa::path(tag = "aliases", params(AliasPath), responses(
    (status = 200, body = Vec<AliasEvent>),
    (status = 404, body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/aliases/{alias}/history")]
async fn alias_history(
    services: Data<Services>,
    path: Path<AliasPath>,
) -> Result<Json<Vec<AliasEvent>>, Error> {
    let (ns, model, alias) = path.parse()?;
    Ok(Json(services.aliases.history(ns, model, alias).await?))
}
