//! Authenticates every `/api/v1` request, rate-limits it, and decides it against the policy table before
//! any handler runs. The caller's [`Principal`] is left in the request for handlers and the audit log.
//!
//! Every decision is taken on the path exactly as the router matches it (requoted, so `/api/%761/...` is
//! `/api/v1/...`) and on parameters exactly as handlers receive them (fully percent-decoded, so `%61cme`
//! is `acme`). A request the middleware cannot identify never reaches a handler, and a handler that
//! somehow runs without a decision refuses to treat its caller as anyone.

use std::future::{Ready, ready};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse, Url};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};

use crate::auth::Principal;
use crate::auth::policy::{allowed_methods, path_param, rule_for};
use crate::error::Error;
use crate::services::Services;

pub async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let routed = Url::new(req.uri().clone());
    let path = routed.path().to_owned();
    if !path.starts_with("/api/v1/") {
        return next.call(req).await;
    }
    let services = req
        .app_data::<web::Data<Services>>()
        .cloned()
        .ok_or_else(|| Error::Internal("services missing from the app".into()))?;
    let remote = req.peer_addr().map(|a| a.ip().to_string());
    let principal = match authenticate(&services, &req).await {
        Ok(principal) => principal,
        Err(refused) => {
            // Failed sign-ins count against the caller's address, which slows down guessing.
            let key = Principal::Anonymous.rate_key(remote.as_deref());
            services.access.take_request(&key)?;
            return Err(refused.into());
        }
    };
    services
        .access
        .take_request(&principal.rate_key(remote.as_deref()))?;
    let Some(pattern) = req.resource_map().match_pattern(&path) else {
        return Err(Error::not_found("route").into());
    };
    let rule = rule_for(req.method(), &pattern).ok_or_else(|| {
        let allowed = allowed_methods(&pattern);
        if !allowed.is_empty() {
            Error::MethodNotAllowed {
                method: req.method().to_string(),
                allowed,
            }
        } else {
            tracing::error!(%pattern, method = %req.method(), "route has no access rule; refusing");
            Error::forbidden("this route has no access rule")
        }
    })?;
    let namespace = path_param(&pattern, &path, "namespace");
    let model = path_param(&pattern, &path, "model");
    services
        .access
        .decide(rule, &principal, namespace, model)
        .await?;
    req.extensions_mut().insert(principal);
    next.call(req).await
}

async fn authenticate(services: &Services, req: &ServiceRequest) -> Result<Principal, Error> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        // A page's links (file downloads, the manifest) reach the API with the web UI's session cookie.
        // Only reads: a change through the API needs a bearer credential, which no other site's page can
        // make a browser send, so the cookie opens no door to cross-site requests.
        if matches!(
            *req.method(),
            actix_web::http::Method::GET | actix_web::http::Method::HEAD
        ) && let Some(principal) =
            crate::http::ui::session::cookie_principal(services, req).await?
        {
            return Ok(principal);
        }
        return Ok(Principal::Anonymous);
    };
    let credential = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::unauthorized("the Authorization header must be: Bearer TOKEN"))?;
    let arrived_on = req.app_config().local_addr();
    services
        .accounts
        .principal_for(credential, Some(arrived_on))
        .await
}

/// Handlers take the caller as an argument; the middleware put it there.
impl FromRequest for Principal {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(req.extensions().get::<Principal>().cloned().ok_or_else(|| {
            tracing::error!(
                path = req.path(),
                "request reached a handler without an access decision"
            );
            Error::Internal("request reached a handler without an access decision".into()).into()
        }))
    }
}
