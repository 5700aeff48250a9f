//! The manifests, configs and signatures the OCI endpoint has served, by digest, per model.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::oci_documents;

/// A stored document.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oci_documents)]
pub struct OciDocument {
    pub model_id: String,
    pub digest: String,
    pub media_type: String,
    pub body: String,
    /// The version it was written for.
    pub version_id: Option<String>,
    /// For a referrer: the digest of the manifest it refers to.
    pub subject: Option<String>,
    pub artifact_type: Option<String>,
}

/// Keeps a document (once: the same bytes have the same digest).
pub fn remember(conn: &mut DbConnection, document: &OciDocument) -> QueryResult<()> {
    if find(conn, &document.model_id, &document.digest)?.is_some() {
        return Ok(());
    }
    let inserted = diesel::insert_into(oci_documents::table)
        .values(document)
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
        .select(OciDocument::as_select())
        .first(conn)
        .optional()
}

/// The referrers of a manifest, by digest.
pub fn referrers(
    conn: &mut DbConnection,
    model_id: &str,
    subject: &str,
) -> QueryResult<Vec<OciDocument>> {
    oci_documents::table
        .filter(oci_documents::model_id.eq(model_id))
        .filter(oci_documents::subject.eq(subject))
        .order(oci_documents::digest.asc())
        .select(OciDocument::as_select())
        .load(conn)
}
