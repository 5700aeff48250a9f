use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::records::{ModelRow, NamespaceRow};
use crate::db::schema::{aliases, models, namespaces, versions};
use crate::db::{DbConnection, new_id, now};

pub fn find(
    conn: &mut DbConnection,
    namespace: &str,
    name: &str,
) -> QueryResult<Option<(NamespaceRow, ModelRow)>> {
    namespaces::table
        .inner_join(models::table)
        .filter(namespaces::name.eq(namespace))
        .filter(models::name.eq(name))
        .select((NamespaceRow::as_select(), ModelRow::as_select()))
        .first(conn)
        .optional()
}

fn find_in(
    conn: &mut DbConnection,
    namespace_id: &str,
    name: &str,
) -> QueryResult<Option<ModelRow>> {
    models::table
        .filter(models::namespace_id.eq(namespace_id))
        .filter(models::name.eq(name))
        .select(ModelRow::as_select())
        .first(conn)
        .optional()
}

/// Returns the model, creating it (private, empty description, no tags) when absent. Like
/// [`super::namespaces::create`], a concurrent creator surfaces as a unique violation for the caller's retry.
pub fn find_or_create(
    conn: &mut DbConnection,
    namespace: &NamespaceRow,
    name: &str,
) -> QueryResult<ModelRow> {
    if let Some(row) = find_in(conn, &namespace.id, name)? {
        return Ok(row);
    }
    let at = now();
    let row = ModelRow {
        id: new_id(),
        namespace_id: namespace.id.clone(),
        name: name.to_owned(),
        description: String::new(),
        tags: "[]".to_owned(),
        created_at: at,
        updated_at: at,
        visibility: "private".to_owned(),
    };
    diesel::insert_into(models::table)
        .values(&row)
        .execute(conn)?;
    Ok(row)
}

pub fn set_visibility(
    conn: &mut DbConnection,
    model_id: &str,
    visibility: &str,
) -> QueryResult<()> {
    diesel::update(models::table.find(model_id))
        .set((
            models::visibility.eq(visibility),
            models::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Sets a model's description and tags: the JSON list the API returns, and one `model_tags` row per tag
/// for listing by tag.
pub fn update_metadata(
    conn: &mut DbConnection,
    model_id: &str,
    description: &str,
    tags: &[String],
) -> QueryResult<()> {
    use crate::db::schema::model_tags;
    let tags_json = serde_json::to_string(tags).unwrap_or_else(|_| "[]".to_owned());
    diesel::update(models::table.find(model_id))
        .set((
            models::description.eq(description),
            models::tags.eq(tags_json),
            models::updated_at.eq(now()),
        ))
        .execute(conn)?;
    diesel::delete(model_tags::table.filter(model_tags::model_id.eq(model_id))).execute(conn)?;
    let mut unique: Vec<&String> = tags.iter().collect();
    unique.sort();
    unique.dedup();
    // One statement a tag (at most 64): the two backends share no batch-insert form.
    for tag in unique {
        diesel::insert_into(model_tags::table)
            .values((model_tags::model_id.eq(model_id), model_tags::tag.eq(tag)))
            .execute(conn)?;
    }
    Ok(())
}

/// Deletes a model: its aliases (their history and manifests go with them), then each version (its
/// files, variants, jobs, manifests and benchmarks), then the model. Blobs stay: other versions may hold
/// them, and reclaiming the unreferenced ones is garbage collection's job.
pub fn delete(conn: &mut DbConnection, model_id: &str) -> QueryResult<()> {
    diesel::delete(aliases::table.filter(aliases::model_id.eq(model_id))).execute(conn)?;
    let version_ids: Vec<String> = versions::table
        .filter(versions::model_id.eq(model_id))
        .select(versions::id)
        .load(conn)?;
    for version_id in &version_ids {
        super::versions::delete(conn, version_id)?;
    }
    diesel::delete(models::table.find(model_id)).execute(conn)?;
    Ok(())
}

pub fn touch(conn: &mut DbConnection, model_id: &str) -> QueryResult<()> {
    diesel::update(models::table.find(model_id))
        .set(models::updated_at.eq(now()))
        .execute(conn)?;
    Ok(())
}

/// A model in a listing, with its version count and latest version.
pub struct ListedModel {
    pub namespace: String,
    pub model: ModelRow,
    pub version_count: i64,
    pub latest_version: Option<String>,
}

/// Which models a caller may see: all, or the public ones plus those of some namespaces.
#[derive(Debug, Clone)]
pub enum Visible {
    All,
    Some { namespace_ids: Vec<String> },
}

impl Visible {
    /// Whether a model of this namespace and visibility is among those the caller may see.
    pub fn allows(&self, model: &ModelRow) -> bool {
        match self {
            Visible::All => true,
            Visible::Some { namespace_ids } => {
                model.visibility == "public" || namespace_ids.contains(&model.namespace_id)
            }
        }
    }
}

/// Models ordered by namespace then name, optionally within one namespace, limited to the visible ones.
/// What a model listing keeps: every condition given must hold.
#[derive(Debug, Default, Clone)]
pub struct ModelFilter {
    /// Only this namespace.
    pub namespace: Option<String>,
    /// Model names starting with this.
    pub prefix: Option<String>,
    /// Models carrying this tag.
    pub tag: Option<String>,
    /// This text in the model's name or description (ASCII case-insensitively).
    pub text: Option<String>,
    /// Models with a deployable variant of this name (`fp16`, `int8`, ...) in some version.
    pub has_variant: Option<String>,
}

/// Where a page starts: after a (namespace, model) pair (keyset: stable while models are added), after
/// the model updated at `updated_at` of that name (in the most-recently-updated order), or after skipping
/// some.
#[derive(Debug, Clone)]
pub enum Start {
    After {
        namespace: String,
        model: String,
    },
    AfterUpdated {
        updated_at: NaiveDateTime,
        namespace: String,
        model: String,
    },
    Offset(i64),
}

/// The order of a listing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Order {
    /// By namespace, then name.
    #[default]
    Name,
    /// Most recently updated first (then by namespace and name).
    Updated,
}

/// `%`, `_` and the escape character itself, escaped for LIKE ... ESCAPE '\'.
fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Models the caller may see that pass `filter`, in `order`.
pub fn list(
    conn: &mut DbConnection,
    visible: &Visible,
    filter: &ModelFilter,
    order: Order,
    start: &Start,
    limit: i64,
) -> QueryResult<Vec<ListedModel>> {
    use crate::db::schema::{model_tags, variants};
    let mut query = namespaces::table
        .inner_join(models::table)
        .select((namespaces::name, ModelRow::as_select()))
        .limit(limit)
        .into_boxed();
    query = match order {
        Order::Name => query.order((namespaces::name.asc(), models::name.asc())),
        Order::Updated => query.order((
            models::updated_at.desc(),
            namespaces::name.asc(),
            models::name.asc(),
        )),
    };
    match start {
        Start::After { namespace, model } => {
            // The first bound alone is redundant; it lets the index range scan start at the cursor instead of
            // filtering every row before it.
            query = query.filter(namespaces::name.ge(namespace.clone())).filter(
                namespaces::name.gt(namespace.clone()).or(namespaces::name
                    .eq(namespace.clone())
                    .and(models::name.gt(model.clone()))),
            );
        }
        Start::AfterUpdated {
            updated_at,
            namespace,
            model,
        } => {
            query = query.filter(models::updated_at.le(*updated_at)).filter(
                models::updated_at
                    .lt(*updated_at)
                    .or(models::updated_at.eq(*updated_at).and(
                        namespaces::name.gt(namespace.clone()).or(namespaces::name
                            .eq(namespace.clone())
                            .and(models::name.gt(model.clone()))),
                    )),
            );
        }
        Start::Offset(offset) => query = query.offset(*offset),
    }
    if let Some(ns) = &filter.namespace {
        query = query.filter(namespaces::name.eq(ns.clone()));
    }
    if let Some(prefix) = &filter.prefix {
        query = query.filter(
            models::name
                .like(format!("{}%", like_literal(prefix)))
                .escape('\\'),
        );
    }
    if let Some(text) = &filter.text {
        let pattern = format!("%{}%", like_literal(&text.to_lowercase()));
        query = query.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>("(LOWER(models.name) LIKE ")
                .bind::<diesel::sql_types::Text, _>(pattern.clone())
                .sql(" ESCAPE '\\' OR LOWER(models.description) LIKE ")
                .bind::<diesel::sql_types::Text, _>(pattern)
                .sql(" ESCAPE '\\')"),
        );
    }
    if let Some(tag) = &filter.tag {
        query = query.filter(
            models::id.eq_any(
                model_tags::table
                    .filter(model_tags::tag.eq(tag.clone()))
                    .select(model_tags::model_id),
            ),
        );
    }
    if let Some(variant) = &filter.has_variant {
        let deployable = variants::table
            .filter(variants::name.eq(variant.clone()))
            .filter(variants::status.eq("deployable"))
            .select(variants::version_id);
        query = query.filter(
            models::id.eq_any(
                versions::table
                    .filter(versions::id.eq_any(deployable))
                    .select(versions::model_id),
            ),
        );
    }
    if let Visible::Some { namespace_ids } = visible {
        query = query.filter(
            models::visibility
                .eq("public")
                .or(models::namespace_id.eq_any(namespace_ids.clone())),
        );
    }
    let rows: Vec<(String, ModelRow)> = query.load(conn)?;
    let ids: Vec<&str> = rows.iter().map(|(_, m)| m.id.as_str()).collect();
    let mut version_rows: Vec<(String, String, NaiveDateTime)> = Vec::new();
    for batch in ids.chunks(super::IN_LIST_BATCH) {
        version_rows.extend(
            versions::table
                .filter(versions::model_id.eq_any(batch))
                .select((versions::model_id, versions::version, versions::created_at))
                .load::<(String, String, NaiveDateTime)>(conn)?,
        );
    }
    // Per model: how many versions, and the newest (version, created_at).
    let mut per_model: HashMap<String, (i64, Option<(String, NaiveDateTime)>)> = HashMap::new();
    for (model_id, version, at) in version_rows {
        let (count, latest) = per_model.entry(model_id).or_default();
        *count += 1;
        if latest.as_ref().is_none_or(|(_, newest)| at > *newest) {
            *latest = Some((version, at));
        }
    }
    Ok(rows
        .into_iter()
        .map(|(namespace, model)| {
            let (version_count, latest) = per_model.remove(&model.id).unwrap_or_default();
            let latest_version = latest.map(|(version, _)| version);
            ListedModel {
                namespace,
                model,
                version_count,
                latest_version,
            }
        })
        .collect())
}

/// The namespace's models (id, name), by name.
pub fn in_namespace(
    conn: &mut DbConnection,
    namespace_id: &str,
) -> QueryResult<Vec<(String, String)>> {
    models::table
        .filter(models::namespace_id.eq(namespace_id))
        .order(models::name.asc())
        .select((models::id, models::name))
        .load(conn)
}
