//! Web UI sessions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::records::UiSessionRow;
use crate::db::schema::ui_sessions;

pub fn insert(conn: &mut DbConnection, row: &UiSessionRow) -> QueryResult<()> {
    diesel::insert_into(ui_sessions::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The session with this id hash, if it has not expired at `at`.
pub fn live(
    conn: &mut DbConnection,
    id_hash: &str,
    at: NaiveDateTime,
) -> QueryResult<Option<UiSessionRow>> {
    ui_sessions::table
        .filter(ui_sessions::id_hash.eq(id_hash))
        .filter(ui_sessions::expires_at.gt(at))
        .select(UiSessionRow::as_select())
        .first(conn)
        .optional()
}

pub fn delete(conn: &mut DbConnection, id_hash: &str) -> QueryResult<()> {
    diesel::delete(ui_sessions::table.filter(ui_sessions::id_hash.eq(id_hash))).execute(conn)?;
    Ok(())
}

/// Sessions that expired before `at`: nobody can use them, so they only take space.
pub fn delete_expired(conn: &mut DbConnection, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(ui_sessions::table.filter(ui_sessions::expires_at.le(at))).execute(conn)
}
