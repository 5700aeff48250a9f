use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::records::{UploadPartRow, UploadSessionRow};
use crate::db::schema::{upload_parts, upload_sessions};

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<UploadSessionRow>> {
    upload_sessions::table
        .find(id)
        .select(UploadSessionRow::as_select())
        .first(conn)
        .optional()
}

/// The caller's most advanced unfinished session for this blob, to resume instead of starting over.
pub fn find_resumable(
    conn: &mut DbConnection,
    digest: &str,
    size: i64,
    user_id: &str,
) -> QueryResult<Option<UploadSessionRow>> {
    upload_sessions::table
        .filter(upload_sessions::digest.eq(digest))
        .filter(upload_sessions::size.eq(size))
        .filter(upload_sessions::user_id.eq(user_id))
        .order((
            upload_sessions::upload_offset.desc(),
            upload_sessions::created_at.asc(),
        ))
        .select(UploadSessionRow::as_select())
        .first(conn)
        .optional()
}

pub fn insert(conn: &mut DbConnection, row: &UploadSessionRow) -> QueryResult<()> {
    diesel::insert_into(upload_sessions::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Makes `writer` the session's one writer while it stands at `offset`, unless another writer said it
/// was writing after `stale_before`; false when one is, or the session moved on.
pub fn claim(
    conn: &mut DbConnection,
    id: &str,
    offset: i64,
    writer: &str,
    at: chrono::NaiveDateTime,
    stale_before: chrono::NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        upload_sessions::table
            .filter(upload_sessions::id.eq(id))
            .filter(upload_sessions::upload_offset.eq(offset))
            .filter(
                upload_sessions::writer
                    .is_null()
                    .or(upload_sessions::writer_at.lt(stale_before)),
            ),
    )
    .set((
        upload_sessions::writer.eq(writer),
        upload_sessions::writer_at.eq(at),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// The writer says it is still writing; false when it no longer holds the session.
pub fn still_writing(
    conn: &mut DbConnection,
    id: &str,
    writer: &str,
    at: chrono::NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(
        upload_sessions::table
            .filter(upload_sessions::id.eq(id))
            .filter(upload_sessions::writer.eq(writer)),
    )
    .set(upload_sessions::writer_at.eq(at))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Lets go of every claim named by `pattern` (an ended server run's: see `Claimant`); how many.
pub fn let_go_of_claims(conn: &mut DbConnection, pattern: &str) -> QueryResult<usize> {
    diesel::update(upload_sessions::table.filter(upload_sessions::writer.like(pattern)))
        .set((
            upload_sessions::writer.eq(None::<String>),
            upload_sessions::writer_at.eq(None::<chrono::NaiveDateTime>),
        ))
        .execute(conn)
}

/// The writer lets go without moving the session (its request failed).
pub fn release(conn: &mut DbConnection, id: &str, writer: &str) -> QueryResult<()> {
    diesel::update(
        upload_sessions::table
            .filter(upload_sessions::id.eq(id))
            .filter(upload_sessions::writer.eq(writer)),
    )
    .set((
        upload_sessions::writer.eq(None::<String>),
        upload_sessions::writer_at.eq(None::<chrono::NaiveDateTime>),
    ))
    .execute(conn)
    .map(|_| ())
}

/// The writer moves the session from `from_offset` to `to_offset`, records the parts its chunk stored
/// and lets go. Returns false when it no longer held the session (nothing is changed then).
pub fn advance(
    conn: &mut DbConnection,
    id: &str,
    writer: &str,
    from_offset: i64,
    to_offset: i64,
    hash_state: &[u8],
    parts: &[UploadPartRow],
) -> QueryResult<bool> {
    conn.transaction(|conn| {
        let updated = diesel::update(
            upload_sessions::table
                .filter(upload_sessions::id.eq(id))
                .filter(upload_sessions::writer.eq(writer))
                .filter(upload_sessions::upload_offset.eq(from_offset)),
        )
        .set((
            upload_sessions::writer.eq(None::<String>),
            upload_sessions::writer_at.eq(None::<chrono::NaiveDateTime>),
            upload_sessions::upload_offset.eq(to_offset),
            upload_sessions::hash_state.eq(hash_state),
            upload_sessions::updated_at.eq(crate::db::now()),
        ))
        .execute(conn)?;
        if updated == 0 {
            return Ok(false);
        }
        for part in parts {
            diesel::delete(
                upload_parts::table
                    .filter(upload_parts::session_id.eq(id))
                    .filter(upload_parts::part_number.eq(part.part_number)),
            )
            .execute(conn)?;
        }
        // Row by row: the multi-backend connection has no batch insert (SQLite's differs).
        for part in parts {
            diesel::insert_into(upload_parts::table)
                .values(part)
                .execute(conn)?;
        }
        Ok(true)
    })
}

pub fn parts(conn: &mut DbConnection, id: &str) -> QueryResult<Vec<UploadPartRow>> {
    upload_parts::table
        .filter(upload_parts::session_id.eq(id))
        .order(upload_parts::part_number.asc())
        .select(UploadPartRow::as_select())
        .load(conn)
}

pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    diesel::delete(upload_parts::table.filter(upload_parts::session_id.eq(id))).execute(conn)?;
    diesel::delete(upload_sessions::table.find(id)).execute(conn)?;
    Ok(())
}

/// Sessions untouched since `before`, for the reaper.
pub fn idle_since(
    conn: &mut DbConnection,
    before: chrono::NaiveDateTime,
    stale_before: chrono::NaiveDateTime,
) -> QueryResult<Vec<UploadSessionRow>> {
    upload_sessions::table
        .filter(upload_sessions::updated_at.lt(before))
        // Not one being written or committed right now (a commit does not move `updated_at`).
        .filter(
            upload_sessions::writer
                .is_null()
                .or(upload_sessions::writer_at.lt(stale_before)),
        )
        .select(UploadSessionRow::as_select())
        .load(conn)
}
