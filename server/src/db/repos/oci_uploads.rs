//! Blob uploads through the OCI endpoint, whose digest and size are known only when they finish.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::oci_uploads;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oci_uploads)]
pub struct OciUploadRow {
    pub id: String,
    pub namespace: String,
    pub model: String,
    pub user_id: String,
    pub upload_offset: i64,
    pub part_size: i64,
    pub backend_upload_id: String,
    /// The staged whole parts' ETags, in order, as a JSON array.
    pub part_etags: String,
    pub hash_state: Vec<u8>,
    /// The request writing to it now, and when it last said so.
    pub writer: Option<String>,
    pub writer_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl OciUploadRow {
    pub fn etags(&self) -> Vec<String> {
        serde_json::from_str(&self.part_etags).unwrap_or_default()
    }
}

pub fn insert(conn: &mut DbConnection, row: &OciUploadRow) -> QueryResult<()> {
    diesel::insert_into(oci_uploads::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<OciUploadRow>> {
    oci_uploads::table
        .find(id)
        .select(OciUploadRow::as_select())
        .first(conn)
        .optional()
}

/// Makes `writer` the upload's one writer while it stands at `offset`, unless another writer said
/// it was writing after `stale_before`; false when one is, or the upload moved on.
pub fn claim(
    conn: &mut DbConnection,
    id: &str,
    offset: i64,
    writer: &str,
    at: NaiveDateTime,
    stale_before: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        oci_uploads::table
            .filter(oci_uploads::id.eq(id))
            .filter(oci_uploads::upload_offset.eq(offset))
            .filter(
                oci_uploads::writer
                    .is_null()
                    .or(oci_uploads::writer_at.lt(stale_before)),
            ),
    )
    .set((
        oci_uploads::writer.eq(writer),
        oci_uploads::writer_at.eq(at),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// The writer says it is still writing; false when it no longer holds the upload.
pub fn still_writing(
    conn: &mut DbConnection,
    id: &str,
    writer: &str,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        oci_uploads::table
            .filter(oci_uploads::id.eq(id))
            .filter(oci_uploads::writer.eq(writer)),
    )
    .set(oci_uploads::writer_at.eq(at))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Lets go of every claim named by `pattern` (an ended server run's: see `Claimant`); how many.
pub fn let_go_of_claims(conn: &mut DbConnection, pattern: &str) -> QueryResult<usize> {
    diesel::update(oci_uploads::table.filter(oci_uploads::writer.like(pattern)))
        .set((
            oci_uploads::writer.eq(None::<String>),
            oci_uploads::writer_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
}

/// The writer lets go without moving the upload (its request failed).
pub fn release(conn: &mut DbConnection, id: &str, writer: &str) -> QueryResult<()> {
    diesel::update(
        oci_uploads::table
            .filter(oci_uploads::id.eq(id))
            .filter(oci_uploads::writer.eq(writer)),
    )
    .set((
        oci_uploads::writer.eq(None::<String>),
        oci_uploads::writer_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)
    .map(|_| ())
}

/// The writer moves the upload to `to_offset` with its new parts and hash state, and lets go; false
/// when it no longer held it (nothing changes then).
#[allow(clippy::too_many_arguments)]
pub fn advance(
    conn: &mut DbConnection,
    id: &str,
    writer: &str,
    to_offset: i64,
    part_etags: &str,
    hash_state: &[u8],
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        oci_uploads::table
            .filter(oci_uploads::id.eq(id))
            .filter(oci_uploads::writer.eq(writer)),
    )
    .set((
        oci_uploads::upload_offset.eq(to_offset),
        oci_uploads::part_etags.eq(part_etags),
        oci_uploads::hash_state.eq(hash_state),
        oci_uploads::updated_at.eq(at),
        oci_uploads::writer.eq(None::<String>),
        oci_uploads::writer_at.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    diesel::delete(oci_uploads::table.find(id))
        .execute(conn)
        .map(|_| ())
}

pub fn idle_since(
    conn: &mut DbConnection,
    cutoff: NaiveDateTime,
) -> QueryResult<Vec<OciUploadRow>> {
    oci_uploads::table
        .filter(oci_uploads::updated_at.lt(cutoff))
        .select(OciUploadRow::as_select())
        .load(conn)
}
