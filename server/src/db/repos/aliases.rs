//! Aliases and their history.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::records::{AliasEventRow, AliasRow};
use crate::db::schema::{alias_events, aliases, versions};

pub fn find(conn: &mut DbConnection, model_id: &str, name: &str) -> QueryResult<Option<AliasRow>> {
    aliases::table
        .filter(aliases::model_id.eq(model_id))
        .filter(aliases::name.eq(name))
        .select(AliasRow::as_select())
        .first(conn)
        .optional()
}

/// A model's aliases with the names of the versions they point at, by alias name (after `after`).
pub fn list(
    conn: &mut DbConnection,
    model_id: &str,
    after: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<(AliasRow, String)>> {
    let mut query = aliases::table
        .inner_join(versions::table)
        .filter(aliases::model_id.eq(model_id))
        .order(aliases::name.asc())
        .limit(limit)
        .select((AliasRow::as_select(), versions::version))
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(aliases::name.gt(after.to_owned()));
    }
    query.load(conn)
}

/// The aliases that point at a version.
pub fn naming(conn: &mut DbConnection, version_id: &str) -> QueryResult<Vec<AliasRow>> {
    aliases::table
        .filter(aliases::version_id.eq(version_id))
        .order(aliases::name.asc())
        .select(AliasRow::as_select())
        .load(conn)
}

/// Names of the aliases that point at a version.
pub fn pointing_at(conn: &mut DbConnection, version_id: &str) -> QueryResult<Vec<String>> {
    aliases::table
        .filter(aliases::version_id.eq(version_id))
        .order(aliases::name.asc())
        .select(aliases::name)
        .load(conn)
}

pub fn insert(conn: &mut DbConnection, row: &AliasRow) -> QueryResult<()> {
    diesel::insert_into(aliases::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Points the alias at another version with the next sequence, only if nobody moved it since `row` was
/// read (false then: the caller lost a race and must not publish).
pub fn advance(
    conn: &mut DbConnection,
    row: &AliasRow,
    version_id: &str,
    actor: &str,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let changed = diesel::update(
        aliases::table
            .filter(aliases::id.eq(&row.id))
            .filter(aliases::sequence.eq(row.sequence)),
    )
    .set((
        aliases::version_id.eq(version_id),
        aliases::sequence.eq(row.sequence + 1),
        aliases::updated_at.eq(at),
        aliases::updated_by.eq(actor),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Takes the next sequence for a re-issued manifest of the same version, only if nobody moved the alias
/// since `row` was read.
pub fn bump_sequence(conn: &mut DbConnection, row: &AliasRow) -> QueryResult<bool> {
    let changed = diesel::update(
        aliases::table
            .filter(aliases::id.eq(&row.id))
            .filter(aliases::sequence.eq(row.sequence)),
    )
    .set(aliases::sequence.eq(row.sequence + 1))
    .execute(conn)?;
    Ok(changed == 1)
}

pub fn by_id(conn: &mut DbConnection, id: &str) -> QueryResult<AliasRow> {
    aliases::table
        .filter(aliases::id.eq(id))
        .select(AliasRow::as_select())
        .first(conn)
}

pub fn record_event(conn: &mut DbConnection, event: &AliasEventRow) -> QueryResult<()> {
    diesel::insert_into(alias_events::table)
        .values(event)
        .execute(conn)?;
    Ok(())
}

/// The moves of an alias, newest first, from the one before sequence `before`.
pub fn history(
    conn: &mut DbConnection,
    alias_id: &str,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<AliasEventRow>> {
    let mut query = alias_events::table
        .filter(alias_events::alias_id.eq(alias_id))
        .order(alias_events::sequence.desc())
        .limit(limit)
        .select(AliasEventRow::as_select())
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(alias_events::sequence.lt(before));
    }
    query.load(conn)
}

/// The versions (by name) any alias of the model named at some time since `since`: those it moved to,
/// and those it moved away from (they were named until then).
pub fn named_since(
    conn: &mut DbConnection,
    model_id: &str,
    since: chrono::NaiveDateTime,
) -> QueryResult<Vec<String>> {
    let alias_ids: Vec<String> = aliases::table
        .filter(aliases::model_id.eq(model_id))
        .select(aliases::id)
        .load(conn)?;
    let events: Vec<(Option<String>, String)> = alias_events::table
        .filter(alias_events::alias_id.eq_any(alias_ids))
        .filter(alias_events::at.ge(since))
        .select((alias_events::from_version, alias_events::to_version))
        .load(conn)?;
    let mut named: Vec<String> = events
        .into_iter()
        .flat_map(|(from, to)| from.into_iter().chain(std::iter::once(to)))
        .collect();
    named.sort();
    named.dedup();
    Ok(named)
}

/// The ids of the model's versions an alias names now.
pub fn aliased_version_ids(conn: &mut DbConnection, model_id: &str) -> QueryResult<Vec<String>> {
    aliases::table
        .filter(aliases::model_id.eq(model_id))
        .select(aliases::version_id)
        .load(conn)
}
