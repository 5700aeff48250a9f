use diesel::prelude::*;

use crate::db::records::JwtKeyRow;
use crate::db::schema::jwt_keys;
use crate::db::{DbConnection, now};

/// Keys not retired, or retired after `since` (still verifying tokens they signed), newest first.
pub fn usable(
    conn: &mut DbConnection,
    since: chrono::NaiveDateTime,
) -> QueryResult<Vec<JwtKeyRow>> {
    jwt_keys::table
        .filter(
            jwt_keys::retired_at
                .is_null()
                .or(jwt_keys::retired_at.gt(since)),
        )
        .order(jwt_keys::created_at.desc())
        .select(JwtKeyRow::as_select())
        .load(conn)
}

/// Adds a new signing key and retires the ones before it.
pub fn rotate(conn: &mut DbConnection, row: &JwtKeyRow) -> QueryResult<()> {
    diesel::update(jwt_keys::table.filter(jwt_keys::retired_at.is_null()))
        .set(jwt_keys::retired_at.eq(now()))
        .execute(conn)?;
    diesel::insert_into(jwt_keys::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}
