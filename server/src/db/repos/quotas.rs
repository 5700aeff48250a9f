//! Namespace quotas.

use diesel::prelude::*;

use crate::db::schema::namespace_quotas;
use crate::db::{DbConnection, now};

/// The namespace's limits (bytes, versions); None for each one not set.
pub fn find(
    conn: &mut DbConnection,
    namespace_id: &str,
) -> QueryResult<(Option<i64>, Option<i64>)> {
    Ok(namespace_quotas::table
        .find(namespace_id)
        .select((namespace_quotas::max_bytes, namespace_quotas::max_versions))
        .first(conn)
        .optional()?
        .unwrap_or((None, None)))
}

/// Serialises the commits that count against a namespace's quota, until the caller's transaction ends
/// (PostgreSQL; SQLite has one writer at a time anyway), so two concurrent pushes cannot both fit.
pub fn lock(conn: &mut DbConnection, namespace_id: &str) -> QueryResult<()> {
    if let DbConnection::Postgresql(pg) = conn {
        diesel::sql_query(
            "SELECT namespace_id FROM namespace_quotas WHERE namespace_id = $1 FOR UPDATE",
        )
        .bind::<diesel::sql_types::Text, _>(namespace_id)
        .execute(pg)?;
    }
    Ok(())
}

/// Sets both limits (None lifts one); in the caller's transaction.
pub fn set(
    conn: &mut DbConnection,
    namespace_id: &str,
    max_bytes: Option<i64>,
    max_versions: Option<i64>,
    by: &str,
) -> QueryResult<()> {
    let changed = diesel::update(namespace_quotas::table.find(namespace_id))
        .set((
            namespace_quotas::max_bytes.eq(max_bytes),
            namespace_quotas::max_versions.eq(max_versions),
            namespace_quotas::updated_at.eq(now()),
            namespace_quotas::updated_by.eq(by),
        ))
        .execute(conn)?;
    if changed == 0 {
        diesel::insert_into(namespace_quotas::table)
            .values((
                namespace_quotas::namespace_id.eq(namespace_id),
                namespace_quotas::max_bytes.eq(max_bytes),
                namespace_quotas::max_versions.eq(max_versions),
                namespace_quotas::updated_at.eq(now()),
                namespace_quotas::updated_by.eq(by),
            ))
            .execute(conn)?;
    }
    Ok(())
}
