//! Signing in and out, and the signed-in user's API tokens.

use actix_web::http::StatusCode;
use actix_web::web::{Data, Form, Path, Query};
use actix_web::{HttpRequest, HttpResponse, get, post};
use askama::Template;
use kiln_core::api::{CreateTokenRequest, TokenRequest};
use serde::Deserialize;

use super::display;
use super::render::{Layout, PageError, page, page_with, see_other};
use super::session::{
    SESSION_COOKIE, SIGN_IN_COOKIE, Visitor, removal, same_secret, session_cookie, sign_in_cookie,
};
use crate::auth::credentials::random_secret;
use crate::error::Error;
use crate::http::actor;
use crate::http::pages::next_url;
use crate::services::Services;
use crate::services::paging::PageRequest;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage {
    layout: Layout,
    sign_in_csrf: String,
    next: String,
    problem: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    #[serde(default)]
    next: String,
}

/// Only a path on this site: an absolute URL (or `//host`) would send the user elsewhere after signing in.
fn local_path(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_owned()
    } else {
        "/".to_owned()
    }
}

fn sign_in_page(
    req: &HttpRequest,
    visitor: &Visitor,
    next: &str,
    status: StatusCode,
    problem: String,
) -> Result<HttpResponse, PageError> {
    let token = random_secret();
    let mut response = page_with(
        status,
        &SignInPage {
            layout: Layout::of(visitor),
            sign_in_csrf: token.clone(),
            next: local_path(next),
            problem,
        },
    )?;
    response
        .add_cookie(&sign_in_cookie(req, &token))
        .map_err(|e| Error::Internal(format!("cookie: {e}")))?;
    Ok(response)
}

#[get("/sign-in")]
async fn sign_in_form(
    req: HttpRequest,
    visitor: Visitor,
    query: Query<NextQuery>,
) -> Result<HttpResponse, PageError> {
    sign_in_page(&req, &visitor, &query.next, StatusCode::OK, String::new())
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    token: String,
}

#[post("/sign-in")]
async fn sign_in(
    req: HttpRequest,
    services: Data<Services>,
    visitor: Visitor,
    form: Form<SignInForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    let expected = req
        .cookie(SIGN_IN_COOKIE)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    same_secret(&form.csrf, &expected)?;
    let remote = req.peer_addr().map(|a| a.ip().to_string());
    // Guessing passwords through the form costs what it costs through the API.
    services
        .access
        .take_request(&crate::auth::Principal::Anonymous.rate_key(remote.as_deref()))?;
    let credentials = match (form.token.trim(), form.username.trim()) {
        (token, "") if !token.is_empty() => TokenRequest {
            token: Some(token.to_owned()),
            ..TokenRequest::default()
        },
        ("", name) if !name.is_empty() => TokenRequest {
            username: Some(name.to_owned()),
            password: Some(form.password.clone()),
            ..TokenRequest::default()
        },
        _ => {
            return sign_in_page(
                &req,
                &visitor,
                &form.next,
                StatusCode::BAD_REQUEST,
                "give a user name and password, or an API token (not both)".into(),
            );
        }
    };
    let started = match services.sessions.start(credentials).await {
        Ok(started) => started,
        Err(e @ (Error::Unauthorized { .. } | Error::Forbidden { .. })) => {
            return sign_in_page(
                &req,
                &visitor,
                &form.next,
                StatusCode::UNAUTHORIZED,
                e.to_string(),
            );
        }
        Err(other) => return Err(other.into()),
    };
    let mut response = see_other(&local_path(&form.next));
    for cookie in [
        session_cookie(&req, &started.id),
        removal(SIGN_IN_COOKIE, "/sign-in"),
    ] {
        response
            .add_cookie(&cookie)
            .map_err(|e| Error::Internal(format!("cookie: {e}")))?;
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[post("/sign-out")]
async fn sign_out(
    services: Data<Services>,
    visitor: Visitor,
    form: Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    visitor.check_csrf(&form.csrf)?;
    if let Some(id) = &visitor.session_id {
        services.sessions.end(id).await?;
    }
    let mut response = see_other("/");
    response
        .add_removal_cookie(&removal(SESSION_COOKIE, "/"))
        .map_err(|e| Error::Internal(format!("cookie: {e}")))?;
    Ok(response)
}

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub state: &'static str,
    pub revocable: bool,
}

pub struct CreatedView {
    pub name: String,
    pub token: String,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    created: Option<CreatedView>,
    tokens: Vec<TokenRow>,
    next_page: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CursorQuery {
    cursor: Option<String>,
}

async fn tokens_page(
    req: &HttpRequest,
    services: &Services,
    visitor: &Visitor,
    cursor: Option<&str>,
    created: Option<CreatedView>,
) -> Result<HttpResponse, PageError> {
    let user = visitor
        .principal
        .user()
        .ok_or_else(|| Error::unauthorized("sign in first"))?;
    let listed = services
        .accounts
        .list_tokens(user, PageRequest::new(Some(50), cursor)?)
        .await?;
    let now = chrono::Utc::now();
    let tokens = listed
        .items
        .into_iter()
        .map(|t| {
            let expired = t.expires_at.is_some_and(|at| at <= now);
            TokenRow {
                state: if t.revoked_at.is_some() {
                    "revoked"
                } else if expired {
                    "expired"
                } else {
                    "active"
                },
                revocable: t.revoked_at.is_none() && !expired,
                id: t.id,
                name: t.name,
                scopes: t.scopes.join(" "),
                created: display::date(&t.created_at),
                expires: t
                    .expires_at
                    .map(|at| display::date(&at))
                    .unwrap_or_else(|| "never".into()),
                last_used: t
                    .last_used_at
                    .map(|at| display::date(&at))
                    .unwrap_or_default(),
            }
        })
        .collect();
    page(&TokensPage {
        layout: Layout::of(visitor),
        created,
        tokens,
        next_page: listed.next.map(|c| next_url(req, &c)),
    })
}

#[get("/tokens")]
async fn tokens_list(
    req: HttpRequest,
    services: Data<Services>,
    visitor: Visitor,
    query: Query<CursorQuery>,
) -> Result<HttpResponse, PageError> {
    tokens_page(&req, &services, &visitor, query.cursor.as_deref(), None).await
}

#[derive(Debug, Deserialize)]
pub struct CreateTokenForm {
    #[serde(default)]
    csrf: String,
    name: String,
    scope: String,
    #[serde(default)]
    expires_in_days: String,
}

#[post("/tokens")]
async fn create_token(
    req: HttpRequest,
    services: Data<Services>,
    visitor: Visitor,
    form: Form<CreateTokenForm>,
) -> Result<HttpResponse, PageError> {
    visitor.check_csrf(&form.csrf)?;
    let user = visitor
        .principal
        .user()
        .ok_or_else(|| Error::unauthorized("sign in first"))?;
    let expires_in_days = match form.expires_in_days.trim() {
        "" => None,
        days => Some(days.parse::<u32>().map_err(|_| {
            Error::bad_request(
                kiln_core::ErrorCode::InvalidExpiry,
                "expires in days must be a whole number from 1 to 3650, or empty for never",
            )
        })?),
    };
    let created = services
        .accounts
        .create_token(
            user,
            CreateTokenRequest {
                name: form.name.clone(),
                scopes: vec![form.scope.clone()],
                expires_in_days,
            },
            actor(&req, &visitor.principal),
        )
        .await?;
    let shown = CreatedView {
        name: created.info.name.clone(),
        token: created.token.clone(),
    };
    let mut response = tokens_page(&req, &services, &visitor, None, Some(shown)).await?;
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct TokenPath {
    id: String,
}

#[post("/tokens/{id}/revoke")]
async fn revoke_token(
    req: HttpRequest,
    services: Data<Services>,
    visitor: Visitor,
    path: Path<TokenPath>,
    form: Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    visitor.check_csrf(&form.csrf)?;
    let user = visitor
        .principal
        .user()
        .ok_or_else(|| Error::unauthorized("sign in first"))?;
    services
        .accounts
        .revoke_token(user, path.id.clone(), actor(&req, &visitor.principal))
        .await?;
    Ok(see_other("/tokens"))
}
