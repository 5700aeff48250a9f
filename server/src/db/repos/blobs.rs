//! Blob rows. A row's `state` is the database's word on the bytes (see the storage_lifecycle migration):
//! only `live` blobs are usable, so nothing can reference bytes collection is deleting, and a writer
//! reserves a digest (`pending`) before it puts bytes in the store, so collection never deletes an object
//! a writer is about to record.

use diesel::prelude::*;

use crate::db::records::BlobRow;
use crate::db::repos::models::Visible;
use crate::db::schema::{blob_grants, blobs, models, version_files, versions};
use crate::db::{DbConnection, now};

pub const LIVE: &str = "live";
pub const PENDING: &str = "pending";
pub const CONDEMNED: &str = "condemned";
pub const MISSING: &str = "missing";

/// The subset of `digests` whose blobs are live (stored and usable), with sizes.
pub fn find_many(conn: &mut DbConnection, digests: &[String]) -> QueryResult<Vec<BlobRow>> {
    let mut found = Vec::new();
    for batch in digests.chunks(super::IN_LIST_BATCH) {
        found.extend(
            blobs::table
                .filter(blobs::digest.eq_any(batch))
                .filter(blobs::state.eq(LIVE))
                .select(BlobRow::as_select())
                .load(conn)?,
        );
    }
    Ok(found)
}

/// What a writer about to put a blob's bytes in the store is to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The bytes are stored already: drop the copy in hand.
    Stored,
    /// Put the bytes in the store, then [`mark_live`].
    Write,
    /// Collection is deleting this blob's object right now; try again once it is done.
    Condemned,
}

/// The lease a garbage collection holds while it runs.
pub const COLLECTION_LEASE: &str = "garbage-collection";

/// Reserves `digest` for a writer, in the caller's transaction: a new row is `pending`, which collection
/// leaves alone until it has been abandoned for longer than uploads are kept. Concurrent writers of the
/// same bytes both write (content-addressed: the same object), and the first insert wins. A condemned
/// row waits for the collection deleting it, unless none runs (one was stopped mid-sweep): then the
/// writer takes it over, as the next collection would only finish deleting it.
pub fn reserve(conn: &mut DbConnection, digest: &str, size: i64) -> QueryResult<Reservation> {
    lock(
        conn,
        std::slice::from_ref(&digest.to_owned()),
        RowLock::Update,
    )?;
    let state: Option<String> = blobs::table
        .find(digest)
        .select(blobs::state)
        .first(conn)
        .optional()?;
    let collecting =
        state.as_deref() == Some(CONDEMNED) && super::leases::held(conn, COLLECTION_LEASE, now())?;
    match state.as_deref() {
        Some(LIVE) => Ok(Reservation::Stored),
        Some(CONDEMNED) if collecting => Ok(Reservation::Condemned),
        Some(_) => {
            // Pending (another writer, or one that died) or missing (being restored): this writer's now.
            diesel::update(blobs::table.find(digest))
                .set((
                    blobs::state.eq(PENDING),
                    blobs::size.eq(size),
                    blobs::created_at.eq(now()),
                ))
                .execute(conn)?;
            Ok(Reservation::Write)
        }
        None => {
            diesel::insert_into(blobs::table)
                .values((
                    blobs::digest.eq(digest),
                    blobs::size.eq(size),
                    blobs::created_at.eq(now()),
                    blobs::state.eq(PENDING),
                ))
                .execute(conn)?;
            Ok(Reservation::Write)
        }
    }
}

/// Records that a reserved blob's bytes are in the store (in the transaction that references it, where
/// there is one, so collection never sees it live and unreferenced with a fresh writer still holding it).
pub fn mark_live(conn: &mut DbConnection, digest: &str) -> QueryResult<()> {
    diesel::update(blobs::table.find(digest))
        .filter(blobs::state.eq(PENDING))
        .set(blobs::state.eq(LIVE))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
pub enum RowLock {
    /// Held by whoever is about to reference the blobs: collection cannot condemn them meanwhile.
    Share,
    /// Held by collection and writers while they decide a blob's state.
    Update,
}

/// Locks the rows of `digests` until the caller's transaction ends. PostgreSQL runs transactions side by
/// side, so a reference and a condemnation of the same blob must queue on its row; SQLite has one writer
/// at a time anyway.
pub fn lock(conn: &mut DbConnection, digests: &[String], mode: RowLock) -> QueryResult<()> {
    if let DbConnection::Postgresql(pg) = conn {
        let clause = match mode {
            RowLock::Share => "FOR SHARE",
            RowLock::Update => "FOR UPDATE",
        };
        for batch in digests.chunks(super::IN_LIST_BATCH) {
            // Sorted, so two lockers of overlapping sets take the rows in the same order (no deadlock).
            let mut batch = batch.to_vec();
            batch.sort();
            diesel::sql_query(format!(
                "SELECT digest FROM blobs WHERE digest = ANY($1) ORDER BY digest {clause}"
            ))
            .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(batch)
            .execute(pg)?;
        }
    }
    Ok(())
}

/// Lets `user_id` use `digest` in versions (they uploaded its bytes, or proved they hold them). A grant
/// also keeps the blob from collection for the grace period after it was last given, so bytes pushed a
/// moment ago survive until the version naming them is committed. Granting again renews it.
pub fn grant(conn: &mut DbConnection, digest: &str, user_id: &str) -> QueryResult<()> {
    let renewed = diesel::update(blob_grants::table.find((digest, user_id)))
        .set(blob_grants::created_at.eq(now()))
        .execute(conn)?;
    if renewed == 0 {
        diesel::insert_into(blob_grants::table)
            .values((
                blob_grants::digest.eq(digest),
                blob_grants::user_id.eq(user_id),
                blob_grants::created_at.eq(now()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The blobs among `digests` that a caller may use: those they uploaded, and those held by a version of a
/// model they can read. Knowing a digest is not enough to use (and so read) someone else's blob.
pub fn usable(
    conn: &mut DbConnection,
    user_id: Option<&str>,
    visible: &Visible,
    digests: &[String],
) -> QueryResult<Vec<BlobRow>> {
    let mut allowed: Vec<String> = Vec::new();
    for batch in digests.chunks(super::IN_LIST_BATCH) {
        if let Visible::All = visible {
            allowed.extend(batch.iter().cloned());
            continue;
        }
        if let Some(user) = user_id {
            allowed.extend(
                blob_grants::table
                    .filter(blob_grants::user_id.eq(user))
                    .filter(blob_grants::digest.eq_any(batch))
                    .select(blob_grants::digest)
                    .load::<String>(conn)?,
            );
        }
        let mut readable = version_files::table
            .inner_join(versions::table.inner_join(models::table))
            .filter(version_files::digest.eq_any(batch))
            .select(version_files::digest)
            .into_boxed();
        if let Visible::Some { namespace_ids } = visible {
            readable = readable.filter(
                models::visibility
                    .eq("public")
                    .or(models::namespace_id.eq_any(namespace_ids.clone())),
            );
        }
        allowed.extend(readable.load::<String>(conn)?);
    }
    allowed.sort();
    allowed.dedup();
    find_many(conn, &allowed)
}
