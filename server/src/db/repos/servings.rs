//! Serving processes' reports: refreshed while they serve, listed while fresh, removed when they stop or
//! fall silent.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::records::ServingRow;
use crate::db::schema::servings;

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<ServingRow>> {
    servings::table
        .find(id)
        .select(ServingRow::as_select())
        .first(conn)
        .optional()
}

/// Writes the report, keeping `started_at` of an earlier one, and removes reports silent since
/// `stale_before` (of every model: a process gone never says so).
pub fn upsert(
    conn: &mut DbConnection,
    row: &ServingRow,
    stale_before: NaiveDateTime,
) -> QueryResult<()> {
    diesel::delete(servings::table.filter(servings::last_seen_at.lt(stale_before)))
        .execute(conn)?;
    let updated = diesel::update(servings::table.find(&row.id))
        .set((
            servings::model_id.eq(&row.model_id),
            servings::name.eq(&row.name),
            servings::alias.eq(&row.alias),
            servings::version.eq(&row.version),
            servings::variant.eq(&row.variant),
            servings::sha256.eq(&row.sha256),
            servings::sequence.eq(row.sequence),
            servings::engine.eq(&row.engine),
            servings::device.eq(&row.device),
            servings::endpoints.eq(&row.endpoints),
            servings::last_seen_at.eq(row.last_seen_at),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(servings::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// The model's reports refreshed since `fresh_since`, by name.
pub fn live(
    conn: &mut DbConnection,
    model_id: &str,
    fresh_since: NaiveDateTime,
) -> QueryResult<Vec<ServingRow>> {
    servings::table
        .filter(servings::model_id.eq(model_id))
        .filter(servings::last_seen_at.ge(fresh_since))
        .order((servings::name, servings::id))
        .select(ServingRow::as_select())
        .load(conn)
}

/// How many live reports the model has (a bound on what one model's list can hold).
pub fn count_live(
    conn: &mut DbConnection,
    model_id: &str,
    fresh_since: NaiveDateTime,
) -> QueryResult<i64> {
    servings::table
        .filter(servings::model_id.eq(model_id))
        .filter(servings::last_seen_at.ge(fresh_since))
        .count()
        .get_result(conn)
}

pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(servings::table.find(id)).execute(conn)
}
