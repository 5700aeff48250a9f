//! The registry token endpoint, the realm of the Bearer challenge.

use actix_web::http::header;
use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse, get};
use kiln_core::NamespaceName;

use super::{ANONYMOUS_TOKEN, OciError, caller};
use crate::services::Services;

/// The registry token endpoint (the realm of the Bearer challenge): Basic credentials (a user name and
/// an API token or password) for a short-lived access token for the namespaces of the asked `scope`s
/// (read, or write for push and delete) as far as the credential covers them; without credentials, or for nothing the credential covers, the
/// anonymous token (public models only).
#[get("/v2/token")]
async fn token_endpoint(
    services: Data<Services>,
    req: HttpRequest,
) -> Result<HttpResponse, OciError> {
    let principal = caller(&services, &req).await?;
    // Each `repository:NS/MODEL:ACTIONS` scope asks for NS, to write where ACTIONS has push or delete.
    let asked: Vec<(NamespaceName, bool)> = form_urlencoded::parse(req.query_string().as_bytes())
        .filter(|(name, _)| name == "scope")
        .flat_map(|(_, value)| {
            value
                .split(' ')
                .filter_map(|scope| {
                    let repository = scope.strip_prefix("repository:")?;
                    let (name, actions) = repository.rsplit_once(':')?;
                    let write = actions
                        .split(',')
                        .any(|a| matches!(a, "push" | "delete" | "*"));
                    Some((name.split_once('/')?.0.parse().ok()?, write))
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let issued = match principal.user() {
        Some(user) => services.accounts.registry_token(user, &asked).await?,
        None => None,
    };
    let (token, expires_in) = match issued {
        Some(issued) => (issued.access_token, issued.expires_in),
        None => (ANONYMOUS_TOKEN.to_owned(), 3600),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": expires_in,
            "issued_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        })))
}
