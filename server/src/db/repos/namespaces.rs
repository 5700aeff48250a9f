use diesel::prelude::*;

use crate::db::records::{MembershipRow, NamespaceRow};
use crate::db::schema::{memberships, models, namespaces};
use crate::db::{DbConnection, new_id, now};

pub fn find(conn: &mut DbConnection, name: &str) -> QueryResult<Option<NamespaceRow>> {
    namespaces::table
        .filter(namespaces::name.eq(name))
        .select(NamespaceRow::as_select())
        .first(conn)
        .optional()
}

/// Changes a namespace's settings; false when there is no such namespace.
pub fn set_store_unsafe_pickles(
    conn: &mut DbConnection,
    name: &str,
    on: bool,
) -> QueryResult<bool> {
    let updated = diesel::update(namespaces::table.filter(namespaces::name.eq(name)))
        .set(namespaces::store_unsafe_pickles.eq(on))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Creates a namespace of `kind` (`user` or `org`) whose owner becomes its admin member. A concurrent
/// creator makes the insert fail with a unique violation: callers run this in a transaction and retry it
/// whole (on PostgreSQL a failed statement aborts the transaction, so it cannot be caught here).
pub fn create(
    conn: &mut DbConnection,
    name: &str,
    kind: &str,
    owner_id: Option<&str>,
) -> QueryResult<NamespaceRow> {
    let row = NamespaceRow {
        id: new_id(),
        name: name.to_owned(),
        created_at: now(),
        kind: kind.to_owned(),
        owner_id: owner_id.map(str::to_owned),
        store_unsafe_pickles: false,
    };
    diesel::insert_into(namespaces::table)
        .values(&row)
        .execute(conn)?;
    if let Some(owner) = owner_id {
        let membership = MembershipRow {
            namespace_id: row.id.clone(),
            user_id: owner.to_owned(),
            role: "admin".to_owned(),
            created_at: now(),
        };
        diesel::insert_into(memberships::table)
            .values(&membership)
            .execute(conn)?;
    }
    Ok(row)
}

/// Namespaces by name (after `after`, skipping `offset`), each with the number of its models that
/// `visible` lets the caller see.
pub fn list(
    conn: &mut DbConnection,
    visible: &super::models::Visible,
    after: Option<&str>,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<(NamespaceRow, i64)>> {
    let mut query = namespaces::table
        .order(namespaces::name.asc())
        .limit(limit)
        .offset(offset)
        .select(NamespaceRow::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(namespaces::name.gt(after.to_owned()));
    }
    let rows: Vec<NamespaceRow> = query.load(conn)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut query = models::table
        .filter(models::namespace_id.eq_any(&ids))
        .select(models::namespace_id)
        .into_boxed();
    if let super::models::Visible::Some { namespace_ids } = visible {
        query = query.filter(
            models::visibility
                .eq("public")
                .or(models::namespace_id.eq_any(namespace_ids.clone())),
        );
    }
    let mut counts: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    for namespace_id in query.load::<String>(conn)? {
        *counts.entry(namespace_id).or_default() += 1;
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let count = counts.get(&row.id).copied().unwrap_or(0);
            (row, count)
        })
        .collect())
}
