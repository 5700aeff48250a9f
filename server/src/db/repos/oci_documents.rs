//! The manifests and configs the OCI endpoint has served, by digest, per model.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::oci_documents;

/// A stored document: its media type and bytes.
pub struct OciDocument {
    pub media_type: String,
    pub body: String,
}

/// Keeps a document's bytes for its model (once: the same bytes have the same digest).
pub fn remember(
    conn: &mut DbConnection,
    model_id: &str,
    digest: &str,
    media_type: &str,
    body: &str,
) -> QueryResult<()> {
    if find(conn, model_id, digest)?.is_some() {
        return Ok(());
    }
    let inserted = diesel::insert_into(oci_documents::table)
        .values((
            oci_documents::model_id.eq(model_id),
            oci_documents::digest.eq(digest),
            oci_documents::media_type.eq(media_type),
            oci_documents::body.eq(body),
        ))
        .execute(conn);
    match inserted {
        // Two requests raced to keep the same bytes: either row is the one.
        Err(e) if super::is_unique_violation(&e) => Ok(()),
        other => other.map(|_| ()),
    }
}

pub fn find(
    conn: &mut DbConnection,
    model_id: &str,
    digest: &str,
) -> QueryResult<Option<OciDocument>> {
    oci_documents::table
        .filter(oci_documents::model_id.eq(model_id))
        .filter(oci_documents::digest.eq(digest))
        .select((oci_documents::media_type, oci_documents::body))
        .first::<(String, String)>(conn)
        .optional()
        .map(|row| row.map(|(media_type, body)| OciDocument { media_type, body }))
}
