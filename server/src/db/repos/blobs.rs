use diesel::prelude::*;

use crate::db::records::BlobRow;
use crate::db::repos::models::Visible;
use crate::db::schema::{blob_grants, blobs, models, version_files, versions};
use crate::db::{DbConnection, now};

/// The subset of `digests` that has a recorded blob, with sizes.
pub fn find_many(conn: &mut DbConnection, digests: &[String]) -> QueryResult<Vec<BlobRow>> {
    let mut found = Vec::new();
    for batch in digests.chunks(super::IN_LIST_BATCH) {
        found.extend(
            blobs::table
                .filter(blobs::digest.eq_any(batch))
                .select(BlobRow::as_select())
                .load(conn)?,
        );
    }
    Ok(found)
}

/// Records a blob the object store has confirmed. Recording it twice is harmless: keys are content-addressed.
/// Not for use inside a transaction: on PostgreSQL the ignored unique violation would abort it.
pub fn record(conn: &mut DbConnection, digest: &str, size: i64) -> QueryResult<()> {
    let row = BlobRow {
        digest: digest.to_owned(),
        size,
        created_at: now(),
    };
    match diesel::insert_into(blobs::table).values(&row).execute(conn) {
        Ok(_) => Ok(()),
        Err(e) if super::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Lets `user_id` use `digest` in versions (they uploaded its bytes). Granting twice is harmless.
/// Not for use inside a transaction (the ignored unique violation would abort it on PostgreSQL).
pub fn grant(conn: &mut DbConnection, digest: &str, user_id: &str) -> QueryResult<()> {
    let inserted = diesel::insert_into(blob_grants::table)
        .values((
            blob_grants::digest.eq(digest),
            blob_grants::user_id.eq(user_id),
            blob_grants::created_at.eq(now()),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if super::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e),
    }
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
