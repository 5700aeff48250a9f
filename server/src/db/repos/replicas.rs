//! The server processes sharing the database: each refreshes its row; rows not refreshed for a while are
//! gone processes (and are removed).

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::replicas;

/// Refreshes `id`'s row (inserting it on the first call), drops rows silent since `stale_before`, and
/// returns how many replicas are alive (this one included).
pub fn heartbeat(
    conn: &mut DbConnection,
    id: &str,
    at: NaiveDateTime,
    alive_for: Duration,
) -> QueryResult<i64> {
    let refreshed = diesel::update(replicas::table.find(id))
        .set(replicas::last_seen_at.eq(at))
        .execute(conn)?;
    if refreshed == 0 {
        diesel::insert_into(replicas::table)
            .values((
                replicas::id.eq(id),
                replicas::started_at.eq(at),
                replicas::last_seen_at.eq(at),
            ))
            .execute(conn)?;
    }
    diesel::delete(replicas::table.filter(replicas::last_seen_at.lt(at - alive_for)))
        .execute(conn)?;
    replicas::table.count().get_result(conn)
}

/// Forgets `id` (a server shutting down cleanly).
pub fn leave(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    diesel::delete(replicas::table.find(id))
        .execute(conn)
        .map(|_| ())
}
