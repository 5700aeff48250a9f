//! Lineage: what a version's push declared it came from (`versions.lineage`, JSON) and the kiln versions it
//! names (`version_links`), read both ways: a version's links with the status of what they name, and the
//! versions that name a version (what was derived from it).

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::records::VersionLinkRow;
use crate::db::repos::models::Visible;
use crate::db::schema::{models, namespaces, version_links, versions};

/// Records a version's lineage and its links, in the caller's transaction (the version's commit).
pub fn record(
    conn: &mut DbConnection,
    version_id: &str,
    lineage_json: &str,
    links: &[VersionLinkRow],
) -> QueryResult<()> {
    diesel::update(versions::table.find(version_id))
        .set(versions::lineage.eq(lineage_json))
        .execute(conn)?;
    // Row by row: the multi-backend connection has no batch insert.
    for link in links {
        diesel::insert_into(version_links::table)
            .values(link)
            .execute(conn)?;
    }
    Ok(())
}

/// The lineage a version's push recorded (JSON), if it declared one.
pub fn recorded(conn: &mut DbConnection, version_id: &str) -> QueryResult<Option<String>> {
    versions::table
        .filter(versions::id.eq(version_id))
        .select(versions::lineage)
        .first::<Option<String>>(conn)
        .optional()
        .map(Option::flatten)
}

/// A link of a version and the status of the version it names now.
pub struct LinkStatus {
    pub kind: String,
    pub position: i32,
    pub status: String,
}

/// The version's links whose linked version still exists (a deleted one took its link with it).
pub fn link_statuses(conn: &mut DbConnection, version_id: &str) -> QueryResult<Vec<LinkStatus>> {
    let rows: Vec<(String, i32, String)> = version_links::table
        .inner_join(versions::table.on(versions::id.eq(version_links::linked_version_id)))
        .filter(version_links::version_id.eq(version_id))
        .select((
            version_links::kind,
            version_links::position,
            versions::status,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(kind, position, status)| LinkStatus {
            kind,
            position,
            status,
        })
        .collect())
}

/// A version whose lineage names another, by name.
pub struct DerivedRow {
    pub namespace: String,
    pub model: String,
    pub version: String,
    pub kind: String,
    pub role: String,
}

/// The versions the caller may see whose lineage names `version_id`, oldest first, at most `limit`.
pub fn derived(
    conn: &mut DbConnection,
    version_id: &str,
    visible: &Visible,
    limit: i64,
) -> QueryResult<Vec<DerivedRow>> {
    let mut query = version_links::table
        .inner_join(versions::table.on(versions::id.eq(version_links::version_id)))
        .inner_join(models::table.on(models::id.eq(versions::model_id)))
        .inner_join(namespaces::table.on(namespaces::id.eq(models::namespace_id)))
        .filter(version_links::linked_version_id.eq(version_id))
        .select((
            namespaces::name,
            models::name,
            versions::version,
            version_links::kind,
            version_links::role,
        ))
        .order((
            versions::created_at.asc(),
            version_links::version_id.asc(),
            version_links::kind.desc(),
            version_links::position.asc(),
        ))
        .limit(limit)
        .into_boxed();
    if let Visible::Some { namespace_ids } = visible {
        query = query.filter(
            models::visibility
                .eq("public")
                .or(models::namespace_id.eq_any(namespace_ids.clone())),
        );
    }
    let rows: Vec<(String, String, String, String, String)> = query.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(namespace, model, version, kind, role)| DerivedRow {
            namespace,
            model,
            version,
            kind,
            role,
        })
        .collect())
}

/// How many links of versions the caller may see name `version_id`.
pub fn derived_count(
    conn: &mut DbConnection,
    version_id: &str,
    visible: &Visible,
) -> QueryResult<i64> {
    let mut query = version_links::table
        .inner_join(versions::table.on(versions::id.eq(version_links::version_id)))
        .inner_join(models::table.on(models::id.eq(versions::model_id)))
        .filter(version_links::linked_version_id.eq(version_id))
        .count()
        .into_boxed();
    if let Visible::Some { namespace_ids } = visible {
        query = query.filter(
            models::visibility
                .eq("public")
                .or(models::namespace_id.eq_any(namespace_ids.clone())),
        );
    }
    query.get_result(conn)
}
