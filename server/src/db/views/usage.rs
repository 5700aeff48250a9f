//! What a namespace and its models hold in the store: the distinct blobs their versions and variants
//! name, and which of those bytes nothing outside them names (what deleting them would free).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::db::DbConnection;
use crate::db::repos::IN_LIST_BATCH;
use crate::db::schema::{models, variant_files, version_files, versions};

#[derive(Debug, Clone, QueryableByName)]
pub struct ModelUsageRow {
    #[diesel(sql_type = Text)]
    pub model: String,
    #[diesel(sql_type = BigInt)]
    pub versions: i64,
    #[diesel(sql_type = BigInt)]
    pub bytes: i64,
    #[diesel(sql_type = BigInt)]
    pub unique_bytes: i64,
}

#[derive(Debug, Clone, QueryableByName)]
pub struct NamespaceUsageRow {
    #[diesel(sql_type = BigInt)]
    pub versions: i64,
    #[diesel(sql_type = BigInt)]
    pub bytes: i64,
    #[diesel(sql_type = BigInt)]
    pub unique_bytes: i64,
}

/// The namespace's models and, for each, the (model, digest) pairs its versions and variants hold. The
/// namespace id is the statement's one parameter, written the backend's way.
fn held(conn: &DbConnection) -> String {
    let parameter = match conn {
        DbConnection::Postgresql(_) => "$1",
        DbConnection::Sqlite(_) => "?",
    };
    format!(
        "WITH mine AS (SELECT id, name FROM models WHERE namespace_id = {parameter}), \
         held AS ( \
           SELECT v.model_id AS model_id, f.digest AS digest FROM version_files f \
             JOIN versions v ON v.id = f.version_id JOIN mine m ON m.id = v.model_id \
           UNION \
           SELECT v.model_id, f.digest FROM variant_files f \
             JOIN versions v ON v.id = f.version_id JOIN mine m ON m.id = v.model_id)"
    )
}

/// Whether a model other than `{model}`'s (or, for a namespace, outside it) names the digest `h.digest`.
fn named_elsewhere(outside: &str) -> String {
    format!(
        "(EXISTS (SELECT 1 FROM version_files f JOIN versions v ON v.id = f.version_id \
           WHERE f.digest = h.digest AND {outside}) \
         OR EXISTS (SELECT 1 FROM variant_files f JOIN versions v ON v.id = f.version_id \
           WHERE f.digest = h.digest AND {outside}))"
    )
}

/// Each model of the namespace, with an empty one at zero.
pub fn models(conn: &mut DbConnection, namespace_id: &str) -> QueryResult<Vec<ModelUsageRow>> {
    let query = format!(
        "{held} \
         SELECT m.name AS model, \
           (SELECT COUNT(*) FROM versions v WHERE v.model_id = m.id) AS versions, \
           CAST(COALESCE(SUM(b.size), 0) AS BIGINT) AS bytes, \
           CAST(COALESCE(SUM(CASE WHEN h.digest IS NULL OR {elsewhere} THEN 0 ELSE b.size END), 0) AS BIGINT) \
             AS unique_bytes \
         FROM mine m \
         LEFT JOIN held h ON h.model_id = m.id \
         LEFT JOIN blobs b ON b.digest = h.digest \
         GROUP BY m.id, m.name \
         ORDER BY bytes DESC, m.name",
        held = held(conn),
        elsewhere = named_elsewhere("v.model_id <> h.model_id"),
    );
    diesel::sql_query(query)
        .bind::<Text, _>(namespace_id)
        .load(conn)
}

/// The namespace as a whole: a blob two of its models share counts once.
pub fn namespace(conn: &mut DbConnection, namespace_id: &str) -> QueryResult<NamespaceUsageRow> {
    let query = format!(
        "{held}, \
         distinct_held AS (SELECT DISTINCT digest FROM held) \
         SELECT \
           (SELECT COUNT(*) FROM versions v JOIN mine m ON m.id = v.model_id) AS versions, \
           CAST(COALESCE(SUM(b.size), 0) AS BIGINT) AS bytes, \
           CAST(COALESCE(SUM(CASE WHEN {elsewhere} THEN 0 ELSE b.size END), 0) AS BIGINT) AS unique_bytes \
         FROM distinct_held h JOIN blobs b ON b.digest = h.digest",
        held = held(conn),
        elsewhere = named_elsewhere("v.model_id NOT IN (SELECT id FROM mine)"),
    );
    diesel::sql_query(query)
        .bind::<Text, _>(namespace_id)
        .get_result(conn)
}

/// Of `digests`, those the namespace's versions or variants already hold (a push adds no bytes for them).
pub fn held_in_namespace(
    conn: &mut DbConnection,
    namespace_id: &str,
    digests: &[String],
) -> QueryResult<Vec<String>> {
    let mut found = Vec::new();
    let version_ids = versions::table
        .filter(
            versions::model_id.eq_any(
                models::table
                    .filter(models::namespace_id.eq(namespace_id))
                    .select(models::id),
            ),
        )
        .select(versions::id);
    for batch in digests.chunks(IN_LIST_BATCH) {
        found.extend(
            version_files::table
                .filter(version_files::version_id.eq_any(version_ids))
                .filter(version_files::digest.eq_any(batch))
                .select(version_files::digest)
                .load::<String>(conn)?,
        );
        found.extend(
            variant_files::table
                .filter(variant_files::version_id.eq_any(version_ids))
                .filter(variant_files::digest.eq_any(batch))
                .select(variant_files::digest)
                .load::<String>(conn)?,
        );
    }
    found.sort();
    found.dedup();
    Ok(found)
}
