//! Files as tar layers of a container image: the headers before each file's bytes, by layer digest.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::oci_tar_layers;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = oci_tar_layers)]
pub struct TarLayerRow {
    /// The layer's digest (of the whole tar).
    pub digest: String,
    pub file_digest: String,
    /// The file's path in its version (the layer puts it under `models/`).
    pub path: String,
    /// The tar headers before the file's bytes.
    pub header: Vec<u8>,
    pub file_size: i64,
    /// The whole layer's size.
    pub size: i64,
}

pub fn find(conn: &mut DbConnection, digest: &str) -> QueryResult<Option<TarLayerRow>> {
    oci_tar_layers::table
        .find(digest)
        .select(TarLayerRow::as_select())
        .first(conn)
        .optional()
}

/// The layer of a file at a path, once hashed.
pub fn of_file(
    conn: &mut DbConnection,
    file_digest: &str,
    path: &str,
) -> QueryResult<Option<TarLayerRow>> {
    oci_tar_layers::table
        .filter(oci_tar_layers::file_digest.eq(file_digest))
        .filter(oci_tar_layers::path.eq(path))
        .select(TarLayerRow::as_select())
        .first(conn)
        .optional()
}

/// Keeps a hashed layer (once: two requests hashing the same file agree).
pub fn insert(conn: &mut DbConnection, row: &TarLayerRow) -> QueryResult<()> {
    match diesel::insert_into(oci_tar_layers::table)
        .values(row)
        .execute(conn)
    {
        Err(e) if super::is_unique_violation(&e) => Ok(()),
        other => other.map(|_| ()),
    }
}
