use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::records::UserRow;
use crate::db::schema::users;

pub fn find_by_name(conn: &mut DbConnection, name: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::name.eq(name))
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConnection, row: &UserRow) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

/// Users by name, after `after`.
pub fn list(conn: &mut DbConnection, after: Option<&str>, limit: i64) -> QueryResult<Vec<UserRow>> {
    let mut query = users::table
        .order(users::name.asc())
        .limit(limit)
        .select(UserRow::as_select())
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(users::name.gt(after.to_owned()));
    }
    query.load(conn)
}
