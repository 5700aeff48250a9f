use diesel::prelude::*;

use crate::db::records::BlobRow;
use crate::db::schema::blobs;
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

pub fn exists(conn: &mut DbConnection, digest: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(blobs::table.find(digest))).get_result(conn)
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
