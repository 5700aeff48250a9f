use diesel::prelude::*;

use crate::db::records::NamespaceRow;
use crate::db::schema::{models, namespaces};
use crate::db::{DbConnection, new_id, now};

pub fn find(conn: &mut DbConnection, name: &str) -> QueryResult<Option<NamespaceRow>> {
    namespaces::table
        .filter(namespaces::name.eq(name))
        .select(NamespaceRow::as_select())
        .first(conn)
        .optional()
}

/// Returns the namespace, creating it when absent. A concurrent creator makes the insert fail with a unique
/// violation: callers run this in a transaction and retry it whole.
pub fn find_or_create(conn: &mut DbConnection, name: &str) -> QueryResult<NamespaceRow> {
    if let Some(row) = find(conn, name)? {
        return Ok(row);
    }
    let row = NamespaceRow {
        id: new_id(),
        name: name.to_owned(),
        created_at: now(),
    };
    match diesel::insert_into(namespaces::table)
        .values(&row)
        .execute(conn)
    {
        Ok(_) => Ok(row),
        Err(e) if super::is_unique_violation(&e) => find(conn, name)?.ok_or(e),
        Err(e) => Err(e),
    }
}

/// Namespaces by name with their model counts.
pub fn list(
    conn: &mut DbConnection,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<(NamespaceRow, i64)>> {
    let rows: Vec<NamespaceRow> = namespaces::table
        .order(namespaces::name.asc())
        .limit(limit)
        .offset(offset)
        .select(NamespaceRow::as_select())
        .load(conn)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let counts: Vec<(String, i64)> = models::table
        .filter(models::namespace_id.eq_any(&ids))
        .group_by(models::namespace_id)
        .select((models::namespace_id, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let count = counts
                .iter()
                .find(|(id, _)| *id == row.id)
                .map_or(0, |(_, c)| *c);
            (row, count)
        })
        .collect())
}
