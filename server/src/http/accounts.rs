//! Sign-in, the caller, API tokens, users, namespaces and their members, the audit log, key rotation.

use super::json_object::JsonObject;
use actix_web::web::{Data, Json, Path, Query};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put};
use kiln_core::NamespaceName;
use kiln_core::api::{
    AccessToken, AuditEntry, CreateNamespaceRequest, CreateTokenRequest, CreateUserRequest,
    CreatedToken, ErrorResponse, Me, Member, NamespaceSettings, NamespaceSummary, RotatedJwtKey,
    SetMemberRequest, TokenInfo, TokenRequest, UserInfo,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::pages::page_response;
use super::params::{NamespacePath, PageQuery};
use super::{actor, signed_in};
use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;
use crate::services::namespaces::AuditFilter;

/// Get an access token
///
/// Exchange an API token, or a user name and password, for an access token (a JWT valid 15 minutes).
/// Public: this is how a caller signs in.
#[utoipa::path(tag = "auth", request_body = TokenRequest, responses(
    (status = 200, description = "A short-lived access token to send as `Authorization: Bearer`", body = AccessToken),
    (status = 400, description = "Neither a token nor a user name and password, or both (`invalid_credentials_request`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 401, description = "An unknown, expired or revoked token, or a wrong user name or password (`unauthorized`)", body = ErrorResponse),
))]
#[post("/auth/token")]
async fn exchange_token(
    services: Data<Services>,
    body: JsonObject<TokenRequest>,
) -> Result<Json<AccessToken>, Error> {
    Ok(Json(services.accounts.exchange(body.into_inner()).await?))
}

/// Get the caller
///
/// Who the caller is, their credential's scopes and their namespaces with their role in each.
#[utoipa::path(tag = "auth", responses(
    (status = 200, description = "The signed-in user", body = Me),
))]
#[get("/me")]
async fn me(services: Data<Services>, principal: Principal) -> Result<Json<Me>, Error> {
    Ok(Json(services.accounts.me(signed_in(&principal)?)))
}

/// List API tokens
///
/// The caller's API tokens, revoked ones included, newest first: names, scopes and dates, never the
/// tokens themselves.
#[utoipa::path(tag = "auth", params(PageQuery), responses(
    (status = 200, description = "One page of the caller's tokens, newest first", body = Vec<TokenInfo>,
        headers(("Link" = String, description = "`<URL>; rel=\"next\"`: the next page, when this one is full"))),
    (status = 400, description = "`limit` outside 1 to 1000 or a cursor this server did not give (`invalid_page`), or `limit` not a number (`invalid_query`)", body = ErrorResponse),
))]
#[get("/tokens")]
async fn list_tokens(
    req: HttpRequest,
    services: Data<Services>,
    principal: Principal,
    query: Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let tokens = services
        .accounts
        .list_tokens(signed_in(&principal)?, query.page()?)
        .await?;
    Ok(page_response(&req, tokens))
}

/// Create an API token
///
/// Create an API token for the caller (audited). The response is the only time the token is shown.
#[utoipa::path(tag = "auth", request_body = CreateTokenRequest, responses(
    (status = 201, description = "The new token, shown this once", body = CreatedToken),
    (status = 400, description = "A name that is empty, over 64 characters or holds control characters (`invalid_token_name`), an unknown scope (`invalid_scope`), a lifetime outside 1 to 3650 days (`invalid_expiry`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 403, description = "The scopes asked for exceed the credential's own (a token can only make narrower ones), or a `runner` token asked for by a non-administrator", body = ErrorResponse),
))]
#[post("/tokens")]
async fn create_token(
    req: HttpRequest,
    services: Data<Services>,
    principal: Principal,
    body: JsonObject<CreateTokenRequest>,
) -> Result<HttpResponse, Error> {
    let created = services
        .accounts
        .create_token(
            signed_in(&principal)?,
            body.into_inner(),
            actor(&req, &principal),
        )
        .await?;
    Ok(HttpResponse::Created().json(created))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct TokenPath {
    /// The token's id (from `GET /tokens`)
    id: String,
}

/// Revoke an API token
///
/// Revoke one of the caller's tokens (administrators may revoke any token); audited. Access tokens
/// exchanged for it stop working too.
#[utoipa::path(tag = "auth", params(TokenPath), responses(
    (status = 204, description = "The token is revoked"),
    (status = 404, description = "No such token", body = ErrorResponse),
))]
#[delete("/tokens/{id}")]
async fn revoke_token(
    req: HttpRequest,
    services: Data<Services>,
    principal: Principal,
    path: Path<TokenPath>,
) -> Result<HttpResponse, Error> {
    let user = signed_in(&principal)?;
    services
        .accounts
        .revoke_token(user, path.into_inner().id, actor(&req, &principal))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List users
///
/// Users by name (administrators only).
#[utoipa::path(tag = "admin", params(PageQuery), responses(
    (status = 200, description = "One page of users, by name", body = Vec<UserInfo>,
        headers(("Link" = String, description = "`<URL>; rel=\"next\"`: the next page, when this one is full"))),
    (status = 400, description = "`limit` outside 1 to 1000 or a cursor this server did not give (`invalid_page`), or `limit` not a number (`invalid_query`)", body = ErrorResponse),
))]
#[get("/users")]
async fn list_users(
    req: HttpRequest,
    services: Data<Services>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let users = services.accounts.list_users(query.page()?).await?;
    Ok(page_response(&req, users))
}

/// Create a user
///
/// Create a user, with a personal namespace of the same name where they are admin (administrators only;
/// audited).
#[utoipa::path(tag = "admin", request_body = CreateUserRequest, responses(
    (status = 201, description = "The new user", body = UserInfo),
    (status = 400, description = "A name that is not a valid namespace name (`invalid_name`), a password outside 12 to 1024 characters (`weak_password`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 409, description = "A user or namespace of that name exists (`name_taken`)", body = ErrorResponse),
))]
#[post("/users")]
async fn create_user(
    req: HttpRequest,
    services: Data<Services>,
    principal: Principal,
    body: JsonObject<CreateUserRequest>,
) -> Result<HttpResponse, Error> {
    let request = body.into_inner();
    let user = services
        .accounts
        .create_user(
            request.name,
            request.password,
            request.admin,
            actor(&req, &principal),
        )
        .await?;
    Ok(HttpResponse::Created().json(user))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AuditQuery {
    /// Only entries about this target, e.g. `acme/sentiment:1.0.0` or `acme`
    #[param(max_length = 512)]
    target: Option<String>,
    /// Only entries by this actor: a user's name, `runner:NAME` or `anonymous`
    #[param(max_length = 128)]
    actor: Option<String>,
    /// Only entries of this action, e.g. `alias.set`, `version.create`, `token.revoke`
    #[param(max_length = 64)]
    action: Option<String>,
    /// At most this many entries, newest first (1..=1000, default 100)
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Start after the entry this cursor names: the cursor of the previous page's `Link: <...>; rel="next"`
    #[param(min_length = 1, max_length = 512, pattern = "^[A-Za-z0-9_-]+$")]
    cursor: Option<String>,
}

/// Read the audit log
///
/// Every mutation, who made it, when and from where, newest first (administrators only).
#[utoipa::path(tag = "admin", params(AuditQuery), responses(
    (status = 200, description = "One page of entries, newest first", body = Vec<AuditEntry>,
        headers(("Link" = String, description = "`<URL>; rel=\"next\"`: the next page, when this one is full"))),
    (status = 400, description = "`limit` outside 1 to 1000 or a cursor this server did not give (`invalid_page`), or `limit` not a number or a filter too long (`invalid_query`)", body = ErrorResponse),
))]
#[get("/audit")]
async fn audit_log(
    req: HttpRequest,
    services: Data<Services>,
    query: Query<AuditQuery>,
) -> Result<HttpResponse, Error> {
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .page()?;
    for (name, value, max) in [
        ("target", &query.target, 512),
        ("actor", &query.actor, 128),
        ("action", &query.action, 64),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > max) {
            return Err(Error::bad_request(
                kiln_core::ErrorCode::InvalidQuery,
                format!("{name} is longer than {max} characters"),
            ));
        }
    }
    let given = |v: Option<String>| v.filter(|v| !v.is_empty());
    let filter = AuditFilter {
        target: given(query.target),
        actor: given(query.actor),
        action: given(query.action),
    };
    let entries = services.namespaces.audit(filter, page).await?;
    Ok(page_response(&req, entries))
}

/// Rotate the access-token key
///
/// Start signing access tokens with a new key; tokens signed with the old one keep working until they
/// expire (administrators only; audited).
#[utoipa::path(tag = "admin", responses(
    (status = 200, description = "The new key's id", body = RotatedJwtKey),
))]
#[post("/admin/jwt-keys/rotate")]
async fn rotate_jwt_key(
    req: HttpRequest,
    services: Data<Services>,
    principal: Principal,
) -> Result<HttpResponse, Error> {
    let kid = services
        .accounts
        .rotate_jwt_key(actor(&req, &principal))
        .await?;
    Ok(HttpResponse::Ok().json(RotatedJwtKey { kid }))
}

/// Create a namespace
///
/// Create an organisation namespace; the caller becomes its admin (administrators only; audited).
#[utoipa::path(tag = "namespaces", request_body = CreateNamespaceRequest, responses(
    (status = 201, description = "The new, empty namespace", body = NamespaceSummary),
    (status = 400, description = "Not a valid namespace name (`invalid_name`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 409, description = "A namespace or user of that name exists (`name_taken`)", body = ErrorResponse),
))]
#[post("/namespaces")]
async fn create_namespace(
    req: HttpRequest,
    services: Data<Services>,
    principal: Principal,
    body: JsonObject<CreateNamespaceRequest>,
) -> Result<HttpResponse, Error> {
    let owner = signed_in(&principal)?;
    let created = services
        .namespaces
        .create(body.into_inner().name, owner, actor(&req, &principal))
        .await?;
    Ok(HttpResponse::Created().json(created))
}

/// List a namespace's members
///
/// A namespace's members and their roles, by name (namespace admins).
#[utoipa::path(tag = "namespaces", params(NamespacePath, PageQuery), responses(
    (status = 200, description = "One page of members with their roles, by name", body = Vec<Member>,
        headers(("Link" = String, description = "`<URL>; rel=\"next\"`: the next page, when this one is full"))),
    (status = 400, description = "Not a valid namespace name (`invalid_name`), `limit` outside 1 to 1000 or a cursor this server did not give (`invalid_page`), or `limit` not a number (`invalid_query`)", body = ErrorResponse),
    (status = 404, description = "No such namespace", body = ErrorResponse),
))]
#[get("/namespaces/{namespace}/members")]
async fn list_members(
    req: HttpRequest,
    services: Data<Services>,
    path: Path<NamespacePath>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let namespace: NamespaceName = path.namespace.parse()?;
    let members = services
        .namespaces
        .members(namespace, query.page()?)
        .await?;
    Ok(page_response(&req, members))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct MemberPath {
    /// Namespace, e.g. `acme`
    #[param(value_type = NamespaceName)]
    namespace: String,
    /// User name (user names follow the namespace rules)
    #[param(value_type = NamespaceName)]
    user: String,
}

/// Set a member's role
///
/// Add a member or change their role: reader, writer or admin (namespace admins; audited).
#[utoipa::path(tag = "namespaces", params(MemberPath), request_body = SetMemberRequest, responses(
    (status = 200, description = "The member with their new role", body = Member),
    (status = 400, description = "Not a valid namespace name (`invalid_name`), or a role other than reader, writer, admin (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "No such namespace or user", body = ErrorResponse),
    (status = 409, description = "The user owns the namespace (their personal one) and stays its admin (`owner_role`)", body = ErrorResponse),
))]
#[put("/namespaces/{namespace}/members/{user}")]
async fn set_member(
    req: HttpRequest,
    services: Data<Services>,
    principal: Principal,
    path: Path<MemberPath>,
    body: JsonObject<SetMemberRequest>,
) -> Result<Json<Member>, Error> {
    let MemberPath { namespace, user } = path.into_inner();
    let member = services
        .namespaces
        .set_member(namespace.parse()?, user, body.role, actor(&req, &principal))
        .await?;
    Ok(Json(member))
}

/// Remove a member
///
/// Take a user's membership of a namespace away (namespace admins; audited).
#[utoipa::path(tag = "namespaces", params(MemberPath), responses(
    (status = 204, description = "The user is no longer a member"),
    (status = 400, description = "Not a valid namespace name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such namespace or user, or the user is not a member", body = ErrorResponse),
    (status = 409, description = "The user owns the namespace (their personal one) and cannot be removed (`owner_role`)", body = ErrorResponse),
))]
#[delete("/namespaces/{namespace}/members/{user}")]
async fn remove_member(
    req: HttpRequest,
    services: Data<Services>,
    principal: Principal,
    path: Path<MemberPath>,
) -> Result<HttpResponse, Error> {
    let MemberPath { namespace, user } = path.into_inner();
    services
        .namespaces
        .remove_member(namespace.parse()?, user, actor(&req, &principal))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Get a namespace's settings
///
/// What the namespace's admins decided for every model in it (namespace admins).
#[utoipa::path(tag = "namespaces", params(NamespacePath), responses(
    (status = 200, description = "The namespace's settings", body = NamespaceSettings),
    (status = 400, description = "Not a valid namespace name (`invalid_name`)", body = ErrorResponse),
    (status = 404, description = "No such namespace", body = ErrorResponse),
))]
#[get("/namespaces/{namespace}/settings")]
async fn namespace_settings(
    services: Data<Services>,
    path: Path<NamespacePath>,
) -> Result<Json<NamespaceSettings>, Error> {
    let settings = services
        .namespaces
        .settings(path.into_inner().namespace.parse()?)
        .await?;
    Ok(Json(settings))
}

/// Change a namespace's settings
///
/// E.g. let its versions store pickles the scan would refuse, flagged and never loaded (namespace admins;
/// audited).
#[utoipa::path(tag = "namespaces", params(NamespacePath), request_body = NamespaceSettings, responses(
    (status = 200, description = "The settings as they are now", body = NamespaceSettings),
    (status = 400, description = "Not a valid namespace name (`invalid_name`), or a body that is not this schema (`invalid_json`)", body = ErrorResponse),
    (status = 404, description = "No such namespace", body = ErrorResponse),
))]
#[put("/namespaces/{namespace}/settings")]
async fn set_namespace_settings(
    req: HttpRequest,
    services: Data<Services>,
    principal: Principal,
    path: Path<NamespacePath>,
    body: JsonObject<NamespaceSettings>,
) -> Result<Json<NamespaceSettings>, Error> {
    let settings = services
        .namespaces
        .set_settings(
            path.into_inner().namespace.parse()?,
            body.into_inner(),
            actor(&req, &principal),
        )
        .await?;
    Ok(Json(settings))
}
