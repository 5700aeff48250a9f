//! An alias's page: the version it names, how to verify and pull it, and its whole history a page at a
//! time.

use actix_web::web::{Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse, get};
use askama::Template;
use serde::Deserialize;

use super::browse::allowed;
use super::display;
use super::model_page::{Move, move_row};
use super::render::{Layout, PageError, page};
use super::session::Visitor;
use crate::auth::policy::Rule;
use crate::http::pages::next_url;
use crate::http::params::AliasPath;
use crate::services::Services;
use crate::services::paging::PageRequest;

#[derive(Template)]
#[template(path = "alias.html")]
struct AliasPage {
    layout: Layout,
    namespace: String,
    name: String,
    alias: String,
    version: String,
    sequence: i64,
    updated_by: String,
    updated: String,
    updated_iso: String,
    history: Vec<Move>,
    next_page: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CursorQuery {
    cursor: Option<String>,
}

#[get("/models/{namespace}/{model}/aliases/{alias}")]
async fn alias_detail(
    req: HttpRequest,
    services: Data<Services>,
    visitor: Visitor,
    path: Path<AliasPath>,
    query: Query<CursorQuery>,
) -> Result<HttpResponse, PageError> {
    let (ns, model, alias) = path.parse()?;
    allowed(&services, &visitor, Rule::ReadModel, &ns, &model).await?;
    let history = services
        .aliases
        .history(
            ns.clone(),
            model.clone(),
            alias.clone(),
            PageRequest::new(Some(50), query.cursor.as_deref())?,
        )
        .await?;
    let view = services
        .aliases
        .get(ns.clone(), model.clone(), alias.clone())
        .await?;
    page(&AliasPage {
        layout: Layout::of(&visitor),
        namespace: ns.to_string(),
        name: model.to_string(),
        alias: alias.to_string(),
        version: view.version.to_string(),
        sequence: view.sequence,
        updated_by: view.updated_by,
        updated: display::date(&view.updated_at),
        updated_iso: display::iso(&view.updated_at),
        history: history.items.into_iter().map(move_row).collect(),
        next_page: history.next.map(|c| next_url(&req, &c)),
    })
}
