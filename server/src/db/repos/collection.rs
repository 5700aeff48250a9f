//! Garbage collection's queries: blob rows in digest order, who references them, and the two steps of a
//! deletion (condemn, then forget once the object is gone).

use std::collections::HashSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::IN_LIST_BATCH;
use super::blobs::{self, CONDEMNED, LIVE, MISSING, PENDING, RowLock};
use crate::db::DbConnection;
use crate::db::schema::{
    blob_grants, blobs as blob_rows, oci_blob_links, oci_tar_layers, upload_sessions,
    variant_files, version_files,
};

/// A blob row as collection sees it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = blob_rows)]
pub struct BlobEntry {
    pub digest: String,
    pub size: i64,
    pub state: String,
    pub created_at: NaiveDateTime,
}

/// When rows become collectable.
#[derive(Debug, Clone, Copy)]
pub struct Cutoffs {
    /// A live (or missing) blob recorded before this, and referenced by nothing, is garbage.
    pub recorded_before: NaiveDateTime,
    /// A grant given after this still protects its blob (a push that uploaded it may yet commit).
    pub granted_after: NaiveDateTime,
    /// A pending blob reserved before this was abandoned by its writer.
    pub reserved_before: NaiveDateTime,
}

impl BlobEntry {
    /// Old enough to go, if nothing references it.
    pub fn expired(&self, cutoffs: &Cutoffs) -> bool {
        match self.state.as_str() {
            LIVE | MISSING => self.created_at < cutoffs.recorded_before,
            PENDING => self.created_at < cutoffs.reserved_before,
            _ => false,
        }
    }
}

/// The next `limit` blob rows after `after` (keyset pagination: bounded memory over any number of rows).
pub fn page(conn: &mut DbConnection, after: &str, limit: i64) -> QueryResult<Vec<BlobEntry>> {
    blob_rows::table
        .filter(blob_rows::digest.gt(after))
        .order(blob_rows::digest.asc())
        .limit(limit)
        .select(BlobEntry::as_select())
        .load(conn)
}

/// Of `digests`, those something still references: a version's or a variant's file, an upload session
/// in progress, a grant given within the grace period, an OCI repository's link or tar layer.
pub fn referenced(
    conn: &mut DbConnection,
    digests: &[String],
    granted_after: NaiveDateTime,
) -> QueryResult<HashSet<String>> {
    // Each table that can name a blob, by the column that does: the digests of `batch` it names.
    macro_rules! named_in {
        ($table:ident . $column:ident, $batch:expr) => {
            $table::table
                .filter($table::$column.eq_any($batch))
                .select($table::$column)
                .distinct()
                .load::<String>(conn)?
        };
    }
    let mut found = HashSet::new();
    for batch in digests.chunks(IN_LIST_BATCH) {
        found.extend(named_in!(version_files.digest, batch));
        found.extend(named_in!(variant_files.digest, batch));
        found.extend(named_in!(upload_sessions.digest, batch));
        found.extend(named_in!(oci_blob_links.digest, batch));
        found.extend(named_in!(oci_tar_layers.file_digest, batch));
        // A grant protects its blob only within the grace period.
        found.extend(
            blob_grants::table
                .filter(blob_grants::digest.eq_any(batch))
                .filter(blob_grants::created_at.gt(granted_after))
                .select(blob_grants::digest)
                .distinct()
                .load::<String>(conn)?,
        );
    }
    Ok(found)
}

/// Garbage among `digests` (see [`BlobEntry::expired`] and [`referenced`]), looked at without locks: what
/// a dry run reports and what [`condemn`] then decides again.
pub fn garbage(
    conn: &mut DbConnection,
    rows: &[BlobEntry],
    cutoffs: &Cutoffs,
) -> QueryResult<Vec<BlobEntry>> {
    let expired: Vec<&BlobEntry> = rows.iter().filter(|r| r.expired(cutoffs)).collect();
    let digests: Vec<String> = expired.iter().map(|r| r.digest.clone()).collect();
    let referenced = referenced(conn, &digests, cutoffs.granted_after)?;
    Ok(expired
        .into_iter()
        .filter(|r| !referenced.contains(&r.digest))
        .cloned()
        .collect())
}

/// In the caller's transaction: condemns those of `digests` that are garbage now. Their rows are locked
/// first and read again after (on PostgreSQL a fresh statement sees what committed while it waited), so a
/// blob a version referenced since it was marked stays. Returns the condemned rows.
pub fn condemn(
    conn: &mut DbConnection,
    digests: &[String],
    cutoffs: &Cutoffs,
) -> QueryResult<Vec<BlobEntry>> {
    blobs::lock(conn, digests, RowLock::Update)?;
    let mut rows = Vec::with_capacity(digests.len());
    for batch in digests.chunks(IN_LIST_BATCH) {
        rows.extend(
            blob_rows::table
                .filter(blob_rows::digest.eq_any(batch))
                .select(BlobEntry::as_select())
                .load::<BlobEntry>(conn)?,
        );
    }
    let chosen = garbage(conn, &rows, cutoffs)?;
    let names: Vec<&String> = chosen.iter().map(|r| &r.digest).collect();
    for batch in names.chunks(IN_LIST_BATCH) {
        diesel::update(blob_rows::table.filter(blob_rows::digest.eq_any(batch)))
            .set(blob_rows::state.eq(CONDEMNED))
            .execute(conn)?;
    }
    Ok(chosen)
}

/// Condemned rows after `after` (this run's, or those a run killed mid-sweep left).
pub fn condemned(conn: &mut DbConnection, after: &str, limit: i64) -> QueryResult<Vec<BlobEntry>> {
    blob_rows::table
        .filter(blob_rows::state.eq(CONDEMNED))
        .filter(blob_rows::digest.gt(after))
        .order(blob_rows::digest.asc())
        .limit(limit)
        .select(BlobEntry::as_select())
        .load(conn)
}

/// Of `digests`, those still condemned (another run may have finished them meanwhile).
pub fn still_condemned(conn: &mut DbConnection, digests: &[String]) -> QueryResult<Vec<String>> {
    let mut found = Vec::new();
    for batch in digests.chunks(IN_LIST_BATCH) {
        found.extend(
            blob_rows::table
                .filter(blob_rows::digest.eq_any(batch))
                .filter(blob_rows::state.eq(CONDEMNED))
                .select(blob_rows::digest)
                .load::<String>(conn)?,
        );
    }
    Ok(found)
}

/// Forgets condemned blobs whose objects are gone: their grants, then their rows; in the caller's
/// transaction. A digest no longer condemned (taken over by a writer) keeps both.
pub fn forget(conn: &mut DbConnection, digests: &[String]) -> QueryResult<usize> {
    blobs::lock(conn, digests, RowLock::Update)?;
    let condemned = still_condemned(conn, digests)?;
    let mut forgotten = 0;
    for batch in condemned.chunks(IN_LIST_BATCH) {
        diesel::delete(blob_grants::table.filter(blob_grants::digest.eq_any(batch)))
            .execute(conn)?;
        forgotten += diesel::delete(
            blob_rows::table
                .filter(blob_rows::digest.eq_any(batch))
                .filter(blob_rows::state.eq(CONDEMNED)),
        )
        .execute(conn)?;
    }
    Ok(forgotten)
}

/// Drops the OCI tar layers of files no version or variant holds any more: they exist to serve versions,
/// and each keeps its file's blob. Returns how many.
pub fn prune_tar_layers(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::sql_query(
        "DELETE FROM oci_tar_layers \
         WHERE NOT EXISTS (SELECT 1 FROM version_files WHERE digest = oci_tar_layers.file_digest) \
         AND NOT EXISTS (SELECT 1 FROM variant_files WHERE digest = oci_tar_layers.file_digest)",
    )
    .execute(conn)
}

/// Whether a blob row (in any state) or an upload in progress names this object: the store check asks
/// again right before it calls an object an orphan (it may have been recorded since the listing).
pub fn recorded(
    conn: &mut DbConnection,
    digest: Option<&str>,
    upload: Option<&str>,
) -> QueryResult<bool> {
    use crate::db::schema::oci_uploads;
    if let Some(digest) = digest {
        let rows: i64 = blob_rows::table
            .filter(blob_rows::digest.eq(digest))
            .count()
            .get_result(conn)?;
        if rows > 0 {
            return Ok(true);
        }
    }
    if let Some(id) = upload {
        let sessions: i64 = upload_sessions::table
            .filter(upload_sessions::id.eq(id))
            .count()
            .get_result(conn)?;
        let oci: i64 = oci_uploads::table
            .filter(oci_uploads::id.eq(id))
            .count()
            .get_result(conn)?;
        return Ok(sessions + oci > 0);
    }
    Ok(false)
}

/// Blob rows whose digests fall in `[from, to)`: one slice of the store check.
pub fn in_range(conn: &mut DbConnection, from: &str, to: &str) -> QueryResult<Vec<BlobEntry>> {
    blob_rows::table
        .filter(blob_rows::digest.ge(from))
        .filter(blob_rows::digest.lt(to))
        .order(blob_rows::digest.asc())
        .select(BlobEntry::as_select())
        .load(conn)
}

/// The ids of every upload in progress (kiln's sessions and OCI's), whose staged objects are not orphans.
pub fn upload_ids(conn: &mut DbConnection) -> QueryResult<HashSet<String>> {
    use crate::db::schema::oci_uploads;
    let mut ids: HashSet<String> = upload_sessions::table
        .select(upload_sessions::id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    ids.extend(
        oci_uploads::table
            .select(oci_uploads::id)
            .load::<String>(conn)?,
    );
    Ok(ids)
}

/// The versions holding `digest` as a file or a variant's file: (version id, `namespace/model:version`).
pub fn holders(conn: &mut DbConnection, digest: &str) -> QueryResult<Vec<(String, String)>> {
    use crate::db::schema::{models, namespaces, versions};
    let mut ids: Vec<String> = version_files::table
        .filter(version_files::digest.eq(digest))
        .select(version_files::version_id)
        .load(conn)?;
    ids.extend(
        variant_files::table
            .filter(variant_files::digest.eq(digest))
            .select(variant_files::version_id)
            .load::<String>(conn)?,
    );
    ids.sort();
    ids.dedup();
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    for batch in ids.chunks(IN_LIST_BATCH) {
        rows.extend(
            versions::table
                .inner_join(models::table.inner_join(namespaces::table))
                .filter(versions::id.eq_any(batch))
                .select((
                    versions::id,
                    namespaces::name,
                    models::name,
                    versions::version,
                ))
                .load::<(String, String, String, String)>(conn)?,
        );
    }
    rows.sort_by(|a, b| (&a.1, &a.2, &a.3).cmp(&(&b.1, &b.2, &b.3)));
    Ok(rows
        .into_iter()
        .map(|(id, ns, model, version)| (id, format!("{ns}/{model}:{version}")))
        .collect())
}

/// Records that a live blob's object is missing or wrong: it is no longer usable, so a push of the same
/// bytes uploads them again (and restores it). Its row is locked until the caller's transaction ends, so
/// a version committing with it finishes first and is then among its holders.
pub fn mark_missing(conn: &mut DbConnection, digest: &str) -> QueryResult<()> {
    blobs::lock(
        conn,
        std::slice::from_ref(&digest.to_owned()),
        RowLock::Update,
    )?;
    diesel::update(
        blob_rows::table
            .filter(blob_rows::digest.eq(digest))
            .filter(blob_rows::state.eq(LIVE)),
    )
    .set(blob_rows::state.eq(MISSING))
    .execute(conn)?;
    Ok(())
}

/// Damaged versions (id, `namespace/model:version`) whose every blob is live again.
pub fn whole_again(conn: &mut DbConnection) -> QueryResult<Vec<(String, String)>> {
    use crate::db::schema::{models, namespaces, versions};
    let damaged: Vec<(String, String, String, String)> = versions::table
        .inner_join(models::table.inner_join(namespaces::table))
        .filter(versions::damage.is_not_null())
        .select((
            versions::id,
            namespaces::name,
            models::name,
            versions::version,
        ))
        .load(conn)?;
    let mut whole = Vec::new();
    for (id, ns, model, version) in damaged {
        let mut digests: Vec<String> = version_files::table
            .filter(version_files::version_id.eq(&id))
            .select(version_files::digest)
            .load(conn)?;
        digests.extend(
            variant_files::table
                .filter(variant_files::version_id.eq(&id))
                .select(variant_files::digest)
                .load::<String>(conn)?,
        );
        let mut not_live: i64 = 0;
        for batch in digests.chunks(IN_LIST_BATCH) {
            not_live += blob_rows::table
                .filter(blob_rows::digest.eq_any(batch))
                .filter(blob_rows::state.ne(LIVE))
                .count()
                .get_result::<i64>(conn)?;
        }
        if not_live == 0 {
            whole.push((id, format!("{ns}/{model}:{version}")));
        }
    }
    Ok(whole)
}
