use chrono::NaiveDateTime;
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

/// Which entries a listing keeps: every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// What the entry is about, e.g. `acme/sentiment@production`.
    pub target: Option<String>,
    /// Who did it (a user's name, `runner:NAME`, `anonymous`).
    pub actor: Option<String>,
    /// What was done, e.g. `alias.set`.
    pub action: Option<String>,
}

/// Entries newest first that pass `filter`, from the one after (`created_at`, `id`) `after`.
pub fn list(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    after: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    let mut query = audit_log::table
        .order((audit_log::created_at.desc(), audit_log::id.desc()))
        .limit(limit)
        .select(AuditRow::as_select())
        .into_boxed();
    if let Some(target) = &filter.target {
        query = query.filter(audit_log::target.eq(target.clone()));
    }
    if let Some(actor) = &filter.actor {
        query = query.filter(audit_log::actor.eq(actor.clone()));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_log::action.eq(action.clone()));
    }
    if let Some((at, id)) = after {
        // The first bound alone is redundant; it lets the index range scan start at the cursor instead of
        // filtering every row before it.
        query = query.filter(audit_log::created_at.le(at)).filter(
            audit_log::created_at
                .lt(at)
                .or(audit_log::created_at.eq(at).and(audit_log::id.lt(id))),
        );
    }
    query.load(conn)
}
