//! Who is looking at a page: the session its cookie names (or nobody), and the checks every form makes.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use kiln_core::Sha256Digest;

use crate::auth::Principal;
use crate::error::Error;
use crate::services::Services;
use crate::services::sessions::SESSION_LIFETIME;

/// The session cookie: a random id, HttpOnly, SameSite=Lax (so a link from elsewhere arrives signed in,
/// while cross-site forms do not carry it), Secure over TLS.
pub const SESSION_COOKIE: &str = "kiln_session";
/// The sign-in form's CSRF cookie (there is no session yet to hold the token).
pub const SIGN_IN_COOKIE: &str = "kiln_sign_in";

/// The caller of a page.
pub struct Visitor {
    pub principal: Principal,
    /// The session's CSRF token; empty when nobody is signed in.
    pub csrf: String,
    /// The session id from the cookie, when it named a live session.
    pub session_id: Option<String>,
}

impl Visitor {
    pub fn name(&self) -> Option<String> {
        self.principal.user().map(|u| u.name.clone())
    }

    pub fn is_admin(&self) -> bool {
        self.principal.user().is_some_and(|u| u.is_global_admin())
    }

    /// Refuses a form whose CSRF token is not this session's: a page of another site cannot read it, so
    /// it cannot send it.
    pub fn check_csrf(&self, sent: &str) -> Result<(), Error> {
        if self.session_id.is_none() {
            return Err(Error::unauthorized("sign in first"));
        }
        same_secret(sent, &self.csrf)
    }
}

/// Compares two secrets by their digests, so the time taken says nothing about where they differ.
pub fn same_secret(sent: &str, expected: &str) -> Result<(), Error> {
    if !expected.is_empty()
        && Sha256Digest::of(sent.as_bytes()) == Sha256Digest::of(expected.as_bytes())
    {
        Ok(())
    } else {
        Err(Error::forbidden(
            "this form's CSRF token is missing or stale: reload the page and send it again",
        ))
    }
}

impl FromRequest for Visitor {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let services = req.app_data::<web::Data<Services>>().cloned();
        let cookie = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        Box::pin(async move {
            let services =
                services.ok_or_else(|| Error::Internal("services missing from the app".into()))?;
            let anonymous = Visitor {
                principal: Principal::Anonymous,
                csrf: String::new(),
                session_id: None,
            };
            let Some(id) = cookie else {
                return Ok(anonymous);
            };
            Ok(match services.sessions.resume(&id).await? {
                Some(session) => Visitor {
                    principal: session.principal,
                    csrf: session.csrf_token,
                    session_id: Some(id),
                },
                None => anonymous,
            })
        })
    }
}

/// The principal a session cookie stands for, for the API's safe methods (file downloads from a page).
pub async fn cookie_principal(
    services: &Services,
    req: &actix_web::dev::ServiceRequest,
) -> Result<Option<Principal>, Error> {
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(services
        .sessions
        .resume(cookie.value())
        .await?
        .map(|s| s.principal))
}

fn secure(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

pub fn session_cookie(req: &HttpRequest, id: &str) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, id.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure(req))
        .max_age(actix_web::cookie::time::Duration::seconds(
            SESSION_LIFETIME.as_secs() as i64,
        ))
        .finish()
}

pub fn sign_in_cookie(req: &HttpRequest, token: &str) -> Cookie<'static> {
    Cookie::build(SIGN_IN_COOKIE, token.to_owned())
        .path("/sign-in")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(req))
        .finish()
}

/// A cookie that tells the browser to forget `name`.
pub fn removal(name: &'static str, path: &'static str) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, "").path(path).finish();
    cookie.make_removal();
    cookie
}
