//! Blobs a repository holds through the OCI endpoint without a version naming them.

use diesel::prelude::*;

use crate::db::schema::{blobs, oci_blob_links};
use crate::db::{DbConnection, now};

/// Links a stored blob to a repository (linking twice is harmless). Not for use inside a transaction
/// (the ignored unique violation would abort it on PostgreSQL).
pub fn link(
    conn: &mut DbConnection,
    namespace: &str,
    model: &str,
    digest: &str,
) -> QueryResult<()> {
    // Looked up first rather than a unique violation ignored: that would abort a PostgreSQL transaction.
    let linked = oci_blob_links::table
        .find((namespace, model, digest))
        .count()
        .get_result::<i64>(conn)?;
    if linked == 0 {
        diesel::insert_into(oci_blob_links::table)
            .values((
                oci_blob_links::namespace.eq(namespace),
                oci_blob_links::model.eq(model),
                oci_blob_links::digest.eq(digest),
                oci_blob_links::created_at.eq(now()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The size of a blob linked to the repository.
pub fn size(
    conn: &mut DbConnection,
    namespace: &str,
    model: &str,
    digest: &str,
) -> QueryResult<Option<i64>> {
    oci_blob_links::table
        .inner_join(blobs::table.on(blobs::digest.eq(oci_blob_links::digest)))
        .filter(oci_blob_links::namespace.eq(namespace))
        .filter(oci_blob_links::model.eq(model))
        .filter(oci_blob_links::digest.eq(digest))
        .select(blobs::size)
        .first(conn)
        .optional()
}

/// Unlinks a blob; false when it was not linked.
pub fn unlink(
    conn: &mut DbConnection,
    namespace: &str,
    model: &str,
    digest: &str,
) -> QueryResult<bool> {
    let removed = diesel::delete(
        oci_blob_links::table
            .filter(oci_blob_links::namespace.eq(namespace))
            .filter(oci_blob_links::model.eq(model))
            .filter(oci_blob_links::digest.eq(digest)),
    )
    .execute(conn)?;
    Ok(removed > 0)
}

/// Forgets every link of a repository (its model is deleted).
pub fn unlink_all(conn: &mut DbConnection, namespace: &str, model: &str) -> QueryResult<()> {
    diesel::delete(
        oci_blob_links::table
            .filter(oci_blob_links::namespace.eq(namespace))
            .filter(oci_blob_links::model.eq(model)),
    )
    .execute(conn)
    .map(|_| ())
}
