use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::records::{VersionFileRow, VersionRow};
use crate::db::schema::{version_files, versions};

pub fn find(
    conn: &mut DbConnection,
    model_id: &str,
    version: &str,
) -> QueryResult<Option<VersionRow>> {
    versions::table
        .filter(versions::model_id.eq(model_id))
        .filter(versions::version.eq(version))
        .select(VersionRow::as_select())
        .first(conn)
        .optional()
}

/// `namespace/model:version`, when `visible` lets the caller read its model (absent and unreadable alike
/// are None, so a caller cannot tell a private model from a missing one).
pub fn find_readable(
    conn: &mut DbConnection,
    namespace: &str,
    model: &str,
    version: &str,
    visible: &super::models::Visible,
) -> QueryResult<Option<VersionRow>> {
    match super::models::find(conn, namespace, model)?.filter(|(_, m)| visible.allows(m)) {
        Some((_, model_row)) => find(conn, &model_row.id, version),
        None => Ok(None),
    }
}

/// Files of a version, ordered by path.
pub fn files(conn: &mut DbConnection, version_id: &str) -> QueryResult<Vec<VersionFileRow>> {
    version_files::table
        .filter(version_files::version_id.eq(version_id))
        .order(version_files::path.asc())
        .select(VersionFileRow::as_select())
        .load(conn)
}

pub fn find_file(
    conn: &mut DbConnection,
    version_id: &str,
    path: &str,
) -> QueryResult<Option<VersionFileRow>> {
    version_files::table
        .filter(version_files::version_id.eq(version_id))
        .filter(version_files::path.eq(path))
        .select(VersionFileRow::as_select())
        .first(conn)
        .optional()
}

/// A version with its file count and total bytes.
pub struct ListedVersion {
    pub row: VersionRow,
    pub file_count: i64,
    pub total_size: i64,
}

/// Names of every version of a model, newest first.
pub fn names(conn: &mut DbConnection, model_id: &str) -> QueryResult<Vec<String>> {
    versions::table
        .filter(versions::model_id.eq(model_id))
        .order((versions::created_at.desc(), versions::version.desc()))
        .select(versions::version)
        .load(conn)
}

pub fn count(conn: &mut DbConnection, model_id: &str) -> QueryResult<i64> {
    versions::table
        .filter(versions::model_id.eq(model_id))
        .count()
        .get_result(conn)
}

/// Versions of a model, newest first, from the one after (`created_at`, `version`) `after`.
pub fn list(
    conn: &mut DbConnection,
    model_id: &str,
    after: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> QueryResult<Vec<ListedVersion>> {
    let mut query = versions::table
        .filter(versions::model_id.eq(model_id))
        .order((versions::created_at.desc(), versions::version.desc()))
        .limit(limit)
        .select(VersionRow::as_select())
        .into_boxed();
    if let Some((at, version)) = after {
        // The first bound alone is redundant; it lets the index range scan start at the cursor instead of
        // filtering every row before it.
        query = query.filter(versions::created_at.le(at)).filter(
            versions::created_at.lt(at).or(versions::created_at
                .eq(at)
                .and(versions::version.lt(version))),
        );
    }
    let rows: Vec<VersionRow> = query.load(conn)?;
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut sizes: Vec<(String, i64)> = Vec::new();
    for batch in ids.chunks(super::IN_LIST_BATCH) {
        sizes.extend(
            version_files::table
                .filter(version_files::version_id.eq_any(batch))
                .select((version_files::version_id, version_files::size))
                .load::<(String, i64)>(conn)?,
        );
    }
    // Per version: (file count, total bytes), in one pass over the file rows.
    let mut totals: std::collections::HashMap<String, (i64, i64)> =
        std::collections::HashMap::new();
    for (version_id, size) in sizes {
        let (count, bytes) = totals.entry(version_id).or_default();
        *count += 1;
        *bytes += size;
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let (file_count, total_size) = totals.get(&row.id).copied().unwrap_or_default();
            ListedVersion {
                file_count,
                total_size,
                row,
            }
        })
        .collect())
}

pub fn insert(
    conn: &mut DbConnection,
    version: &VersionRow,
    files: &[VersionFileRow],
) -> QueryResult<()> {
    diesel::insert_into(versions::table)
        .values(version)
        .execute(conn)?;
    // Row by row: the multi-backend connection has no batch insert (SQLite's differs).
    for file in files {
        diesel::insert_into(version_files::table)
            .values(file)
            .execute(conn)?;
    }
    Ok(())
}

pub fn delete(conn: &mut DbConnection, version_id: &str) -> QueryResult<()> {
    diesel::delete(version_files::table.filter(version_files::version_id.eq(version_id)))
        .execute(conn)?;
    diesel::delete(versions::table.find(version_id)).execute(conn)?;
    Ok(())
}

/// Why the version is not served (a blob the store check found missing or wrong), or None.
pub fn damage(conn: &mut DbConnection, version_id: &str) -> QueryResult<Option<String>> {
    versions::table
        .filter(versions::id.eq(version_id))
        .select(versions::damage)
        .first::<Option<String>>(conn)
        .optional()
        .map(Option::flatten)
}

/// Marks a version damaged (keeping the first reason), or whole again with None.
pub fn set_damage(
    conn: &mut DbConnection,
    version_id: &str,
    damage: Option<&str>,
) -> QueryResult<bool> {
    let target = versions::table.filter(versions::id.eq(version_id));
    let changed = match damage {
        Some(reason) => diesel::update(target.filter(versions::damage.is_null()))
            .set(versions::damage.eq(reason))
            .execute(conn)?,
        None => diesel::update(target.filter(versions::damage.is_not_null()))
            .set(versions::damage.eq(None::<String>))
            .execute(conn)?,
    };
    Ok(changed == 1)
}

pub fn status(conn: &mut DbConnection, version_id: &str) -> QueryResult<Option<String>> {
    versions::table
        .filter(versions::id.eq(version_id))
        .select(versions::status)
        .first(conn)
        .optional()
}

/// Serialises the transactions that publish a version's manifests (benchmark reports, alias moves,
/// re-issues): on PostgreSQL a row lock held until the caller's transaction ends, so each sees what the
/// one before it committed; SQLite has one writer at a time anyway.
pub fn lock(conn: &mut DbConnection, version_id: &str) -> QueryResult<()> {
    if let DbConnection::Postgresql(pg) = conn {
        diesel::sql_query("SELECT id FROM versions WHERE id = $1 FOR UPDATE")
            .bind::<diesel::sql_types::Text, _>(version_id)
            .execute(pg)?;
    }
    Ok(())
}

pub fn by_id(conn: &mut DbConnection, version_id: &str) -> QueryResult<VersionRow> {
    versions::table
        .filter(versions::id.eq(version_id))
        .select(VersionRow::as_select())
        .first(conn)
}

/// The namespace and model names and the version row, for a version id.
pub fn context(
    conn: &mut DbConnection,
    version_id: &str,
) -> QueryResult<(String, String, VersionRow)> {
    use crate::db::schema::{models, namespaces};
    let version = by_id(conn, version_id)?;
    let (model, ns): (String, String) = models::table
        .inner_join(namespaces::table)
        .filter(models::id.eq(&version.model_id))
        .select((models::name, namespaces::name))
        .first(conn)?;
    Ok((ns, model, version))
}

pub fn set_status(conn: &mut DbConnection, version_id: &str, status: &str) -> QueryResult<()> {
    diesel::update(versions::table.filter(versions::id.eq(version_id)))
        .set(versions::status.eq(status))
        .execute(conn)?;
    Ok(())
}

/// The size of a file with this digest in any version of the model, when one has it.
pub fn file_size_by_digest(
    conn: &mut DbConnection,
    model_id: &str,
    digest: &str,
) -> QueryResult<Option<i64>> {
    version_files::table
        .inner_join(versions::table)
        .filter(versions::model_id.eq(model_id))
        .filter(version_files::digest.eq(digest))
        .select(version_files::size)
        .first(conn)
        .optional()
}

/// A model's ready versions (id, name), by name.
pub fn ready(conn: &mut DbConnection, model_id: &str) -> QueryResult<Vec<(String, String)>> {
    versions::table
        .filter(versions::model_id.eq(model_id))
        .filter(versions::status.eq("ready"))
        .order(versions::version.asc())
        .select((versions::id, versions::version))
        .load(conn)
}

/// A model's versions (id, name, created, status), newest first: what retention rules decide over.
pub fn newest_first(
    conn: &mut DbConnection,
    model_id: &str,
) -> QueryResult<Vec<(String, String, chrono::NaiveDateTime, String)>> {
    versions::table
        .filter(versions::model_id.eq(model_id))
        .order((versions::created_at.desc(), versions::version.desc()))
        .select((
            versions::id,
            versions::version,
            versions::created_at,
            versions::status,
        ))
        .load(conn)
}
