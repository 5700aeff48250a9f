//! Retention rules: per namespace (model_id '') or per model.

use diesel::prelude::*;

use crate::db::schema::{namespaces, retention_rules};
use crate::db::{DbConnection, now};

/// The model id a namespace-wide rule is stored under.
pub const WHOLE_NAMESPACE: &str = "";

/// A rule's fields: keep_last, keep_days, keep_aliased_days.
pub type RuleRow = (Option<i64>, Option<i64>, Option<i64>);

/// The namespace's rules by model id (`WHOLE_NAMESPACE` for its own).
pub fn for_namespace(
    conn: &mut DbConnection,
    namespace_id: &str,
) -> QueryResult<Vec<(String, RuleRow)>> {
    type Listed = (String, Option<i64>, Option<i64>, Option<i64>);
    let rows: Vec<Listed> = retention_rules::table
        .filter(retention_rules::namespace_id.eq(namespace_id))
        .order(retention_rules::model_id.asc())
        .select((
            retention_rules::model_id,
            retention_rules::keep_last,
            retention_rules::keep_days,
            retention_rules::keep_aliased_days,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(model, last, days, aliased)| (model, (last, days, aliased)))
        .collect())
}

/// Names of the namespaces that have a rule.
pub fn namespaces_with_rules(conn: &mut DbConnection) -> QueryResult<Vec<String>> {
    namespaces::table
        .filter(
            namespaces::id.eq_any(
                retention_rules::table
                    .select(retention_rules::namespace_id)
                    .distinct(),
            ),
        )
        .order(namespaces::name.asc())
        .select(namespaces::name)
        .load(conn)
}

/// Sets a rule (replacing the one there); in the caller's transaction.
pub fn set(
    conn: &mut DbConnection,
    namespace_id: &str,
    model_id: &str,
    rule: RuleRow,
    by: &str,
) -> QueryResult<()> {
    let (keep_last, keep_days, keep_aliased_days) = rule;
    let changed = diesel::update(retention_rules::table.find((namespace_id, model_id)))
        .set((
            retention_rules::keep_last.eq(keep_last),
            retention_rules::keep_days.eq(keep_days),
            retention_rules::keep_aliased_days.eq(keep_aliased_days),
            retention_rules::updated_at.eq(now()),
            retention_rules::updated_by.eq(by),
        ))
        .execute(conn)?;
    if changed == 0 {
        diesel::insert_into(retention_rules::table)
            .values((
                retention_rules::namespace_id.eq(namespace_id),
                retention_rules::model_id.eq(model_id),
                retention_rules::keep_last.eq(keep_last),
                retention_rules::keep_days.eq(keep_days),
                retention_rules::keep_aliased_days.eq(keep_aliased_days),
                retention_rules::updated_at.eq(now()),
                retention_rules::updated_by.eq(by),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Removes a rule; false when there was none.
pub fn delete(conn: &mut DbConnection, namespace_id: &str, model_id: &str) -> QueryResult<bool> {
    Ok(diesel::delete(retention_rules::table.find((namespace_id, model_id))).execute(conn)? == 1)
}
