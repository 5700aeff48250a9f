//! The store's lifecycle: garbage collection and the store check (administrators), usage, quotas and
//! retention rules.

use actix_web::web::{Data, Json, Path};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put};
use kiln_core::api::{
    CollectionReport, CollectionRequest, ErrorResponse, NamespaceUsage, Quota, QuotaCheck,
    QuotaCheckRequest, RetentionOutcome, RetentionRule, RetentionRules, RetentionRun,
    StoreCheckReport, StoreCheckRequest,
};

use super::actor;
use super::json_object::JsonObject;
use super::params::{ModelPath, NamespacePath};
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;

/// Collect garbage
///
/// Delete the blobs nothing references any more (no version or variant file, upload in progress, recent
/// grant, OCI link or layer) from the store and the database, and abort abandoned uploads. Blobs
/// recorded or granted within the grace period stay, so pushes in flight keep what they uploaded. One
/// run at a time across replicas (administrators; audited).
#[utoipa::path(tag = "storage", request_body = CollectionRequest, responses(
    (status = 200, description = "What was deleted, or with `dry_run` what would be", body = CollectionReport),
    (status = 400, description = "A body that is not this schema, or a grace period over ten years (`invalid_json`)", body = ErrorResponse),
    (status = 409, description = "Another collection holds the lease (`collection_running`)", body = ErrorResponse),
))]
#[post("/admin/gc")]
async fn collect_garbage(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    body: JsonObject<CollectionRequest>,
) -> Result<Json<CollectionReport>, Error> {
    let report = services
        .lifecycle
        .collect(body.into_inner(), actor(&req, &principal))
        .await?;
    Ok(Json(report))
}

/// Check the store against the database
///
/// Find recorded blobs missing from the store or of the wrong size (with `verify`, the wrong digest) and
/// objects nothing records; with `repair`, delete orphans older than the grace period and mark the
/// versions holding a missing blob damaged (not served) until they are whole again (administrators).
#[utoipa::path(tag = "storage", request_body = StoreCheckRequest, responses(
    (status = 200, description = "What the check found, and repaired", body = StoreCheckReport),
    (status = 400, description = "A body that is not this schema (`invalid_json`)", body = ErrorResponse),
))]
#[post("/admin/fsck")]
async fn check_store(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    body: JsonObject<StoreCheckRequest>,
) -> Result<Json<StoreCheckReport>, Error> {
    let report = services
        .lifecycle
        .check_store(body.into_inner(), actor(&req, &principal))
        .await?;
    Ok(Json(report))
}

/// Get a namespace's usage
///
/// The bytes its versions and variants hold, model by model: how many no other model holds (what
/// deleting it frees) and how many it shares; and the namespace's quota (namespace members).
#[utoipa::path(tag = "storage", params(NamespacePath), responses(
    (status = 200, description = "The namespace's usage and quota", body = NamespaceUsage),
    (status = 400, description = "Not a valid namespace name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such namespace", body = ErrorResponse),
))]
#[get("/namespaces/{namespace}/usage")]
async fn namespace_usage(
    services: Data<Services>,
    path: Path<NamespacePath>,
) -> Result<Json<NamespaceUsage>, Error> {
    let usage = services
        .lifecycle
        .usage(path.into_inner().namespace.parse()?)
        .await?;
    Ok(Json(usage))
}

/// Set a namespace's quota
///
/// The most its versions may hold (bytes of distinct blobs) and how many versions; a limit left out is
/// no limit. A push past it is refused with 409 `quota_exceeded`; nothing is deleted (administrators;
/// audited).
#[utoipa::path(tag = "storage", params(NamespacePath), request_body = Quota, responses(
    (status = 200, description = "The quota as it is now", body = Quota),
    (status = 400, description = "Not a valid namespace name (`invalid_name`), a negative limit (`invalid_quota`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "No such namespace", body = ErrorResponse),
))]
#[put("/namespaces/{namespace}/quota")]
async fn set_quota(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<NamespacePath>,
    body: JsonObject<Quota>,
) -> Result<Json<Quota>, Error> {
    let quota = services
        .lifecycle
        .set_quota(
            path.into_inner().namespace.parse()?,
            body.into_inner(),
            actor(&req, &principal),
        )
        .await?;
    Ok(Json(quota))
}

/// Check a push against the quota
///
/// Would a version of these files fit the namespace's quota? `kiln push` asks before it uploads a byte
/// (committing the version checks again). Needs write access.
#[utoipa::path(tag = "storage", params(ModelPath), request_body = QuotaCheckRequest, responses(
    (status = 200, description = "It fits: what the namespace would hold after it", body = QuotaCheck),
    (status = 400, description = "Not a valid name (`invalid_name`), a size out of range (`invalid_size`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "The namespace does not exist (only an administrator's push creates one)", body = ErrorResponse),
    (status = 409, description = "It would exceed the quota (`quota_exceeded`; `details` has the quota, the usage and the bytes it adds)", body = ErrorResponse),
))]
#[post("/models/{namespace}/{model}/quota-check")]
async fn check_quota(
    services: Data<Services>,
    path: Path<ModelPath>,
    body: JsonObject<QuotaCheckRequest>,
) -> Result<Json<QuotaCheck>, Error> {
    let (ns, model) = path.parse()?;
    let check = services
        .lifecycle
        .check_push(ns, model, body.into_inner())
        .await?;
    Ok(Json(check))
}

/// Get a namespace's retention rules
///
/// Its own rule and its models' (which replace it for that model) (namespace members).
#[utoipa::path(tag = "storage", params(NamespacePath), responses(
    (status = 200, description = "The rules", body = RetentionRules),
    (status = 400, description = "Not a valid namespace name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such namespace", body = ErrorResponse),
))]
#[get("/namespaces/{namespace}/retention")]
async fn retention_rules(
    services: Data<Services>,
    path: Path<NamespacePath>,
) -> Result<Json<RetentionRules>, Error> {
    let rules = services
        .lifecycle
        .retention_rules(path.into_inner().namespace.parse()?)
        .await?;
    Ok(Json(rules))
}

/// Set a namespace's retention rule
///
/// Which versions every model keeps unless it has a rule of its own; applied by the scheduled collection
/// (namespace admins; audited).
#[utoipa::path(tag = "storage", params(NamespacePath), request_body = RetentionRule, responses(
    (status = 200, description = "The namespace's rules as they are now", body = RetentionRules),
    (status = 400, description = "Not a valid namespace name (`invalid_name`), a rule out of range (`invalid_retention`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "No such namespace", body = ErrorResponse),
))]
#[put("/namespaces/{namespace}/retention")]
async fn set_namespace_retention(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<NamespacePath>,
    body: JsonObject<RetentionRule>,
) -> Result<Json<RetentionRules>, Error> {
    let rules = services
        .lifecycle
        .set_retention(
            path.into_inner().namespace.parse()?,
            None,
            body.into_inner(),
            actor(&req, &principal),
        )
        .await?;
    Ok(Json(rules))
}

/// Remove a namespace's retention rule
///
/// Its models keep every version again, unless they have rules of their own (namespace admins; audited).
#[utoipa::path(tag = "storage", params(NamespacePath), responses(
    (status = 204, description = "The rule is gone (or there was none)"),
    (status = 400, description = "Not a valid namespace name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such namespace", body = ErrorResponse),
))]
#[delete("/namespaces/{namespace}/retention")]
async fn remove_namespace_retention(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<NamespacePath>,
) -> Result<HttpResponse, Error> {
    services
        .lifecycle
        .remove_retention(
            path.into_inner().namespace.parse()?,
            None,
            actor(&req, &principal),
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Apply a namespace's retention rules
///
/// Delete the versions its rules do not keep now (each audited as a version deletion), or with `dry_run`
/// list them (namespace admins).
#[utoipa::path(tag = "storage", params(NamespacePath), request_body = RetentionRun, responses(
    (status = 200, description = "The versions deleted (or that would be), oldest first", body = RetentionOutcome),
    (status = 400, description = "Not a valid namespace name (`invalid_name`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "No such namespace", body = ErrorResponse),
))]
#[post("/namespaces/{namespace}/retention/apply")]
async fn apply_retention(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<NamespacePath>,
    body: JsonObject<RetentionRun>,
) -> Result<Json<RetentionOutcome>, Error> {
    let outcome = services
        .lifecycle
        .apply_retention(
            path.into_inner().namespace.parse()?,
            body.into_inner().dry_run,
            actor(&req, &principal),
        )
        .await?;
    Ok(Json(outcome))
}

/// Set a model's retention rule
///
/// Replaces the namespace's rule for this model (namespace admins; audited).
#[utoipa::path(tag = "storage", params(ModelPath), request_body = RetentionRule, responses(
    (status = 200, description = "The namespace's rules as they are now", body = RetentionRules),
    (status = 400, description = "Not a valid name (`invalid_name`), a rule out of range (`invalid_retention`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "No such model", body = ErrorResponse),
))]
#[put("/models/{namespace}/{model}/retention")]
async fn set_model_retention(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<ModelPath>,
    body: JsonObject<RetentionRule>,
) -> Result<Json<RetentionRules>, Error> {
    let (ns, model) = path.parse()?;
    let rules = services
        .lifecycle
        .set_retention(ns, Some(model), body.into_inner(), actor(&req, &principal))
        .await?;
    Ok(Json(rules))
}

/// Remove a model's retention rule
///
/// The model follows the namespace's rule again (namespace admins; audited).
#[utoipa::path(tag = "storage", params(ModelPath), responses(
    (status = 204, description = "The rule is gone (or there was none)"),
    (status = 400, description = "Not a valid name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such model", body = ErrorResponse),
))]
#[delete("/models/{namespace}/{model}/retention")]
async fn remove_model_retention(
    req: HttpRequest,
    principal: Principal,
    services: Data<Services>,
    path: Path<ModelPath>,
) -> Result<HttpResponse, Error> {
    let (ns, model) = path.parse()?;
    services
        .lifecycle
        .remove_retention(ns, Some(model), actor(&req, &principal))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
