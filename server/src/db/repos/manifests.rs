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
