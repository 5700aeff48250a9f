//! Registered runners.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::records::RunnerRow;
use crate::db::schema::runners;

pub fn insert(conn: &mut DbConnection, row: &RunnerRow) -> QueryResult<()> {
    diesel::insert_into(runners::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<RunnerRow>> {
    runners::table
        .filter(runners::id.eq(id))
        .select(RunnerRow::as_select())
        .first(conn)
        .optional()
}

pub fn touch(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> QueryResult<()> {
    diesel::update(runners::table.filter(runners::id.eq(id)))
        .set(runners::last_heartbeat_at.eq(at))
        .execute(conn)?;
    Ok(())
}

/// Every runner, newest heartbeat first.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<RunnerRow>> {
    runners::table
        .order(runners::last_heartbeat_at.desc())
        .select(RunnerRow::as_select())
        .load(conn)
}

/// The device classes of runners that heartbeat since `since`: what benchmark jobs are queued for.
pub fn live_device_kinds(
    conn: &mut DbConnection,
    since: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    runners::table
        .filter(runners::last_heartbeat_at.ge(since))
        .select(runners::device_kind)
        .distinct()
        .order(runners::device_kind.asc())
        .load(conn)
}

/// Names of runners by id.
pub fn names(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    runners::table
        .filter(runners::id.eq_any(ids))
        .select((runners::id, runners::name))
        .load(conn)
}
