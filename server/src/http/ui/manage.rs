//! Pages that change or oversee the registry: moving an alias (after a confirmation), a model's
//! visibility, the runners and the audit log. Each is decided by the same rule as its API route.

use actix_web::web::{Data, Form, Path, Query};
use actix_web::{HttpRequest, HttpResponse, get, post};
use askama::Template;
use kiln_core::api::Visibility;
use kiln_core::{AliasName, VersionName};
use serde::Deserialize;

use super::browse::allowed;
use super::display;
use super::render::{Layout, PageError, page, see_other};
use super::session::Visitor;
use crate::auth::policy::Rule;
use crate::error::Error;
use crate::http::actor;
use crate::http::pages::next_url;
use crate::http::params::ModelPath;
use crate::services::Services;
use crate::services::namespaces::AuditFilter;
use crate::services::paging::PageRequest;

#[derive(Template)]
#[template(path = "confirm_alias.html")]
struct ConfirmAlias {
    layout: Layout,
    namespace: String,
    name: String,
    alias: String,
    version: String,
    current: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct MoveAliasForm {
    #[serde(default)]
    csrf: String,
    alias: String,
    version: String,
    #[serde(default)]
    confirmed: String,
}

/// First shows what the alias will point to; the confirmed form moves it and publishes its manifest.
#[post("/models/{namespace}/{model}/aliases")]
async fn move_alias(
    req: HttpRequest,
    services: Data<Services>,
    visitor: Visitor,
    path: Path<ModelPath>,
    form: Form<MoveAliasForm>,
) -> Result<HttpResponse, PageError> {
    visitor.check_csrf(&form.csrf)?;
    let (ns, model) = path.parse()?;
    allowed(&services, &visitor, Rule::WriteModel, &ns, &model).await?;
    let alias: AliasName = form.alias.trim().parse()?;
    let version: VersionName = form.version.trim().parse()?;
    if form.confirmed != "yes" {
        let current = match services
            .aliases
            .get(ns.clone(), model.clone(), alias.clone())
            .await
        {
            Ok(view) => Some(view.version.to_string()),
            Err(Error::NotFound { .. }) => None,
            Err(other) => return Err(other.into()),
        };
        return page(&ConfirmAlias {
            layout: Layout::of(&visitor),
            namespace: ns.to_string(),
            name: model.to_string(),
            alias: alias.to_string(),
            version: version.to_string(),
            current,
        });
    }
    services
        .aliases
        .set(
            ns.clone(),
            model.clone(),
            alias,
            version,
            actor(&req, &visitor.principal),
        )
        .await?;
    Ok(see_other(&format!("/models/{ns}/{model}#aliases")))
}

#[derive(Debug, Deserialize)]
pub struct VisibilityForm {
    #[serde(default)]
    csrf: String,
    visibility: String,
}

#[post("/models/{namespace}/{model}/visibility")]
async fn set_visibility(
    req: HttpRequest,
    services: Data<Services>,
    visitor: Visitor,
    path: Path<ModelPath>,
    form: Form<VisibilityForm>,
) -> Result<HttpResponse, PageError> {
    visitor.check_csrf(&form.csrf)?;
    let (ns, model) = path.parse()?;
    allowed(&services, &visitor, Rule::AdminModel, &ns, &model).await?;
    let visibility = match form.visibility.as_str() {
        "public" => Visibility::Public,
        "private" => Visibility::Private,
        other => {
            return Err(Error::bad_request(
                kiln_core::ErrorCode::InvalidJson,
                format!("visibility {other:?} is not public or private"),
            )
            .into());
        }
    };
    services
        .registry
        .set_visibility(
            ns.clone(),
            model.clone(),
            visibility,
            actor(&req, &visitor.principal),
        )
        .await?;
    Ok(see_other(&format!("/models/{ns}/{model}")))
}

pub struct RunnerRow {
    pub name: String,
    pub device: String,
    pub engine: String,
    pub state: &'static str,
    pub job: String,
    pub heartbeat: String,
    pub heartbeat_iso: String,
}

#[derive(Template)]
#[template(path = "runners.html")]
struct RunnersPage {
    layout: Layout,
    runners: Vec<RunnerRow>,
    next_page: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CursorQuery {
    cursor: Option<String>,
}

/// Like `GET /api/v1/runners`: for signed-in users.
#[get("/runners")]
async fn runners_list(
    req: HttpRequest,
    services: Data<Services>,
    visitor: Visitor,
    query: Query<CursorQuery>,
) -> Result<HttpResponse, PageError> {
    services
        .access
        .decide(Rule::SignedIn, &visitor.principal, None, None)
        .await?;
    let listed = services
        .runners
        .list(PageRequest::new(Some(50), query.cursor.as_deref())?)
        .await?;
    let runners = listed
        .items
        .into_iter()
        .map(|r| RunnerRow {
            device: format!("{} ({})", r.device, r.device_name),
            engine: r.engine,
            state: match r.state {
                kiln_core::runners::RunnerState::Idle => "idle",
                kiln_core::runners::RunnerState::Busy => "busy",
                kiln_core::runners::RunnerState::Lost => "lost",
            },
            job: r.current_job.unwrap_or_default(),
            heartbeat: display::date(&r.last_heartbeat_at),
            heartbeat_iso: display::iso(&r.last_heartbeat_at),
            name: r.name,
        })
        .collect();
    page(&RunnersPage {
        layout: Layout::of(&visitor),
        runners,
        next_page: listed.next.map(|c| next_url(&req, &c)),
    })
}

pub struct AuditRow {
    pub at: String,
    pub at_iso: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub remote: String,
    pub detail: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    layout: Layout,
    target: String,
    actor: String,
    action: String,
    entries: Vec<AuditRow>,
    next_page: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    target: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    cursor: Option<String>,
}

/// Like `GET /api/v1/audit`: for administrators.
#[get("/audit")]
async fn audit_list(
    req: HttpRequest,
    services: Data<Services>,
    visitor: Visitor,
    query: Query<AuditQuery>,
) -> Result<HttpResponse, PageError> {
    services
        .access
        .decide(Rule::GlobalAdmin, &visitor.principal, None, None)
        .await?;
    let given = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let filter = AuditFilter {
        target: given(&query.target),
        actor: given(&query.actor),
        action: given(&query.action),
    };
    let listed = services
        .namespaces
        .audit(
            filter,
            PageRequest::new(Some(100), query.cursor.as_deref())?,
        )
        .await?;
    let entries = listed
        .items
        .into_iter()
        .map(|e| AuditRow {
            at: display::date(&e.at),
            at_iso: display::iso(&e.at),
            actor: e.actor,
            action: e.action,
            target: e.target,
            remote: e.remote_addr.unwrap_or_default(),
            detail: e.detail.to_string(),
        })
        .collect();
    page(&AuditPage {
        layout: Layout::of(&visitor),
        target: query.target.clone(),
        actor: query.actor.clone(),
        action: query.action.clone(),
        entries,
        next_page: listed.next.map(|c| next_url(&req, &c)),
    })
}
