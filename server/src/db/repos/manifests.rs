//! Published manifests, by version and sequence.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::records::ManifestRow;
use crate::db::schema::manifests;

pub fn insert(conn: &mut DbConnection, row: &ManifestRow) -> QueryResult<()> {
    diesel::insert_into(manifests::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The newest version manifest (not an alias's) of a version.
pub fn latest_for_version(
    conn: &mut DbConnection,
    version_id: &str,
) -> QueryResult<Option<ManifestRow>> {
    manifests::table
        .filter(manifests::version_id.eq(version_id))
        .filter(manifests::alias_id.is_null())
        .order(manifests::sequence.desc())
        .select(ManifestRow::as_select())
        .first(conn)
        .optional()
}

/// The newest manifest of an alias.
pub fn latest_for_alias(
    conn: &mut DbConnection,
    alias_id: &str,
) -> QueryResult<Option<ManifestRow>> {
    manifests::table
        .filter(manifests::alias_id.eq(alias_id))
        .order(manifests::sequence.desc())
        .select(ManifestRow::as_select())
        .first(conn)
        .optional()
}

/// One manifest by sequence: of an alias, or (alias_id None) of a version itself.
pub fn by_sequence(
    conn: &mut DbConnection,
    version_id: Option<&str>,
    alias_id: Option<&str>,
    sequence: i64,
) -> QueryResult<Option<ManifestRow>> {
    let mut query = manifests::table
        .filter(manifests::sequence.eq(sequence))
        .select(ManifestRow::as_select())
        .into_boxed();
    query = match alias_id {
        Some(alias_id) => query.filter(manifests::alias_id.eq(alias_id.to_owned())),
        None => query.filter(manifests::alias_id.is_null()),
    };
    if let Some(version_id) = version_id {
        query = query.filter(manifests::version_id.eq(version_id.to_owned()));
    }
    query.first(conn).optional()
}

/// Versions and aliases whose newest manifest expires before `threshold`.
pub fn expiring_before(
    conn: &mut DbConnection,
    threshold: chrono::NaiveDateTime,
) -> QueryResult<(Vec<String>, Vec<String>)> {
    use diesel::dsl::max;
    // Only subjects whose newest manifest expires before the threshold: older ones always do.
    let versions = manifests::table
        .filter(manifests::alias_id.is_null())
        .group_by(manifests::version_id)
        .having(max(manifests::expires_at).lt(threshold))
        .select(manifests::version_id)
        .load(conn)?;
    let aliases = manifests::table
        .filter(manifests::alias_id.is_not_null())
        .group_by(manifests::alias_id)
        .having(max(manifests::expires_at).lt(threshold))
        .select(manifests::alias_id)
        .load::<Option<String>>(conn)?
        .into_iter()
        .flatten()
        .collect();
    Ok((versions, aliases))
}

/// The namespace and model names, the version row and its files, for a version id.
pub fn version_context(
    conn: &mut DbConnection,
    version_id: &str,
) -> QueryResult<(
    String,
    String,
    crate::db::records::VersionRow,
    Vec<crate::db::records::VersionFileRow>,
)> {
    use crate::db::records::VersionRow;
    use crate::db::schema::{models, namespaces, versions};
    let version: VersionRow = versions::table
        .filter(versions::id.eq(version_id))
        .select(VersionRow::as_select())
        .first(conn)?;
    let (model, namespace_id): (String, String) = models::table
        .filter(models::id.eq(&version.model_id))
        .select((models::name, models::namespace_id))
        .first(conn)?;
    let ns: String = namespaces::table
        .filter(namespaces::id.eq(namespace_id))
        .select(namespaces::name)
        .first(conn)?;
    let files = super::versions::files(conn, version_id)?;
    Ok((ns, model, version, files))
}
