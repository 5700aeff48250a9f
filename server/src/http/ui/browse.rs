//! Reading pages: the model list, a model, a version. Each asks the services exactly what the API's
//! handlers ask, after the same access decision.

use actix_web::web::{Data, Path, Query};
use actix_web::{HttpRequest, HttpResponse, get};
use askama::Template;
use kiln_core::api::{ModelSummary, VersionStatus};
use kiln_core::{ModelName, NamespaceName};
use serde::Deserialize;

use super::display;
use super::render::{Layout, PageError, page};
use super::session::Visitor;
use super::version_page;
use crate::auth::policy::Rule;
use crate::error::Error;
use crate::http::pages::next_url;
use crate::http::params::ModelPath;
use crate::services::Services;
use crate::services::paging::PageRequest;
use crate::services::registry::{ModelOrder, ModelQuery};

/// How many rows a list page shows.
const PAGE_ROWS: i64 = 50;

/// The variant kinds the list can filter on.
const VARIANT_KINDS: [&str; 5] = ["onnx", "optimized", "fp16", "int8", "pruned"];

#[derive(Debug, Default, Deserialize)]
pub struct ModelsQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    has_variant: String,
    #[serde(default)]
    sort: String,
    /// Rows per page, 1 to 100 (default 50).
    limit: Option<i64>,
    cursor: Option<String>,
}

pub struct Choice {
    pub value: &'static str,
    pub selected: bool,
}

pub struct ModelRow {
    pub namespace: String,
    pub name: String,
    pub href: String,
    pub private: bool,
    pub description: String,
    pub tags: Vec<String>,
    pub version_count: i64,
    pub latest: String,
    pub updated: String,
    pub updated_iso: String,
}

#[derive(Template)]
#[template(path = "models.html")]
struct ModelsPage {
    layout: Layout,
    query: ModelsQuery,
    variant_choices: Vec<Choice>,
    sort_updated: bool,
    models: Vec<ModelRow>,
    next_page: Option<String>,
}

fn model_row(m: ModelSummary) -> ModelRow {
    ModelRow {
        href: format!("/models/{}/{}", m.namespace, m.name),
        namespace: m.namespace.to_string(),
        name: m.name.to_string(),
        private: m.visibility == kiln_core::api::Visibility::Private,
        description: m.description.lines().next().unwrap_or("").to_owned(),
        tags: m.tags,
        version_count: m.version_count,
        latest: m.latest_version.map(|v| v.to_string()).unwrap_or_default(),
        updated: display::date(&m.updated_at),
        updated_iso: display::iso(&m.updated_at),
    }
}

#[get("/")]
async fn models_list(
    req: HttpRequest,
    services: Data<Services>,
    visitor: Visitor,
    query: Query<ModelsQuery>,
) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let given = |v: &str| Some(v.trim().to_owned()).filter(|v| !v.is_empty());
    let namespace = given(&query.namespace)
        .map(|ns| ns.parse::<NamespaceName>())
        .transpose()?;
    let sort_updated = query.sort == "updated";
    let listing = ModelQuery {
        namespace,
        prefix: None,
        tag: given(&query.tag),
        text: given(&query.q),
        has_variant: given(&query.has_variant),
        order: if sort_updated {
            ModelOrder::Updated
        } else {
            ModelOrder::Name
        },
        page: PageRequest::new(
            Some(query.limit.unwrap_or(PAGE_ROWS).clamp(1, 100)),
            query.cursor.as_deref(),
        )?,
        offset: 0,
    };
    let (rows, next) = match services
        .registry
        .list_models(visitor.principal.visible(), listing)
        .await
    {
        Ok(page) => (page.items, page.next),
        // A namespace that does not exist has no models to show.
        Err(Error::NotFound { .. }) => (Vec::new(), None),
        Err(other) => return Err(other.into()),
    };
    let variant_choices = VARIANT_KINDS
        .into_iter()
        .map(|value| Choice {
            value,
            selected: query.has_variant == value,
        })
        .collect();
    page(&ModelsPage {
        layout: Layout::of(&visitor),
        variant_choices,
        sort_updated,
        models: rows.into_iter().map(model_row).collect(),
        next_page: next.map(|cursor| next_url(&req, &cursor)),
        query,
    })
}

/// May the visitor do `rule` to this model? The API's one decision, taken the same way.
pub async fn allowed(
    services: &Services,
    visitor: &Visitor,
    rule: Rule,
    ns: &NamespaceName,
    model: &ModelName,
) -> Result<(), Error> {
    services
        .access
        .decide(
            rule,
            &visitor.principal,
            Some(ns.to_string()),
            Some(model.to_string()),
        )
        .await
}

pub async fn may(
    services: &Services,
    visitor: &Visitor,
    rule: Rule,
    ns: &NamespaceName,
    model: &ModelName,
) -> bool {
    visitor.principal.user().is_some() && allowed(services, visitor, rule, ns, model).await.is_ok()
}

#[derive(Debug, Deserialize)]
pub struct VersionsCursor {
    cursor: Option<String>,
}

#[get("/models/{namespace}/{model}")]
async fn model_detail(
    req: HttpRequest,
    services: Data<Services>,
    visitor: Visitor,
    path: Path<ModelPath>,
    query: Query<VersionsCursor>,
) -> Result<HttpResponse, PageError> {
    let (ns, name) = path.parse()?;
    allowed(&services, &visitor, Rule::ReadModel, &ns, &name).await?;
    let page_request = PageRequest::new(Some(PAGE_ROWS), query.cursor.as_deref())?;
    let detail = services
        .registry
        .get_model(ns.clone(), name.clone())
        .await?;
    let versions = services
        .registry
        .list_versions(ns.clone(), name.clone(), page_request)
        .await?;
    let template = super::model_page::build(
        &services,
        &visitor,
        detail,
        versions.items,
        versions.next.map(|cursor| next_url(&req, &cursor)),
    )
    .await?;
    page(&template)
}

#[get("/models/{namespace}/{model}/versions/{version}")]
async fn version_detail(
    services: Data<Services>,
    visitor: Visitor,
    path: Path<crate::http::params::VersionPath>,
) -> Result<HttpResponse, PageError> {
    let (ns, name, version) = path.parse()?;
    allowed(&services, &visitor, Rule::ReadModel, &ns, &name).await?;
    let detail = services
        .registry
        .get_version(
            ns.clone(),
            name.clone(),
            version.clone(),
            visitor.principal.visible(),
        )
        .await?;
    let manifest = if detail.status == VersionStatus::Ready {
        match services
            .manifests
            .get(
                ns,
                name,
                crate::services::manifests::Subject::Version(version),
                None,
            )
            .await
        {
            Ok(m) => Some(m),
            Err(Error::NotFound { .. }) => None,
            Err(other) => return Err(other.into()),
        }
    } else {
        None
    };
    page(&version_page::build(Layout::of(&visitor), detail, manifest))
}
