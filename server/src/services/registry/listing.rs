//! Listing models: the filters run in the database (indexes on names, tags and variant kinds), and a page
//! starts after the last model of the one before (a cursor), so pages neither skip nor repeat models while
//! others are pushed.

use base64::Engine;
use kiln_core::api::ModelSummary;
use kiln_core::{ErrorCode, NamespaceName};

use super::{RegistryService, Visible, parse_tags, parse_visibility};
use crate::db::repos::models::{self, ModelFilter, Start};
use crate::db::repos::namespaces;
use crate::error::Error;

/// Where a page starts.
pub enum ModelStart {
    /// After the model a `next` cursor names.
    Cursor(String),
    Offset(i64),
}

/// A listing: which models, from where, how many.
pub struct ModelQuery {
    pub namespace: Option<NamespaceName>,
    pub prefix: Option<String>,
    pub tag: Option<String>,
    pub text: Option<String>,
    pub has_variant: Option<String>,
    pub start: ModelStart,
    pub limit: i64,
}

/// One page, and the cursor of the next when the page is full (the next may still be empty).
pub struct ModelPage {
    pub models: Vec<ModelSummary>,
    pub next: Option<String>,
}

fn cursor_of(model: &ModelSummary) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}/{}", model.namespace, model.name))
}

fn start_after(cursor: &str) -> Result<Start, Error> {
    let refused = || {
        Error::bad_request(
            ErrorCode::InvalidPage,
            "cursor is not one this server gave: pass the `next` link's cursor unchanged",
        )
    };
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(refused)?;
    let (namespace, model) = text.split_once('/').ok_or_else(refused)?;
    Ok(Start::After {
        namespace: namespace.to_owned(),
        model: model.to_owned(),
    })
}

impl RegistryService {
    /// Models the caller may see that pass the query's filters, ordered by namespace and name.
    pub async fn list_models(
        &self,
        visible: Visible,
        query: ModelQuery,
    ) -> Result<ModelPage, Error> {
        let start = match &query.start {
            ModelStart::Cursor(cursor) => start_after(cursor)?,
            ModelStart::Offset(offset) => Start::Offset(*offset),
        };
        let filter = ModelFilter {
            namespace: query.namespace.as_ref().map(|ns| ns.to_string()),
            prefix: query.prefix,
            tag: query.tag,
            text: query.text,
            has_variant: query.has_variant,
        };
        let limit = query.limit;
        let namespace = query.namespace;
        let models: Vec<ModelSummary> = self
            .db
            .run(move |conn| {
                if let Some(ns) = &namespace
                    && namespaces::find(conn, ns.as_str())?.is_none()
                {
                    return Err(Error::not_found(format!("namespace {ns}")));
                }
                models::list(conn, &visible, &filter, &start, limit)?
                    .into_iter()
                    .map(|listed| {
                        Ok(ModelSummary {
                            namespace: listed.namespace.parse()?,
                            name: listed.model.name.parse()?,
                            visibility: parse_visibility(&listed.model.visibility)?,
                            description: listed.model.description,
                            tags: parse_tags(&listed.model.tags),
                            version_count: listed.version_count,
                            latest_version: listed.latest_version.map(|v| v.parse()).transpose()?,
                            created_at: listed.model.created_at.and_utc(),
                            updated_at: listed.model.updated_at.and_utc(),
                        })
                    })
                    .collect()
            })
            .await?;
        let next = (models.len() as i64 == limit)
            .then(|| models.last().map(cursor_of))
            .flatten();
        Ok(ModelPage { models, next })
    }
}
