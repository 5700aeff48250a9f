//! The manifests, configs and signatures the OCI endpoint has served, by digest, per model.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{oci_documents, oci_version_manifests};

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

/// Forgets a document; false when there was none.
pub fn delete(conn: &mut DbConnection, model_id: &str, digest: &str) -> QueryResult<bool> {
    let removed = diesel::delete(
        oci_documents::table
            .filter(oci_documents::model_id.eq(model_id))
            .filter(oci_documents::digest.eq(digest)),
    )
    .execute(conn)?;
    Ok(removed > 0)
}

/// Records the manifest a client pushed under a version's tag.
pub fn set_version_manifest(
    conn: &mut DbConnection,
    model_id: &str,
    version_id: &str,
    digest: &str,
) -> QueryResult<()> {
    diesel::insert_into(oci_version_manifests::table)
        .values((
            oci_version_manifests::version_id.eq(version_id),
            oci_version_manifests::model_id.eq(model_id),
            oci_version_manifests::digest.eq(digest),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The digest of the manifest pushed for a version, if one was.
pub fn version_manifest(conn: &mut DbConnection, version_id: &str) -> QueryResult<Option<String>> {
    oci_version_manifests::table
        .find(version_id)
        .select(oci_version_manifests::digest)
        .first(conn)
        .optional()
}

/// The versions pushed with this manifest (several tags may name the same bytes).
pub fn versions_pushed_as(
    conn: &mut DbConnection,
    model_id: &str,
    digest: &str,
) -> QueryResult<Vec<String>> {
    oci_version_manifests::table
        .filter(oci_version_manifests::model_id.eq(model_id))
        .filter(oci_version_manifests::digest.eq(digest))
        .select(oci_version_manifests::version_id)
        .load(conn)
}

/// Names of the model's versions pushed through `/v2/` that the pipeline has not finished (nor
/// failed): their tags answer from the push on.
pub fn pushed_versions_in_progress(
    conn: &mut DbConnection,
    model_id: &str,
) -> QueryResult<Vec<String>> {
    use crate::db::schema::versions;
    let pushed: Vec<String> = oci_version_manifests::table
        .filter(oci_version_manifests::model_id.eq(model_id))
        .select(oci_version_manifests::version_id)
        .load(conn)?;
    let mut names = Vec::new();
    for batch in pushed.chunks(super::IN_LIST_BATCH) {
        names.extend(
            versions::table
                .filter(versions::id.eq_any(batch))
                .filter(versions::status.eq_any(["pending", "processing"]))
                .select(versions::version)
                .load::<String>(conn)?,
        );
    }
    Ok(names)
}
