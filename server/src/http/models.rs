use actix_web::web::{Data, Json, Path, Query};
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put};
use kiln_core::NamespaceName;
use kiln_core::api::{
    CreateVersionRequest, ErrorResponse, ModelDetail, ModelSummary, NamespaceSummary,
    SetVisibilityRequest, UpdateModelRequest, VersionDetail,
};

use super::actor;
use super::params::{ModelPath, NamespacePath, PageQuery, VersionPath};
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;
use crate::services::registry::Committed;

/// List namespaces with their model counts.
#[utoipa::path(tag = "models", params(PageQuery), responses(
    (status = 200, body = Vec<NamespaceSummary>),
    (status = 400, body = ErrorResponse),
))]
#[get("/namespaces")]
async fn list_namespaces(
    services: Data<Services>,
    principal: Principal,
    query: Query<PageQuery>,
) -> Result<Json<Vec<NamespaceSummary>>, Error> {
    Ok(Json(
        services
            .registry
            .list_namespaces(principal.visible(), query.page()?)
            .await?,
    ))
}

/// List the models of one namespace.
#[utoipa::path(tag = "models", params(NamespacePath, PageQuery), responses(
    (status = 200, body = Vec<ModelSummary>),
    (status = 400, body = ErrorResponse),
    (status = 404, body = ErrorResponse),
))]
#[get("/namespaces/{namespace}/models")]
async fn list_namespace_models(
    services: Data<Services>,
    principal: Principal,
    path: Path<NamespacePath>,
    query: Query<PageQuery>,
) -> Result<Json<Vec<ModelSummary>>, Error> {
    let namespace: NamespaceName = path.namespace.parse()?;
    Ok(Json(
        services
            .registry
            .list_models(principal.visible(), Some(namespace), query.page()?)
            .await?,
    ))
}

/// List every model, ordered by namespace and name.
#[utoipa::path(tag = "models", params(PageQuery), responses(
    (status = 200, body = Vec<ModelSummary>),
    (status = 400, body = ErrorResponse),
))]
#[get("/models")]
async fn list_models(
    services: Data<Services>,
    principal: Principal,
    query: Query<PageQuery>,
) -> Result<Json<Vec<ModelSummary>>, Error> {
    Ok(Json(
        services
            .registry
            .list_models(principal.visible(), None, query.page()?)
            .await?,
    ))
}

/// A model with its versions, newest first.
#[utoipa::path(tag = "models", params(ModelPath), responses(
    (status = 200, body = ModelDetail),
    (status = 400, body = ErrorResponse),
    (status = 404, body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}")]
async fn get_model(
    services: Data<Services>,
    path: Path<ModelPath>,
) -> Result<Json<ModelDetail>, Error> {
    let (ns, model) = path.parse()?;
    Ok(Json(services.registry.get_model(ns, model).await?))
}

/// Change a model's description or tags.
#[utoipa::path(tag = "models", params(ModelPath), request_body = UpdateModelRequest, responses(
    (status = 200, body = ModelDetail),
    (status = 400, body = ErrorResponse),
    (status = 404, body = ErrorResponse),
))]
#[patch("/models/{namespace}/{model}")]
async fn update_model(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<ModelPath>,
    body: Json<UpdateModelRequest>,
) -> Result<Json<ModelDetail>, Error> {
    let (ns, model) = path.parse()?;
    Ok(Json(
        services
            .registry
            .update_model(ns, model, body.into_inner(), actor(&req, &principal))
            .await?,
    ))
}

/// Commit a version from uploaded blobs. Creates the namespace and model on first push. The same version
/// with identical files is a no-op (200); with different files, 409.
#[utoipa::path(tag = "models", params(ModelPath), request_body = CreateVersionRequest, responses(
    (status = 201, description = "Version created", body = VersionDetail),
    (status = 200, description = "Version already present with identical files", body = VersionDetail),
    (status = 400, description = "Invalid request or blobs missing (`missing_blobs`)", body = ErrorResponse),
    (status = 409, description = "Version exists with different files (`version_conflict`)", body = ErrorResponse),
    (status = 413, body = ErrorResponse),
))]
#[post("/models/{namespace}/{model}/versions")]
async fn create_version(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<ModelPath>,
    body: Json<CreateVersionRequest>,
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

/// One version with its files.
#[utoipa::path(tag = "models", params(VersionPath), responses(
    (status = 200, body = VersionDetail),
    (status = 400, body = ErrorResponse),
    (status = 404, body = ErrorResponse),
))]
#[get("/models/{namespace}/{model}/versions/{version}")]
async fn get_version(
    services: Data<Services>,
    path: Path<VersionPath>,
) -> Result<Json<VersionDetail>, Error> {
    let (ns, model, version) = path.parse()?;
    Ok(Json(
        services.registry.get_version(ns, model, version).await?,
    ))
}

/// Delete a version (recorded in the audit log). Its blobs stay while anything else references them.
#[utoipa::path(tag = "models", params(VersionPath), responses(
    (status = 204, description = "Deleted"),
    (status = 400, body = ErrorResponse),
    (status = 404, body = ErrorResponse),
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

/// Make a model public (readable by anyone, signed in or not) or private (members of its namespace only).
/// Needs admin in the namespace.
#[utoipa::path(tag = "models", params(ModelPath), request_body = SetVisibilityRequest, responses(
    (status = 200, body = ModelDetail),
    (status = 400, body = ErrorResponse),
    (status = 401, body = ErrorResponse),
    (status = 403, body = ErrorResponse),
    (status = 404, body = ErrorResponse),
))]
#[put("/models/{namespace}/{model}/visibility")]
async fn set_visibility(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<ModelPath>,
    body: Json<SetVisibilityRequest>,
) -> Result<Json<ModelDetail>, Error> {
    let (ns, model) = path.parse()?;
    let detail = services
        .registry
        .set_visibility(ns, model, body.visibility, actor(&req, &principal))
        .await?;
    Ok(Json(detail))
}
