use diesel::prelude::*;

use crate::db::records::AuditRow;
use crate::db::schema::audit_log;
use crate::db::{DbConnection, new_id, now};

/// Who did something, and from where.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    /// The signed-in user, when there is one (new namespaces are owned by them).
    pub user_id: Option<String>,
    pub remote_addr: Option<String>,
}

pub fn record(
    conn: &mut DbConnection,
    actor: &Actor,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> QueryResult<()> {
    let row = AuditRow {
        id: new_id(),
        actor: actor.name.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        detail: detail.to_string(),
        remote_addr: actor.remote_addr.clone(),
        created_at: now(),
    };
    diesel::insert_into(audit_log::table)
        .values(&row)
        .execute(conn)?;
    Ok(())
}

pub fn list(
    conn: &mut DbConnection,
    target: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_log::table
        .order(audit_log::created_at.desc())
        .limit(limit)
        .select(AuditRow::as_select())
        .into_boxed();
    if let Some(target) = target {
        query = query.filter(audit_log::target.eq(target.to_owned()));
    }
    query.load(conn)
}
