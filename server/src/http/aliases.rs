use super::json_object::JsonObject;
use actix_web::web::{Data, Json, Path, Query};
use actix_web::{HttpRequest, HttpResponse, get, put};
use kiln_core::api::ErrorResponse;
use kiln_core::deployment::{AliasEvent, AliasView, SetAliasRequest};

use super::actor;
use super::pages::page_response;
use super::params::{AliasPath, ModelPath, PageQuery};
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;

/// List a model's aliases
///
/// A model's aliases and the versions they name, by alias name.
#[utoipa::path(tag = "aliases", params(ModelPath, PageQuery), responses(
    (status = 200, description = "One page of the model's aliases, by name", body = Vec<AliasView>,
        headers(("Link" = String, description = "`<URL>; rel=\"next\"`: the next page, when this one is full"))),
    (status = 400, description = "The namespace or model is not a valid name (`invalid_name`), `limit` outside 1 to 1000 or a cursor this server did not give (`invalid_page`), or `limit` not a number (`invalid_query`)", body = ErrorResponse),
    (status = 404, description = "No such model, or a private one the caller may not read", body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/aliases")]
async fn list_aliases(
    req: HttpRequest,
    services: Data<Services>,
    path: Path<ModelPath>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let (ns, model) = path.parse()?;
    let aliases = services.aliases.list(ns, model, query.page()?).await?;
    Ok(page_response(&req, aliases))
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
#[utoipa::path(tag = "aliases", params(AliasPath, PageQuery), responses(
    (status = 200, description = "One page of the alias's moves, newest first", body = Vec<AliasEvent>,
        headers(("Link" = String, description = "`<URL>; rel=\"next\"`: the next page, when this one is full"))),
    (status = 400, description = "The namespace, model or alias is not a valid name (`invalid_name`), `limit` outside 1 to 1000 or a cursor this server did not give (`invalid_page`), or `limit` not a number (`invalid_query`)", body = ErrorResponse),
    (status = 404, description = "No such model or alias", body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/aliases/{alias}/history")]
async fn alias_history(
    req: HttpRequest,
    services: Data<Services>,
    path: Path<AliasPath>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let (ns, model, alias) = path.parse()?;
    let events = services
        .aliases
        .history(ns, model, alias, query.page()?)
        .await?;
    Ok(page_response(&req, events))
}
