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

/// A runner of this credential, name and device that has not heartbeat since `before`: a restarted runner
/// takes its identity back instead of leaving a lost one behind.
pub fn find_lost(
    conn: &mut DbConnection,
    token_id: &str,
    name: &str,
    device: &str,
    before: NaiveDateTime,
) -> QueryResult<Option<RunnerRow>> {
    runners::table
        .filter(runners::token_id.eq(token_id))
        .filter(runners::name.eq(name))
        .filter(runners::device.eq(device))
        .filter(runners::last_heartbeat_at.lt(before))
        .order(runners::last_heartbeat_at.desc())
        .select(RunnerRow::as_select())
        .first(conn)
        .optional()
}

/// Replaces what a runner said about itself (on re-registration), keeping its id and first registration,
/// only while it is still lost; false when another registration took it first.
pub fn update_registration(
    conn: &mut DbConnection,
    row: &RunnerRow,
    lost_before: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        runners::table
            .filter(runners::id.eq(&row.id))
            .filter(runners::last_heartbeat_at.lt(lost_before)),
    )
    .set((
        runners::device_name.eq(&row.device_name),
        runners::memory_bytes.eq(row.memory_bytes),
        runners::driver.eq(&row.driver),
        runners::engine.eq(&row.engine),
        runners::kiln_version.eq(&row.kiln_version),
        runners::capabilities.eq(&row.capabilities),
        runners::threads.eq(row.threads),
        runners::engines.eq(&row.engines),
        runners::last_heartbeat_at.eq(row.last_heartbeat_at),
    ))
    .execute(conn)?;
    Ok(updated == 1)
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

/// Runners by name (then id: names may repeat), after (`name`, `id`) `after`.
pub fn list(
    conn: &mut DbConnection,
    after: Option<(String, String)>,
    limit: i64,
) -> QueryResult<Vec<RunnerRow>> {
    let mut query = runners::table
        .order((runners::name.asc(), runners::id.asc()))
        .limit(limit)
        .select(RunnerRow::as_select())
        .into_boxed();
    if let Some((name, id)) = after {
        // The first bound alone is redundant; it lets the index range scan start at the cursor instead of
        // filtering every row before it.
        query = query.filter(runners::name.ge(name.clone())).filter(
            runners::name
                .gt(name.clone())
                .or(runners::name.eq(name).and(runners::id.gt(id))),
        );
    }
    query.load(conn)
}

/// The (device class, engine) pairs of runners that heartbeat since `since`: what benchmark jobs are
/// queued for.
pub fn live_queues(
    conn: &mut DbConnection,
    since: NaiveDateTime,
) -> QueryResult<std::collections::BTreeSet<(String, String)>> {
    let rows: Vec<(String, String)> = runners::table
        .filter(runners::last_heartbeat_at.ge(since))
        .select((runners::device_kind, runners::engines))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .flat_map(|(kind, engines)| {
            // Written by the server from a checked registration; a row it cannot read offers nothing.
            let engines: Vec<kiln_core::runners::EngineInfo> =
                serde_json::from_str(&engines).unwrap_or_default();
            engines.into_iter().map(move |e| (kind.clone(), e.name))
        })
        .collect())
}

/// Names of runners by id.
pub fn names(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<(String, String)>> {
    runners::table
        .filter(runners::id.eq_any(ids))
        .select((runners::id, runners::name))
        .load(conn)
}
