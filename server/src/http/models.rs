use super::json_object::JsonObject;
use actix_web::web::{Data, Json, Path, Query};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put};
use kiln_core::NamespaceName;
use kiln_core::api::{
    CreateVersionRequest, ErrorResponse, ModelDetail, ModelSummary, NamespaceSummary,
    SetVisibilityRequest, UpdateModelRequest, VersionDetail, VersionSummary,
};

use super::actor;
use super::pages::page_response;
use super::params::{
    DeleteModelQuery, ListModelsQuery, ModelPath, NamespacePageQuery, NamespacePath, PageQuery,
    VersionPath,
};
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;
use crate::services::registry::Committed;

/// List namespaces
///
/// Namespaces the caller can see, with how many of their models the caller can see, ordered by name.
#[utoipa::path(tag = "models", params(NamespacePageQuery), responses(
    (status = 200, description = "One page of namespaces, ordered by name", body = Vec<NamespaceSummary>,
        headers(("Link" = String, description = "`<URL>; rel=\"next\"`: the next page, when this one is full"))),
    (status = 400, description = "`limit`/`offset`/`cursor` out of range, unknown or both given (`invalid_page`), or not a number (`invalid_query`)", body = ErrorResponse),
))]
#[get("/namespaces")]
async fn list_namespaces(
    req: HttpRequest,
    services: Data<Services>,
    principal: Principal,
    query: Query<NamespacePageQuery>,
) -> Result<HttpResponse, Error> {
    let (page, offset) = query.page()?;
    let namespaces = services
        .registry
        .list_namespaces(principal.visible(), page, offset)
        .await?;
    Ok(page_response(&req, namespaces))
}

/// List a namespace's models
///
/// The models of one namespace the caller can see, ordered by name, filtered like `GET /models`. A full
/// page carries `Link: <...>; rel="next"` with the next page's cursor.
#[utoipa::path(tag = "models", params(NamespacePath, ListModelsQuery), responses(
    (status = 200, description = "One page of the namespace's models, ordered by name", body = Vec<ModelSummary>,
        headers(("Link" = String, description = "`<URL>; rel=\"next\"`: the next page, when this one is full"))),
    (status = 400, description = "The namespace is not a valid name (`invalid_name`), `limit`/`offset`/`cursor` are out of range, unknown or both given (`invalid_page`), or a parameter is not a number or too long (`invalid_query`)", body = ErrorResponse),
    (status = 404, description = "No such namespace", body = ErrorResponse),
))]
#[get("/namespaces/{namespace}/models")]
async fn list_namespace_models(
    req: HttpRequest,
    services: Data<Services>,
    principal: Principal,
    path: Path<NamespacePath>,
    query: Query<ListModelsQuery>,
) -> Result<HttpResponse, Error> {
    let namespace: NamespaceName = path.namespace.parse()?;
    let page = services
        .registry
        .list_models(principal.visible(), query.to_query(Some(namespace))?)
        .await?;
    Ok(page_response(&req, page))
}

/// List models
///
/// Every model the caller can see (public ones, and private ones in the caller's namespaces), ordered by
/// namespace and name, filtered in the database by name prefix, tag, text in the name or description,
/// and the kind of deployable variant a version has. Pages follow a cursor (`Link: <...>; rel="next"` on
/// a full page), stable while models are pushed; `offset` still works.
#[utoipa::path(tag = "models", params(ListModelsQuery), responses(
    (status = 200, description = "One page of models, ordered by namespace and name", body = Vec<ModelSummary>,
        headers(("Link" = String, description = "`<URL>; rel=\"next\"`: the next page, when this one is full"))),
    (status = 400, description = "`limit`/`offset`/`cursor` out of range, unknown or both given (`invalid_page`), or a parameter not a number or too long (`invalid_query`)", body = ErrorResponse),
))]
#[get("/models")]
async fn list_models(
    req: HttpRequest,
    services: Data<Services>,
    principal: Principal,
    query: Query<ListModelsQuery>,
) -> Result<HttpResponse, Error> {
    let page = services
        .registry
        .list_models(principal.visible(), query.to_query(None)?)
        .await?;
    Ok(page_response(&req, page))
}

/// List a model's versions
///
/// The versions of a model, newest first, a page at a time (`GET /models/{namespace}/{model}` shows only
/// the newest hundred).
#[utoipa::path(tag = "models", params(ModelPath, PageQuery), responses(
    (status = 200, description = "One page of versions, newest first", body = Vec<VersionSummary>,
        headers(("Link" = String, description = "`<URL>; rel=\"next\"`: the next page, when this one is full"))),
    (status = 400, description = "The namespace or model is not a valid name (`invalid_name`), `limit`/`cursor` out of range or not this server's (`invalid_page`), or `limit` not a number (`invalid_query`)", body = ErrorResponse),
    (status = 404, description = "No such model, or a private one the caller may not read", body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/versions")]
async fn list_versions(
    req: HttpRequest,
    services: Data<Services>,
    path: Path<ModelPath>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let (ns, model) = path.parse()?;
    let versions = services
        .registry
        .list_versions(ns, model, query.page()?)
        .await?;
    Ok(page_response(&req, versions))
}

/// Get a model
///
/// A model's description, tags and visibility, with its versions newest first.
#[utoipa::path(tag = "models", params(ModelPath), responses(
    (status = 200, description = "The model and its versions", body = ModelDetail),
    (status = 400, description = "The namespace or model is not a valid name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such model, or a private one the caller may not read", body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}")]
async fn get_model(
    services: Data<Services>,
    path: Path<ModelPath>,
) -> Result<Json<ModelDetail>, Error> {
    let (ns, model) = path.parse()?;
    Ok(Json(services.registry.get_model(ns, model).await?))
}

/// Update a model
///
/// Change a model's description or tags; fields left out stay as they are (audited). Needs write access
/// to the namespace.
#[utoipa::path(tag = "models", params(ModelPath), request_body = UpdateModelRequest, responses(
    (status = 200, description = "The model as it is now", body = ModelDetail),
    (status = 400, description = "A bad name (`invalid_name`), a description over 10,000 characters (`invalid_description`), more than 64 tags or a tag that is empty, over 64 characters or holds control characters (`invalid_tags`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "No such model or namespace", body = ErrorResponse),
))]
#[patch("/models/{namespace}/{model}")]
async fn update_model(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<ModelPath>,
    body: JsonObject<UpdateModelRequest>,
) -> Result<Json<ModelDetail>, Error> {
    let (ns, model) = path.parse()?;
    Ok(Json(
        services
            .registry
            .update_model(ns, model, body.into_inner(), actor(&req, &principal))
            .await?,
    ))
}

/// Commit a version
///
/// Commit a version from blobs already uploaded, naming each file's path, digest and size. Creates the
/// model on first push (and the namespace, for an administrator). Committing the same version with
/// identical files again is a no-op (200); with different files, 409. The pipeline (scan, convert,
/// optimize, benchmark) starts on the new version. An optional `lineage` records where the version came
/// from: parent versions with their roles, datasets (kiln versions, whose file digests are recorded, or
/// external URIs), the training run, the producing tool and hyperparameters; every kiln version it names
/// must exist and be readable by the caller. A re-commit that states a lineage must state the recorded one.
#[utoipa::path(tag = "models", params(ModelPath), request_body = CreateVersionRequest, responses(
    (status = 201, description = "Version created; its pipeline is queued", body = VersionDetail),
    (status = 200, description = "The version already exists with identical files; nothing changed", body = VersionDetail),
    (status = 400, description = "The commit is refused: a bad name or version (`invalid_name`), a bad file path (`invalid_path`) or digest (`invalid_digest`), no files (`no_files`), over 100,000 files (`too_many_files`), a negative size (`invalid_size`), a path listed twice (`duplicate_path`) or both a file and a folder (`path_conflict`), unknown variants or tolerances (`invalid_variant`, `invalid_tolerance`), a size that differs from the stored blob's (`size_mismatch`), blobs the caller has not uploaded (`missing_blobs`, with their digests in `details.missing`), a lineage out of its bounds or malformed (`invalid_lineage`, the field in `details.field`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "The namespace does not exist (only an administrator's push creates one), or a version the lineage names does not exist or the caller may not read it (`not_found`; the message names the field)", body = ErrorResponse),
    (status = 409, description = "The version exists with different files, or with the same files and a different lineage (`version_conflict`); versions are immutable. Or the version would take the namespace past its quota (`quota_exceeded`; `details` has the quota, the usage and the bytes it adds)", body = ErrorResponse),
))]
#[post("/models/{namespace}/{model}/versions")]
async fn create_version(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<ModelPath>,
    body: JsonObject<CreateVersionRequest>,
) -> Result<HttpResponse, Error> {
    let (ns, model) = path.parse()?;
    Ok(
        match services
            .registry
            .create_version(
                ns,
                model,
                body.into_inner(),
                actor(&req, &principal),
                principal.visible(),
            )
            .await?
        {
            Committed::Created(detail) => HttpResponse::Created().json(detail),
            Committed::AlreadyPresent(detail) => HttpResponse::Ok().json(detail),
        },
    )
}

/// Get a version
///
/// One version: its files, status, pipeline jobs and the variants the pipeline made, where it came from
/// (`lineage`) and the versions the caller may read that name it in their lineage (`derived`).
#[utoipa::path(tag = "models", params(VersionPath), responses(
    (status = 200, description = "The version with its files, pipeline, variants and lineage", body = VersionDetail),
    (status = 400, description = "The namespace, model or version is not a valid name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such version, or a private model the caller may not read", body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/versions/{version}")]
async fn get_version(
    principal: Principal,
    services: Data<Services>,
    path: Path<VersionPath>,
) -> Result<Json<VersionDetail>, Error> {
    let (ns, model, version) = path.parse()?;
    Ok(Json(
        services
            .registry
            .get_version(ns, model, version, principal.visible())
            .await?,
    ))
}

/// Delete a version
///
/// Delete a version and its variants (audited). Its blobs stay while anything else references them. Needs
/// write access to the namespace.
#[utoipa::path(tag = "models", params(VersionPath), responses(
    (status = 204, description = "The version is deleted"),
    (status = 400, description = "The namespace, model or version is not a valid name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such version", body = ErrorResponse),
    (status = 409, description = "An alias names this version (`version_aliased`): move the alias first", body = ErrorResponse),
))]
#[delete("/models/{namespace}/{model}/versions/{version}")]
async fn delete_version(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<VersionPath>,
) -> Result<HttpResponse, Error> {
    let (ns, model, version) = path.parse()?;
    services
        .registry
        .delete_version(ns, model, version, actor(&req, &principal))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Delete a model
///
/// Delete a model with all its versions, their variants, manifests and benchmarks (audited, listing what
/// went). Refused while an alias names one of its versions, since a deployment may follow it, unless
/// `force=true`, which deletes the aliases too. Its blobs stay while anything else references them. Needs
/// admin in the namespace.
#[utoipa::path(tag = "models", params(ModelPath, DeleteModelQuery), responses(
    (status = 204, description = "The model and everything of it are deleted"),
    (status = 400, description = "The namespace or model is not a valid name (`invalid_name`), or `force` is not true or false (`invalid_query`)", body = ErrorResponse),
    (status = 404, description = "No such model", body = ErrorResponse),
    (status = 409, description = "An alias names one of its versions (`model_aliased`): move or delete the alias, or pass force=true", body = ErrorResponse),
))]
#[delete("/models/{namespace}/{model}")]
async fn delete_model(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<ModelPath>,
    query: Query<DeleteModelQuery>,
) -> Result<HttpResponse, Error> {
    let (ns, model) = path.parse()?;
    services
        .registry
        .delete_model(ns, model, query.force, actor(&req, &principal))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Set a model's visibility
///
/// Make a model public (readable by anyone, signed in or not) or private (members of its namespace only).
/// Audited. Needs admin in the namespace.
#[utoipa::path(tag = "models", params(ModelPath), request_body = SetVisibilityRequest, responses(
    (status = 200, description = "The model with its new visibility", body = ModelDetail),
    (status = 400, description = "A bad name (`invalid_name`) or a visibility other than `public`/`private` (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "No such model or namespace", body = ErrorResponse),
))]
#[put("/models/{namespace}/{model}/visibility")]
async fn set_visibility(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<ModelPath>,
    body: JsonObject<SetVisibilityRequest>,
) -> Result<Json<ModelDetail>, Error> {
    let (ns, model) = path.parse()?;
    let detail = services
        .registry
        .set_visibility(ns, model, body.visibility, actor(&req, &principal))
        .await?;
    Ok(Json(detail))
}
