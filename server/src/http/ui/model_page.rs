//! A model's page: its card, versions (a page at a time), aliases with their history, and the forms its
//! writers and administrators may use.

use askama::Template;
use futures_util::StreamExt;
use kiln_core::api::{ModelDetail, VersionStatus, VersionSummary};
use kiln_core::{FilePath, ModelName, NamespaceName, VersionName};

use super::browse::may;
use super::display;
use super::markdown::{CARD_FILES, MAX_CARD_BYTES, card_html};
use super::render::Layout;
use super::session::Visitor;
use crate::auth::policy::Rule;
use crate::error::Error;
use crate::services::Services;
use crate::services::downloads::FileSource;
use crate::services::paging::PageRequest;

/// Moves shown per alias; `kiln alias history` has them all.
const HISTORY_ROWS: i64 = 20;

pub struct Card {
    pub source: String,
    pub html: String,
}

pub struct VersionRow {
    pub version: String,
    pub href: String,
    pub status: &'static str,
    pub file_count: i64,
    pub size: String,
    pub created: String,
    pub created_iso: String,
}

pub struct Move {
    pub sequence: i64,
    pub from: String,
    pub to: String,
    pub actor: String,
    pub at: String,
    pub at_iso: String,
}

pub struct AliasRow {
    pub name: String,
    pub version: String,
    pub version_href: String,
    pub sequence: i64,
    pub history: Vec<Move>,
    pub history_truncated: bool,
}

/// A `kiln-runner serve` process that reported in the last 90 s.
pub struct ServedAt {
    pub name: String,
    /// `@production`, or `(fixed version)`.
    pub follows: String,
    pub version: String,
    pub version_href: String,
    pub sequence: i64,
    pub variant: String,
    pub engine: String,
    pub endpoints: Vec<String>,
    pub seen: String,
    pub seen_iso: String,
}

fn served_at(ns: &NamespaceName, model: &ModelName, s: kiln_core::api::ServingView) -> ServedAt {
    let r = s.report;
    ServedAt {
        name: r.name,
        follows: r
            .alias
            .map_or_else(|| "(fixed version)".to_owned(), |a| format!("@{a}")),
        version_href: format!("/models/{ns}/{model}/versions/{}", r.version),
        version: r.version.to_string(),
        sequence: r.sequence,
        variant: r.variant,
        engine: format!("{} on {}", r.engine, r.device),
        endpoints: r.endpoints,
        seen: display::date(&s.last_seen_at),
        seen_iso: display::iso(&s.last_seen_at),
    }
}

#[derive(Template)]
#[template(path = "model.html")]
pub struct ModelPage {
    layout: Layout,
    namespace: String,
    name: String,
    visibility: &'static str,
    description: String,
    tags: Vec<String>,
    pull_command: String,
    push_command: String,
    readme: Option<Card>,
    version_count: i64,
    versions: Vec<VersionRow>,
    next_versions: Option<String>,
    aliases: Vec<AliasRow>,
    served_at: Vec<ServedAt>,
    ready_versions: Vec<String>,
    can_write: bool,
    can_admin: bool,
}

fn version_row(ns: &NamespaceName, model: &ModelName, v: VersionSummary) -> VersionRow {
    VersionRow {
        href: format!("/models/{ns}/{model}/versions/{}", v.version),
        version: v.version.to_string(),
        status: v.status.as_str(),
        file_count: v.file_count,
        size: display::bytes(v.total_size),
        created: display::date(&v.created_at),
        created_iso: display::iso(&v.created_at),
    }
}

/// The model card of a version: its README.md (or MODEL.md), rendered and sanitized.
async fn card(
    services: &Services,
    ns: &NamespaceName,
    model: &ModelName,
    version: &VersionName,
) -> Result<Option<Card>, Error> {
    for name in CARD_FILES {
        let path: FilePath = name.parse()?;
        let located = match services
            .downloads
            .locate(
                ns.clone(),
                model.clone(),
                version.clone(),
                FileSource::Version,
                path,
            )
            .await
        {
            Ok(file) => file,
            Err(Error::NotFound { .. }) => continue,
            Err(other) => return Err(other),
        };
        let end = (located.size.max(0) as u64).min(MAX_CARD_BYTES as u64);
        let mut bytes = Vec::new();
        let mut stream = services.downloads.read(&located, Some(0..end)).await?;
        while let Some(chunk) = stream.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        let text = String::from_utf8_lossy(&bytes);
        return Ok(Some(Card {
            source: format!("{name} of {version}"),
            html: card_html(&text),
        }));
    }
    Ok(None)
}

pub fn move_row(e: kiln_core::deployment::AliasEvent) -> Move {
    Move {
        sequence: e.sequence,
        from: e
            .from
            .map(|v| v.to_string())
            .unwrap_or_else(|| "(new)".into()),
        to: e.to.to_string(),
        actor: e.actor,
        at: display::date(&e.at),
        at_iso: display::iso(&e.at),
    }
}

async fn alias_rows(
    services: &Services,
    ns: &NamespaceName,
    model: &ModelName,
) -> Result<Vec<AliasRow>, Error> {
    let aliases = services
        .aliases
        .list(ns.clone(), model.clone(), PageRequest::first(100))
        .await?;
    let mut rows = Vec::new();
    for alias in aliases.items {
        let history = services
            .aliases
            .history(
                ns.clone(),
                model.clone(),
                alias.name.clone(),
                PageRequest::first(HISTORY_ROWS),
            )
            .await?;
        rows.push(AliasRow {
            version_href: format!("/models/{ns}/{model}/versions/{}", alias.version),
            name: alias.name.to_string(),
            version: alias.version.to_string(),
            sequence: alias.sequence,
            history_truncated: history.next.is_some(),
            history: history.items.into_iter().map(move_row).collect(),
        });
    }
    Ok(rows)
}

pub async fn build(
    services: &Services,
    visitor: &Visitor,
    detail: ModelDetail,
    versions: Vec<VersionSummary>,
    next_versions: Option<String>,
) -> Result<ModelPage, Error> {
    let (ns, model) = (detail.namespace.clone(), detail.name.clone());
    let latest = detail.versions.first().map(|v| v.version.clone());
    let readme = match &latest {
        Some(version) => card(services, &ns, &model, version).await?,
        None => None,
    };
    let ready_versions = versions
        .iter()
        .filter(|v| v.status == VersionStatus::Ready)
        .map(|v| v.version.to_string())
        .collect();
    let shown_version = latest
        .as_ref()
        .map_or_else(|| "VERSION".to_owned(), |v| v.to_string());
    Ok(ModelPage {
        layout: Layout::of(visitor),
        pull_command: format!("kiln pull {ns}/{model}:{shown_version} ./{model}"),
        push_command: format!("kiln push ./{model} {ns}/{model}:NEW_VERSION"),
        visibility: match detail.visibility {
            kiln_core::api::Visibility::Public => "public",
            kiln_core::api::Visibility::Private => "private",
        },
        description: detail.description,
        tags: detail.tags,
        readme,
        version_count: detail.version_count,
        versions: versions
            .into_iter()
            .map(|v| version_row(&ns, &model, v))
            .collect(),
        next_versions,
        aliases: alias_rows(services, &ns, &model).await?,
        served_at: services
            .servings
            .list(ns.clone(), model.clone())
            .await?
            .into_iter()
            .map(|s| served_at(&ns, &model, s))
            .collect(),
        ready_versions,
        can_write: may(services, visitor, Rule::WriteModel, &ns, &model).await,
        can_admin: may(services, visitor, Rule::AdminModel, &ns, &model).await,
        namespace: ns.to_string(),
        name: model.to_string(),
    })
}
