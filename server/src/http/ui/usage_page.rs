//! A namespace's storage: what each model holds, what deleting it would free, and the quota — the page
//! beside `GET /api/v1/namespaces/{namespace}/usage`, decided by the same rule.

use actix_web::web::{Data, Path};
use actix_web::{HttpResponse, get};
use askama::Template;
use kiln_core::NamespaceName;

use super::display;
use super::render::{Layout, PageError, page};
use super::session::Visitor;
use crate::auth::policy::Rule;
use crate::http::params::NamespacePath;
use crate::services::Services;

struct ModelUsageRow {
    name: String,
    href: String,
    versions: i64,
    bytes: String,
    unique: String,
    shared: String,
}

#[derive(Template)]
#[template(path = "usage.html")]
struct UsagePage {
    layout: Layout,
    namespace: String,
    versions: i64,
    bytes: String,
    unique: String,
    shared: String,
    quota_bytes: String,
    quota_versions: String,
    /// How full the byte quota is, in percent, when there is one.
    filled: Option<i64>,
    models: Vec<ModelUsageRow>,
}

#[get("/namespaces/{namespace}/usage")]
async fn namespace_usage(
    services: Data<Services>,
    visitor: Visitor,
    path: Path<NamespacePath>,
) -> Result<HttpResponse, PageError> {
    let ns: NamespaceName = path.into_inner().namespace.parse()?;
    services
        .access
        .decide(
            Rule::MemberOfNamespace,
            &visitor.principal,
            Some(ns.to_string()),
            None,
        )
        .await?;
    let usage = services.lifecycle.usage(ns).await?;
    let models = usage
        .models
        .iter()
        .map(|m| ModelUsageRow {
            name: m.model.to_string(),
            href: format!("/models/{}/{}", usage.namespace, m.model),
            versions: m.versions,
            bytes: display::bytes(m.bytes),
            unique: display::bytes(m.unique_bytes),
            shared: display::bytes(m.shared_bytes),
        })
        .collect();
    page(&UsagePage {
        layout: Layout::of(&visitor),
        namespace: usage.namespace.to_string(),
        versions: usage.versions,
        bytes: display::bytes(usage.bytes),
        unique: display::bytes(usage.unique_bytes),
        shared: display::bytes(usage.shared_bytes),
        quota_bytes: usage
            .quota
            .max_bytes
            .map_or("no limit".to_owned(), display::bytes),
        quota_versions: usage
            .quota
            .max_versions
            .map_or("no limit".to_owned(), |v| v.to_string()),
        filled: usage
            .quota
            .max_bytes
            .filter(|max| *max > 0)
            .map(|max| (usage.bytes * 100 / max).min(100)),
        models,
    })
}
