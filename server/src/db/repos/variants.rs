//! Variants a version's pipeline produced, and the blobs that hold them.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::records::{VariantFileRow, VariantRow};
use crate::db::schema::{variant_files, variants};

/// Stores a variant and its files, replacing an earlier one of the same name (a retried job).
pub fn replace(
    conn: &mut DbConnection,
    variant: &VariantRow,
    files: &[VariantFileRow],
) -> QueryResult<()> {
    diesel::delete(
        variant_files::table
            .filter(variant_files::version_id.eq(&variant.version_id))
            .filter(variant_files::variant.eq(&variant.name)),
    )
    .execute(conn)?;
    diesel::delete(
        variants::table
            .filter(variants::version_id.eq(&variant.version_id))
            .filter(variants::name.eq(&variant.name)),
    )
    .execute(conn)?;
    diesel::insert_into(variants::table)
        .values(variant)
        .execute(conn)?;
    // Row by row: diesel's MultiConnection has no batch insert.
    for file in files {
        diesel::insert_into(variant_files::table)
            .values(file)
            .execute(conn)?;
    }
    Ok(())
}

/// A version's variants by name, each with its files (model file first).
pub fn for_version(
    conn: &mut DbConnection,
    version_id: &str,
) -> QueryResult<Vec<(VariantRow, Vec<VariantFileRow>)>> {
    let rows: Vec<VariantRow> = variants::table
        .filter(variants::version_id.eq(version_id))
        .order(variants::name.asc())
        .select(VariantRow::as_select())
        .load(conn)?;
    let mut files: Vec<VariantFileRow> = variant_files::table
        .filter(variant_files::version_id.eq(version_id))
        .select(VariantFileRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let (mine, rest): (Vec<_>, Vec<_>) =
                files.drain(..).partition(|f| f.variant == row.name);
            files = rest;
            (row, mine)
        })
        .collect())
}

pub fn find_file(
    conn: &mut DbConnection,
    version_id: &str,
    variant: &str,
    path: &str,
) -> QueryResult<Option<VariantFileRow>> {
    variant_files::table
        .filter(variant_files::version_id.eq(version_id))
        .filter(variant_files::variant.eq(variant))
        .filter(variant_files::path.eq(path))
        .select(VariantFileRow::as_select())
        .first(conn)
        .optional()
}

/// The size of a variant file with this digest in any version of the model, when one has it.
pub fn file_size_by_digest(
    conn: &mut DbConnection,
    model_id: &str,
    digest: &str,
) -> QueryResult<Option<i64>> {
    use crate::db::schema::versions;
    variant_files::table
        .filter(variant_files::digest.eq(digest))
        .filter(
            variant_files::version_id.eq_any(
                versions::table
                    .filter(versions::model_id.eq(model_id))
                    .select(versions::id),
            ),
        )
        .select(variant_files::size)
        .first(conn)
        .optional()
}

/// The deployable variants (version id, variant name) of a model's versions, in one query.
pub fn deployable_of_model(
    conn: &mut DbConnection,
    model_id: &str,
) -> QueryResult<Vec<(String, String)>> {
    use crate::db::schema::versions;
    variants::table
        .filter(variants::status.eq("deployable"))
        .filter(
            variants::version_id.eq_any(
                versions::table
                    .filter(versions::model_id.eq(model_id))
                    .select(versions::id),
            ),
        )
        .select((variants::version_id, variants::name))
        .load(conn)
}

/// Whether a version has a deployable variant of this name.
pub fn is_deployable(conn: &mut DbConnection, version_id: &str, name: &str) -> QueryResult<bool> {
    variants::table
        .filter(variants::version_id.eq(version_id))
        .filter(variants::name.eq(name))
        .filter(variants::status.eq("deployable"))
        .count()
        .get_result::<i64>(conn)
        .map(|n| n > 0)
}
