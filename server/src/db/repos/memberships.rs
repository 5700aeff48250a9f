use diesel::prelude::*;

use crate::db::records::MembershipRow;
use crate::db::schema::{memberships, namespaces, users};
use crate::db::{DbConnection, now};

/// Every namespace the user belongs to: (namespace id, namespace name, role).
pub fn of_user(
    conn: &mut DbConnection,
    user_id: &str,
) -> QueryResult<Vec<(String, String, String)>> {
    memberships::table
        .inner_join(namespaces::table)
        .filter(memberships::user_id.eq(user_id))
        .select((namespaces::id, namespaces::name, memberships::role))
        .load(conn)
}

/// Members of a namespace: (user name, role), by name.
pub fn of_namespace(
    conn: &mut DbConnection,
    namespace_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<(String, String)>> {
    let mut query = memberships::table
        .inner_join(users::table)
        .filter(memberships::namespace_id.eq(namespace_id))
        .order(users::name.asc())
        .limit(limit)
        .select((users::name, memberships::role))
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(users::name.gt(after.to_owned()));
    }
    query.load(conn)
}

/// Sets a member's role, adding the member when absent.
pub fn set(
    conn: &mut DbConnection,
    namespace_id: &str,
    user_id: &str,
    role: &str,
) -> QueryResult<()> {
    let updated = diesel::update(
        memberships::table
            .filter(memberships::namespace_id.eq(namespace_id))
            .filter(memberships::user_id.eq(user_id)),
    )
    .set(memberships::role.eq(role))
    .execute(conn)?;
    if updated == 0 {
        let row = MembershipRow {
            namespace_id: namespace_id.to_owned(),
            user_id: user_id.to_owned(),
            role: role.to_owned(),
            created_at: now(),
        };
        diesel::insert_into(memberships::table)
            .values(&row)
            .execute(conn)?;
    }
    Ok(())
}

/// Removes a member; false when they were not one.
pub fn remove(conn: &mut DbConnection, namespace_id: &str, user_id: &str) -> QueryResult<bool> {
    let removed = diesel::delete(
        memberships::table
            .filter(memberships::namespace_id.eq(namespace_id))
            .filter(memberships::user_id.eq(user_id)),
    )
    .execute(conn)?;
    Ok(removed > 0)
}
