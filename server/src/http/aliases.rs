use super::json_object::JsonObject;
use actix_web::web::{Data, Json, Path};
use actix_web::{HttpRequest, get, put};
use kiln_core::api::ErrorResponse;
use kiln_core::deployment::{AliasEvent, AliasView, SetAliasRequest};

use super::actor;
use super::params::{AliasPath, ModelPath};
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;

/// List a model's aliases
///
/// A model's aliases and the versions they name.
#[utoipa::path(tag = "aliases", params(ModelPath), responses(
    (status = 200, description = "Every alias of the model, by name", body = Vec<AliasView>),
    (status = 400, description = "The namespace or model is not a valid name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such model, or a private one the caller may not read", body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/aliases")]
async fn list_aliases(
    services: Data<Services>,
    path: Path<ModelPath>,
) -> Result<Json<Vec<AliasView>>, Error> {
    let (ns, model) = path.parse()?;
    Ok(Json(services.aliases.list(ns, model).await?))
}

/// Set an alias
///
/// Point an alias at a ready version (creating the alias). Each move publishes a new signed manifest for
/// the alias with the next sequence and is kept in its history (audited). Needs write access to the
/// model.
#[utoipa::path(tag = "aliases", params(AliasPath), request_body = SetAliasRequest, responses(
    (status = 200, description = "The alias, now naming the version, with its new manifest's sequence", body = AliasView),
    (status = 400, description = "A bad namespace, model, alias or version name (`invalid_name`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "No such model or version", body = ErrorResponse),
    (status = 409, description = "The version is not ready (`version_not_ready`: pending, processing or failed), or the alias moved concurrently (`alias_moved`): read it again and retry", body = ErrorResponse),
))]
#[put("/models/{namespace}/{model}/aliases/{alias}")]
async fn set_alias(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<AliasPath>,
    body: JsonObject<SetAliasRequest>,
) -> Result<Json<AliasView>, Error> {
    let (ns, model, alias) = path.parse()?;
    let body = body.into_inner();
    let view = services
        .aliases
        .set(ns, model, alias, body.version, actor(&req, &principal))
        .await?;
    Ok(Json(view))
}

/// Get an alias's history
///
/// Every move of an alias, newest first: who, when, from which version to which, and the sequence of
/// the manifest each move published.
#[utoipa::path(tag = "aliases", params(AliasPath), responses(
    (status = 200, description = "The alias's moves, newest first", body = Vec<AliasEvent>),
    (status = 400, description = "The namespace, model or alias is not a valid name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such model or alias", body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/aliases/{alias}/history")]
async fn alias_history(
    services: Data<Services>,
    path: Path<AliasPath>,
) -> Result<Json<Vec<AliasEvent>>, Error> {
    let (ns, model, alias) = path.parse()?;
    Ok(Json(services.aliases.history(ns, model, alias).await?))
}
