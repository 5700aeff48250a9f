use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::records::ApiTokenRow;
use crate::db::schema::api_tokens;
use crate::db::{DbConnection, now};

pub fn insert(conn: &mut DbConnection, row: &ApiTokenRow) -> QueryResult<()> {
    diesel::insert_into(api_tokens::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_by_hash(conn: &mut DbConnection, token_hash: &str) -> QueryResult<Option<ApiTokenRow>> {
    api_tokens::table
        .filter(api_tokens::token_hash.eq(token_hash))
        .select(ApiTokenRow::as_select())
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<ApiTokenRow>> {
    api_tokens::table
        .find(id)
        .select(ApiTokenRow::as_select())
        .first(conn)
        .optional()
}

/// A user's tokens, newest first, from the one after (`created_at`, `id`) `after`.
pub fn of_user(
    conn: &mut DbConnection,
    user_id: &str,
    after: Option<(NaiveDateTime, String)>,
    limit: i64,
) -> QueryResult<Vec<ApiTokenRow>> {
    let mut query = api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .order((api_tokens::created_at.desc(), api_tokens::id.desc()))
        .limit(limit)
        .select(ApiTokenRow::as_select())
        .into_boxed();
    if let Some((at, id)) = after {
        // The first bound alone is redundant; it lets the index range scan start at the cursor instead of
        // filtering every row before it.
        query = query.filter(api_tokens::created_at.le(at)).filter(
            api_tokens::created_at
                .lt(at)
                .or(api_tokens::created_at.eq(at).and(api_tokens::id.lt(id))),
        );
    }
    query.load(conn)
}

pub fn revoke(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    diesel::update(
        api_tokens::table
            .find(id)
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(now()))
    .execute(conn)?;
    Ok(())
}

/// Records use at most once a minute, so a busy token does not write on every request.
pub fn touch(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> QueryResult<()> {
    let stale = at - chrono::Duration::minutes(1);
    diesel::update(
        api_tokens::table.find(id).filter(
            api_tokens::last_used_at
                .is_null()
                .or(api_tokens::last_used_at.lt(stale)),
        ),
    )
    .set(api_tokens::last_used_at.eq(at))
    .execute(conn)?;
    Ok(())
}
