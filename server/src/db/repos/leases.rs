//! Leases: work one replica does at a time. A lease is held until it expires unless its holder renews
//! it; a replica that dies mid-run loses it by expiry, and another takes over.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::leases;

/// Takes `name` for `holder` until `at + ttl`, when it is free, expired, or already `holder`'s (then it
/// is renewed). The taking is one conditional update, so two replicas that both saw the lease expired
/// cannot both take it. Returns who holds it, and until when, when that is not `holder`.
pub fn acquire(
    conn: &mut DbConnection,
    name: &str,
    holder: &str,
    at: NaiveDateTime,
    ttl: Duration,
) -> QueryResult<Result<(), (String, NaiveDateTime)>> {
    let taken = diesel::update(
        leases::table
            .filter(leases::name.eq(name))
            .filter(leases::holder.eq(holder).or(leases::expires_at.le(at))),
    )
    .set((leases::holder.eq(holder), leases::expires_at.eq(at + ttl)))
    .execute(conn)?;
    if taken == 1 {
        return Ok(Ok(()));
    }
    let current: Option<(String, NaiveDateTime)> = leases::table
        .find(name)
        .select((leases::holder, leases::expires_at))
        .first(conn)
        .optional()?;
    match current {
        Some(other) => Ok(Err(other)),
        None => {
            // The first run ever: a concurrent first insert fails on the key, and the caller retries.
            diesel::insert_into(leases::table)
                .values((
                    leases::name.eq(name),
                    leases::holder.eq(holder),
                    leases::expires_at.eq(at + ttl),
                ))
                .execute(conn)?;
            Ok(Ok(()))
        }
    }
}

/// Whether anyone holds `name` at `at`.
pub fn held(conn: &mut DbConnection, name: &str, at: NaiveDateTime) -> QueryResult<bool> {
    let holders: i64 = leases::table
        .filter(leases::name.eq(name))
        .filter(leases::expires_at.gt(at))
        .count()
        .get_result(conn)?;
    Ok(holders > 0)
}

/// Extends `holder`'s lease; false when it is no longer theirs (it expired and another replica took it).
pub fn renew(
    conn: &mut DbConnection,
    name: &str,
    holder: &str,
    at: NaiveDateTime,
    ttl: Duration,
) -> QueryResult<bool> {
    let renewed = diesel::update(
        leases::table
            .filter(leases::name.eq(name))
            .filter(leases::holder.eq(holder)),
    )
    .set(leases::expires_at.eq(at + ttl))
    .execute(conn)?;
    Ok(renewed == 1)
}

/// Gives the lease up (if still `holder`'s).
pub fn release(conn: &mut DbConnection, name: &str, holder: &str) -> QueryResult<()> {
    diesel::delete(
        leases::table
            .filter(leases::name.eq(name))
            .filter(leases::holder.eq(holder)),
    )
    .execute(conn)?;
    Ok(())
}
