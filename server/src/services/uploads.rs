//! Blob uploads through resumable sessions.
//!
//! A session is created for a declared digest and size. Chunks arrive in order (PATCH with Content-Range);
//! the server hashes them as they stream and stores them as parts of a staged upload. The hash state is
//! saved in the database after each chunk, so a session continues on any replica after any restart. On
//! commit the digest is checked and only then is the blob promoted and recorded.

use bytes::Bytes;
use futures_util::Stream;
use kiln_core::ErrorCode;
use kiln_core::Sha256Digest;
use kiln_core::Sha256Hasher;
use kiln_core::api::UploadSession;
use serde_json::json;

use crate::db::records::{UploadPartRow, UploadSessionRow};
use crate::db::repos::models::Visible;
use crate::db::repos::{blobs, uploads};
use crate::db::{Database, new_id, now};
use crate::error::Error;
use crate::services::request_body::{BodyBounds, stream_into};
use crate::services::upload_claims::{
    BUSY_RETRY_AFTER, CLAIM_LAPSES, ClaimKeeper, Claimant, claims_pattern, stale_before,
};
use crate::storage::BlobStore;

mod commit;

const MIB: i64 = 1024 * 1024;
/// Who is uploading, and what they can read (blobs held by versions they can read are theirs to use).
#[derive(Debug, Clone)]
pub struct Uploader {
    pub user_id: String,
    pub visible: Visible,
}
/// S3 allows at most 10,000 parts of at least 5 MiB (except the last).
const MIN_PART_SIZE: i64 = 8 * MIB;
const MAX_PARTS: i64 = 10_000;
/// Larger than any model file we expect; S3's own limit for one object is 5 TiB.
pub const MAX_BLOB_SIZE: i64 = 5 * 1024 * 1024 * MIB;

pub use kiln_core::byte_ranges::ChunkRange;

fn part_size_for(size: i64) -> i64 {
    let needed = (size + MAX_PARTS - 1) / MAX_PARTS;
    let rounded = (needed + MIB - 1) / MIB * MIB;
    rounded.max(MIN_PART_SIZE)
}

fn to_api(row: &UploadSessionRow, resumed: bool) -> Result<UploadSession, Error> {
    Ok(UploadSession {
        id: row.id.clone(),
        digest: row.digest.parse()?,
        size: row.size,
        offset: row.upload_offset,
        part_size: row.part_size,
        resumed,
        created_at: row.created_at.and_utc(),
    })
}

fn offset_mismatch(row: &UploadSessionRow, start: i64) -> Error {
    Error::Conflict {
        code: ErrorCode::OffsetMismatch,
        message: format!(
            "this chunk starts at byte {start} but the session has {} bytes; send the chunk that starts at {}",
            row.upload_offset, row.upload_offset
        ),
        details: Some(json!({ "offset": row.upload_offset })),
    }
}

/// The session stands where the chunk starts but another request holds it: the client waits instead of
/// sending its bytes again at once.
fn upload_busy(row: &UploadSessionRow) -> Error {
    Error::UploadBusy {
        message: format!(
            "another request is writing this upload session at byte {}; retry in {BUSY_RETRY_AFTER} s (a \
             writer whose server stopped lets go when a server starts again on its data, or within {} s)",
            row.upload_offset,
            CLAIM_LAPSES.as_secs()
        ),
        offset: row.upload_offset,
        retry_after: BUSY_RETRY_AFTER,
    }
}

#[derive(Clone)]
pub struct UploadService {
    db: Database,
    store: BlobStore,
    claimant: Claimant,
}

impl UploadService {
    pub fn new(db: Database, store: BlobStore, claimant: Claimant) -> Self {
        Self {
            db,
            store,
            claimant,
        }
    }

    /// Lets go of the claims of `run`, a server run known to have ended (see [`Claimant`]); how many.
    pub async fn let_go_of_claims_of(&self, run: &str) -> Result<usize, Error> {
        let Some(pattern) = claims_pattern(run) else {
            return Ok(0);
        };
        self.db
            .run(move |conn| Ok(uploads::let_go_of_claims(conn, &pattern)?))
            .await
    }

    /// Digests among `digests` that the server does not hold.
    /// Digests among `digests` the uploader may not use yet (see [`blobs::usable`]): they upload those.
    pub async fn missing(
        &self,
        digests: Vec<Sha256Digest>,
        uploader: &Uploader,
    ) -> Result<Vec<Sha256Digest>, Error> {
        if digests.len() > 100_000 {
            return Err(Error::bad_request(
                ErrorCode::TooManyDigests,
                "ask about at most 100000 digests at once",
            ));
        }
        let keys: Vec<String> = digests.iter().map(ToString::to_string).collect();
        let (user, visible) = (uploader.user_id.clone(), uploader.visible.clone());
        let found = self
            .db
            .run(move |conn| Ok(blobs::usable(conn, Some(&user), &visible, &keys)?))
            .await?;
        let found: std::collections::HashSet<String> =
            found.into_iter().map(|b| b.digest).collect();
        let mut missing: Vec<Sha256Digest> = digests
            .into_iter()
            .filter(|d| !found.contains(&d.to_string()))
            .collect();
        missing.sort();
        missing.dedup();
        Ok(missing)
    }

    /// Starts a session for this blob, or returns the unfinished one already under way.
    pub async fn create(
        &self,
        digest: Sha256Digest,
        size: i64,
        uploader: &Uploader,
    ) -> Result<UploadSession, Error> {
        if !(0..=MAX_BLOB_SIZE).contains(&size) {
            return Err(Error::bad_request(
                ErrorCode::InvalidSize,
                format!("size must be between 0 and {MAX_BLOB_SIZE} bytes"),
            ));
        }
        let key = digest.to_string();
        let (user, visible) = (uploader.user_id.clone(), uploader.visible.clone());
        // "Already there" only for blobs the uploader may use: others upload the bytes to prove they have them.
        let (exists, existing) = self
            .db
            .run(move |conn| {
                Ok((
                    !blobs::usable(conn, Some(&user), &visible, std::slice::from_ref(&key))?
                        .is_empty(),
                    uploads::find_resumable(conn, &key, size, &user)?,
                ))
            })
            .await?;
        if exists {
            return Err(Error::Conflict {
                code: ErrorCode::BlobExists,
                message: format!("the server already holds {digest}; there is nothing to upload"),
                details: None,
            });
        }
        if let Some(row) = existing {
            return to_api(&row, true);
        }
        let id = new_id();
        let upload_id = self.store.begin_upload(&id).await?;
        let at = now();
        let row = UploadSessionRow {
            id,
            digest: digest.to_string(),
            size,
            part_size: part_size_for(size),
            upload_offset: 0,
            backend_upload_id: upload_id,
            hash_state: Sha256Hasher::new().save(),
            user_id: Some(uploader.user_id.clone()),
            created_at: at,
            updated_at: at,
        };
        let inserted = row.clone();
        self.db
            .run(move |conn| Ok(uploads::insert(conn, &inserted)?))
            .await?;
        to_api(&row, false)
    }

    /// The uploader's own session; anyone else's is as absent as a session that never existed.
    async fn find(&self, id: &str, uploader: &Uploader) -> Result<UploadSessionRow, Error> {
        let key = id.to_owned();
        self.db
            .run(move |conn| Ok(uploads::find(conn, &key)?))
            .await?
            .filter(|row| row.user_id.as_deref() == Some(uploader.user_id.as_str()))
            .ok_or_else(|| Error::not_found(format!("upload session {id}")))
    }

    pub async fn get(&self, id: &str, uploader: &Uploader) -> Result<UploadSession, Error> {
        to_api(&self.find(id, uploader).await?, false)
    }

    /// Receives one chunk. Nothing is recorded unless the whole chunk arrived and was stored.
    pub async fn write_chunk<S>(
        &self,
        id: &str,
        uploader: &Uploader,
        range: ChunkRange,
        body: S,
    ) -> Result<UploadSession, Error>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
    {
        let row = self.find(id, uploader).await?;
        if range.total != row.size {
            return Err(Error::bad_request(
                ErrorCode::SizeMismatch,
                format!(
                    "Content-Range says the blob has {} bytes but the session was created for {}",
                    range.total, row.size
                ),
            ));
        }
        if range.start != row.upload_offset {
            return Err(offset_mismatch(&row, range.start));
        }
        if range.end_inclusive >= row.size {
            return Err(Error::bad_request(
                ErrorCode::RangePastEnd,
                format!(
                    "this chunk ends at byte {} but the blob has {} bytes",
                    range.end_inclusive, row.size
                ),
            ));
        }
        let is_last = range.end_inclusive + 1 == row.size;
        if !is_last && range.len() % row.part_size != 0 {
            return Err(Error::bad_request(
                ErrorCode::ChunkNotAligned,
                format!(
                    "every chunk but the last must be a multiple of the session's part size ({} bytes)",
                    row.part_size
                ),
            ));
        }
        let writer = self.claimant.claim_name();
        if !self.claim(&row.id, row.upload_offset, &writer).await? {
            let current = self.find(id, uploader).await?;
            return Err(if current.upload_offset == range.start {
                upload_busy(&current)
            } else {
                offset_mismatch(&current, range.start)
            });
        }
        let keeper = self.keep_claim(&row.id, &writer);
        let written = self.write_claimed(&row, &writer, range, body).await;
        drop(keeper);
        match written {
            Ok(true) => self.get(id, uploader).await,
            Ok(false) => {
                let current = self.find(id, uploader).await?;
                Err(offset_mismatch(&current, range.start))
            }
            Err(e) => {
                self.release(&row.id, &writer).await;
                Err(e)
            }
        }
    }

    /// Makes `writer` the session's one writer while it stands at `offset` (see [`uploads::claim`]).
    async fn claim(&self, id: &str, offset: i64, writer: &str) -> Result<bool, Error> {
        let (key, me, at) = (id.to_owned(), writer.to_owned(), now());
        self.db
            .run(move |conn| {
                Ok(uploads::claim(
                    conn,
                    &key,
                    offset,
                    &me,
                    at,
                    stale_before(at),
                )?)
            })
            .await
    }

    fn keep_claim(&self, id: &str, writer: &str) -> ClaimKeeper {
        let (id, writer) = (id.to_owned(), writer.to_owned());
        ClaimKeeper::start(self.db.clone(), move |conn, at| {
            uploads::still_writing(conn, &id, &writer, at)
        })
    }

    async fn release(&self, id: &str, writer: &str) {
        let (key, me) = (id.to_owned(), writer.to_owned());
        if let Err(e) = self
            .db
            .run(move |conn| Ok(uploads::release(conn, &key, &me)?))
            .await
        {
            tracing::warn!(error = %e.chain(), session = %id, "releasing an upload session failed; it lapses");
        }
    }

    /// Streams a chunk into a session this request holds and records it; false when the session was
    /// taken from it meanwhile (cancelled, or its claim lapsed).
    async fn write_claimed<S>(
        &self,
        row: &UploadSessionRow,
        claim: &str,
        range: ChunkRange,
        mut body: S,
    ) -> Result<bool, Error>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
    {
        let id = &row.id;
        let mut hasher = Sha256Hasher::restore(&row.hash_state).ok_or_else(|| {
            Error::Internal(format!("upload session {id} has a corrupt hash state"))
        })?;
        let mut writer = self
            .store
            .stage_writer(
                &row.id,
                &row.backend_upload_id,
                row.part_size as u64,
                row.upload_offset as u64,
            )
            .await?;
        stream_into(
            &mut body,
            &mut hasher,
            &mut writer,
            BodyBounds {
                declared: Some(range.len()),
                room: None,
            },
        )
        .await?;
        let parts: Vec<UploadPartRow> = writer
            .finish()
            .await?
            .into_iter()
            .map(|part| UploadPartRow {
                session_id: row.id.clone(),
                part_number: part.number,
                etag: part.etag,
                size: part.size,
            })
            .collect();
        let state = hasher.save();
        let (key, me, from, to) = (
            row.id.clone(),
            claim.to_owned(),
            row.upload_offset,
            range.end_inclusive + 1,
        );
        self.db
            .run(move |conn| Ok(uploads::advance(conn, &key, &me, from, to, &state, &parts)?))
            .await
    }

    /// Cancels a session and drops what it staged.
    pub async fn abort(&self, id: &str, uploader: &Uploader) -> Result<(), Error> {
        let row = self.find(id, uploader).await?;
        self.discard(&row).await
    }

    async fn discard(&self, row: &UploadSessionRow) -> Result<(), Error> {
        self.store
            .abort_upload(&row.id, &row.backend_upload_id)
            .await?;
        let key = row.id.clone();
        self.db
            .run(move |conn| Ok(uploads::delete(conn, &key)?))
            .await
    }

    /// Aborts sessions idle for longer than `ttl`; returns how many.
    pub async fn reap_idle(&self, ttl: std::time::Duration) -> Result<usize, Error> {
        let cutoff = now() - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(3));
        let idle = self
            .db
            .run(move |conn| Ok(uploads::idle_since(conn, cutoff, stale_before(now()))?))
            .await?;
        for row in &idle {
            self.discard(row).await?;
        }
        Ok(idle.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_stay_within_s3_limits() {
        assert_eq!(part_size_for(0), MIN_PART_SIZE);
        assert_eq!(part_size_for(10 * MIB), MIN_PART_SIZE);
        let huge = 200 * 1024 * MIB;
        let part = part_size_for(huge);
        assert!(part % MIB == 0 && (huge + part - 1) / part <= MAX_PARTS);
        let part = part_size_for(MAX_BLOB_SIZE);
        assert!((MAX_BLOB_SIZE + part - 1) / part <= MAX_PARTS);
    }
}
