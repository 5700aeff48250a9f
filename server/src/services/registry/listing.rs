//! Listing models: the filters run in the database (indexes on names, tags and variant kinds), and a page
//! starts after the last model of the one before (a cursor), so pages neither skip nor repeat models while
//! others are pushed.

use kiln_core::NamespaceName;
use kiln_core::api::ModelSummary;

use super::{RegistryService, Visible, parse_tags, parse_visibility};
use crate::db::repos::models::{self, ModelFilter, Order, Start};
use crate::db::repos::namespaces;
use crate::error::Error;
use crate::services::paging::{PageRequest, Paged, parse_time_key, time_key};

/// A listing: which models, from where, how many.
pub struct ModelQuery {
    pub namespace: Option<NamespaceName>,
    pub prefix: Option<String>,
    pub tag: Option<String>,
    pub text: Option<String>,
    pub has_variant: Option<String>,
    /// By name, or most recently updated first.
    pub order: Order,
    /// After the model a cursor names, or else after skipping `offset` models.
    pub page: PageRequest,
    pub offset: i64,
}

impl RegistryService {
    /// Models the caller may see that pass the query's filters, ordered by namespace and name.
    pub async fn list_models(
        &self,
        visible: Visible,
        query: ModelQuery,
    ) -> Result<Paged<ModelSummary>, Error> {
        let start = match (query.order, query.page.has_cursor()) {
            (_, false) => Start::Offset(query.offset),
            (Order::Name, true) => {
                let [namespace, model] = query.page.after::<2>()?.expect("has a cursor");
                Start::After { namespace, model }
            }
            (Order::Updated, true) => {
                let [at, namespace, model] = query.page.after::<3>()?.expect("has a cursor");
                Start::AfterUpdated {
                    updated_at: parse_time_key(&at)?,
                    namespace,
                    model,
                }
            }
        };
        let order = query.order;
        let filter = ModelFilter {
            namespace: query.namespace.as_ref().map(|ns| ns.to_string()),
            prefix: query.prefix,
            tag: query.tag,
            text: query.text,
            has_variant: query.has_variant,
        };
        let limit = query.page.limit;
        let namespace = query.namespace;
        let models: Vec<ModelSummary> = self
            .db
            .run(move |conn| {
                if let Some(ns) = &namespace
                    && namespaces::find(conn, ns.as_str())?.is_none()
                {
                    return Err(Error::not_found(format!("namespace {ns}")));
                }
                models::list(conn, &visible, &filter, order, &start, limit)?
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
        Ok(Paged::new(models, &query.page, |m| {
            let name = [m.namespace.to_string(), m.name.to_string()];
            match order {
                Order::Name => name.to_vec(),
                Order::Updated => {
                    let at = time_key(&m.updated_at.naive_utc());
                    [vec![at], name.to_vec()].concat()
                }
            }
        }))
    }
}
