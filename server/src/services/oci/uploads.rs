//! Blob uploads through `/v2/`: a client names the digest only in its last request, and may send the
//! bytes in one request (monolithic), in a stream, or in chunks of any length (PATCH with
//! `Content-Range`). The bytes stage like a `kiln push` upload's (a multipart upload on S3, a file on a
//! local store); the bytes after the last whole part wait as the upload's tail until more arrive, and
//! the hash state is saved after each request, so an upload resumes on any replica after a dropped
//! connection or a restart. Only a verified digest is promoted, recorded and linked to the repository.

use bytes::Bytes;
use futures_util::Stream;
use kiln_core::{ErrorCode, ModelName, NamespaceName, Sha256Digest, Sha256Hasher};
use serde_json::json;

use super::OciService;
use crate::db::blob_writes;
use crate::db::repos::blobs::Reservation;
use crate::db::repos::models::Visible;
use crate::db::repos::oci_uploads::{self, OciUploadRow};
use crate::db::repos::{blobs, oci_blob_links};
use crate::db::{new_id, now};
use crate::error::Error;
use crate::services::request_body::{BodyBounds, stream_into};
use crate::services::transaction_retried;
use crate::services::upload_claims::{ClaimKeeper, claims_pattern, stale_before};

const MIB: i64 = 1024 * 1024;
/// Every part but the last of a staged upload. S3 allows 10,000 parts, so an upload through `/v2/`
/// holds at most 160 GiB; larger files go through `kiln push`, which declares its size.
pub const PART_SIZE: i64 = 16 * MIB;
pub const MAX_BLOB_SIZE: i64 = PART_SIZE * 10_000;

/// Where an upload stands: the bytes received so far.
pub struct UploadProgress {
    pub id: String,
    pub offset: i64,
}

/// The pusher, and what they may read (a blob held by a version they can read is theirs to mount).
#[derive(Debug, Clone)]
pub struct Pusher {
    pub user_id: String,
    pub visible: Visible,
}

fn too_large() -> Error {
    Error::PayloadTooLarge {
        message: format!(
            "a blob pushed through /v2/ may have at most {MAX_BLOB_SIZE} bytes; push larger files with `kiln push`"
        ),
    }
}

fn progress(row: &OciUploadRow) -> UploadProgress {
    UploadProgress {
        id: row.id.clone(),
        offset: row.upload_offset,
    }
}

fn out_of_order(row: &OciUploadRow, start: i64) -> Error {
    Error::Conflict {
        code: ErrorCode::OffsetMismatch,
        message: format!(
            "this chunk starts at byte {start} but the upload has {} bytes; send the chunk that starts there",
            row.upload_offset
        ),
        details: Some(json!({ "offset": row.upload_offset })),
    }
}

impl OciService {
    /// Starts an upload into `ns/model` (which need not exist yet).
    pub async fn start_upload(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        pusher: &Pusher,
    ) -> Result<UploadProgress, Error> {
        let id = new_id();
        let backend_upload_id = self.store.begin_upload(&id).await?;
        let at = now();
        let row = OciUploadRow {
            id,
            namespace: ns.to_string(),
            model: model.to_string(),
            user_id: pusher.user_id.clone(),
            upload_offset: 0,
            part_size: PART_SIZE,
            backend_upload_id,
            part_etags: "[]".to_owned(),
            hash_state: Sha256Hasher::new().save(),
            writer: None,
            writer_at: None,
            created_at: at,
            updated_at: at,
        };
        let inserted = row.clone();
        self.db
            .run(move |conn| Ok(oci_uploads::insert(conn, &inserted)?))
            .await?;
        Ok(progress(&row))
    }

    /// The pusher's upload into this repository; any other is as absent as one that never existed.
    async fn upload(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        id: &str,
        pusher: &Pusher,
    ) -> Result<OciUploadRow, Error> {
        let key = id.to_owned();
        self.db
            .run(move |conn| Ok(oci_uploads::find(conn, &key)?))
            .await?
            .filter(|row| {
                row.user_id == pusher.user_id
                    && row.namespace == ns.as_str()
                    && row.model == model.as_str()
            })
            .ok_or_else(|| Error::not_found(format!("upload {id}")))
    }

    pub async fn upload_progress(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        id: &str,
        pusher: &Pusher,
    ) -> Result<UploadProgress, Error> {
        Ok(progress(&self.upload(ns, model, id, pusher).await?))
    }

    /// Appends a request body to the upload; `range` (start, length), when the client gives one, must
    /// start where the upload stands and be the body's length. Nothing is recorded unless the whole body arrived and was staged.
    pub async fn append<S>(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        id: &str,
        pusher: &Pusher,
        range: Option<(i64, i64)>,
        body: S,
    ) -> Result<UploadProgress, Error>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
    {
        let row = self.upload(ns, model, id, pusher).await?;
        let (start, length) = (range.map(|r| r.0), range.map(|r| r.1));
        if let Some(start) = start
            && start != row.upload_offset
        {
            return Err(out_of_order(&row, start));
        }
        let row = self.stage(row, body, length).await?;
        Ok(progress(&row))
    }

    /// Stages a body after what the upload holds and records the new offset, parts and hash state. One
    /// request writes to an upload at a time (a second is refused as out of order), so the bytes staged
    /// are always the bytes hashed; `expected`, when the client said how long its chunk is, must be met.
    async fn stage<S>(
        &self,
        row: OciUploadRow,
        body: S,
        expected: Option<i64>,
    ) -> Result<OciUploadRow, Error>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
    {
        let writer = self.claim(&row).await?;
        let keeper = self.keep_claim(&row.id, &writer);
        let staged = self
            .stage_claimed(row.clone(), &writer, body, expected)
            .await;
        drop(keeper);
        if staged.is_err() {
            self.release(&row.id, &writer).await;
        }
        staged
    }

    async fn stage_claimed<S>(
        &self,
        row: OciUploadRow,
        writer: &str,
        mut body: S,
        expected: Option<i64>,
    ) -> Result<OciUploadRow, Error>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
    {
        let part = row.part_size;
        let aligned = row.upload_offset - row.upload_offset % part;
        let mut hasher = Sha256Hasher::restore(&row.hash_state).ok_or_else(|| {
            Error::Internal(format!("upload {} has a corrupt hash state", row.id))
        })?;
        let mut stage = self
            .store
            .stage_writer(&row.id, &row.backend_upload_id, part as u64, aligned as u64)
            .await?;
        if row.upload_offset > aligned {
            let tail = self
                .store
                .load_tail(
                    &row.id,
                    aligned as u64,
                    (row.upload_offset - aligned) as u64,
                )
                .await?;
            stage.write(tail).await?;
        }
        let received = stream_into(
            &mut body,
            &mut hasher,
            &mut stage,
            BodyBounds {
                declared: expected,
                room: Some((MAX_BLOB_SIZE - row.upload_offset, too_large)),
            },
        )
        .await?;
        let (parts, tail) = stage.finish_whole_parts().await?;
        self.store.save_tail(&row.id, tail).await?;
        let mut etags = row.etags();
        etags.truncate((aligned / part) as usize);
        etags.extend(parts.into_iter().map(|p| p.etag));
        let etags_json = serde_json::to_string(&etags)?;
        let state = hasher.save();
        let (key, me, to) = (
            row.id.clone(),
            writer.to_owned(),
            row.upload_offset + received,
        );
        let at = now();
        let (json_for_db, state_for_db) = (etags_json.clone(), state.clone());
        let advanced = self
            .db
            .run(move |conn| {
                Ok(oci_uploads::advance(
                    conn,
                    &key,
                    &me,
                    to,
                    &json_for_db,
                    &state_for_db,
                    at,
                )?)
            })
            .await?;
        if !advanced {
            // Cancelled (or reaped) while this request wrote.
            return Err(Error::not_found(format!("upload {}", row.id)));
        }
        Ok(OciUploadRow {
            upload_offset: to,
            part_etags: etags_json,
            hash_state: state,
            updated_at: at,
            writer: None,
            writer_at: None,
            ..row
        })
    }

    /// Ends an upload with its last bytes (possibly none): checks the digest, promotes the bytes and
    /// links the blob to the repository.
    pub async fn finish_upload<S>(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        id: &str,
        pusher: &Pusher,
        digest: Sha256Digest,
        body: S,
    ) -> Result<(), Error>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
    {
        let row = self.upload(ns, model, id, pusher).await?;
        let row = self.stage(row, body, None).await?;
        // Finishing holds the upload too, so no chunk lands while its parts are completed.
        let writer = self.claim(&row).await?;
        let keeper = self.keep_claim(&row.id, &writer);
        let finished = self.promote(&row, digest, pusher).await;
        drop(keeper);
        if finished.is_err() {
            self.release(&row.id, &writer).await;
        }
        finished
    }

    /// Checks the digest of a claimed upload, completes its parts (the tail is the last) and moves the
    /// bytes to their content address (unless the store has them already), then records the blob,
    /// the pusher's grant and the repository's link.
    async fn promote(
        &self,
        row: &OciUploadRow,
        digest: Sha256Digest,
        pusher: &Pusher,
    ) -> Result<(), Error> {
        let id = &row.id;
        let actual = Sha256Hasher::restore(&row.hash_state)
            .ok_or_else(|| Error::Internal(format!("upload {id} has a corrupt hash state")))?
            .finalize();
        if actual != digest {
            self.discard(row).await?;
            return Err(Error::BadRequest {
                code: ErrorCode::DigestMismatch,
                message: format!(
                    "the uploaded bytes hash to {actual}, not {digest}; the upload was discarded, start it again"
                ),
                details: Some(json!({ "declared": digest, "actual": actual })),
            });
        }
        let text = digest.to_string();
        let reservation = blob_writes::reserve(&self.db, &digest, row.upload_offset).await?;
        if reservation == Reservation::Write {
            let part = row.part_size;
            let aligned = row.upload_offset - row.upload_offset % part;
            let mut etags = row.etags();
            if row.upload_offset > aligned {
                let tail = self
                    .store
                    .load_tail(
                        &row.id,
                        aligned as u64,
                        (row.upload_offset - aligned) as u64,
                    )
                    .await?;
                let mut last = self
                    .store
                    .stage_writer(&row.id, &row.backend_upload_id, part as u64, aligned as u64)
                    .await?;
                last.write(tail).await?;
                etags.extend(last.finish().await?.into_iter().map(|p| p.etag));
            }
            let expected = (row.upload_offset + part - 1) / part;
            if etags.len() as i64 != expected {
                return Err(Error::Internal(format!(
                    "upload {id} has {} staged parts, not {expected}",
                    etags.len()
                )));
            }
            self.store
                .promote_upload(
                    &row.id,
                    &row.backend_upload_id,
                    etags,
                    &digest,
                    row.upload_offset as u64,
                )
                .await?;
            self.store.save_tail(&row.id, Bytes::new()).await?;
        }
        let (key, user) = (row.id.clone(), pusher.user_id.clone());
        let (namespace, model) = (row.namespace.clone(), row.model.clone());
        // Live, grant, link and the upload's end in one transaction: a crash before it leaves only an
        // idle upload to reap (and a pending blob collection removes once abandoned).
        self.db
            .run(move |conn| {
                let written: &[String] = match reservation {
                    Reservation::Write => std::slice::from_ref(&text),
                    _ => &[],
                };
                transaction_retried(conn, |conn| {
                    blob_writes::hold_live(conn, std::slice::from_ref(&text), written)?;
                    blobs::grant(conn, &text, &user)?;
                    oci_blob_links::link(conn, &namespace, &model, &text)?;
                    Ok(oci_uploads::delete(conn, &key)?)
                })
            })
            .await?;
        if reservation == Reservation::Stored
            && let Err(e) = self
                .store
                .abort_upload(&row.id, &row.backend_upload_id)
                .await
        {
            // The same bytes were stored already; the staged copy is an orphan the store check finds.
            tracing::warn!(error = %e.chain(), upload = %row.id, "dropping a staged duplicate failed");
        }
        Ok(())
    }

    /// Lets go of the claims of `run`, a server run known to have ended (see
    /// [`crate::services::upload_claims::Claimant`]); how many.
    pub async fn let_go_of_claims_of(&self, run: &str) -> Result<usize, Error> {
        let Some(pattern) = claims_pattern(run) else {
            return Ok(0);
        };
        self.db
            .run(move |conn| Ok(oci_uploads::let_go_of_claims(conn, &pattern)?))
            .await
    }

    /// Makes this request the upload's one writer (see `upload_claims`); its claim's name.
    async fn claim(&self, row: &OciUploadRow) -> Result<String, Error> {
        let writer = self.claimant.claim_name();
        let (key, offset, me, at) = (row.id.clone(), row.upload_offset, writer.clone(), now());
        let claimed = self
            .db
            .run(move |conn| {
                Ok(oci_uploads::claim(
                    conn,
                    &key,
                    offset,
                    &me,
                    at,
                    stale_before(at),
                )?)
            })
            .await?;
        if !claimed {
            return Err(Error::Conflict {
                code: ErrorCode::OffsetMismatch,
                message: format!(
                    "another request is writing to upload {} (or it moved past byte {offset}); ask where it stands with GET",
                    row.id
                ),
                details: Some(json!({ "offset": row.upload_offset })),
            });
        }
        Ok(writer)
    }

    /// Lets go of an upload after a failed request (a claim that cannot be let go lapses).
    async fn release(&self, id: &str, writer: &str) {
        let (key, me) = (id.to_owned(), writer.to_owned());
        if let Err(e) = self
            .db
            .run(move |conn| Ok(oci_uploads::release(conn, &key, &me)?))
            .await
        {
            tracing::warn!(error = %e.chain(), upload = %id, "releasing an upload failed; it lapses");
        }
    }

    fn keep_claim(&self, id: &str, writer: &str) -> ClaimKeeper {
        let (id, writer) = (id.to_owned(), writer.to_owned());
        ClaimKeeper::start(self.db.clone(), move |conn, at| {
            oci_uploads::still_writing(conn, &id, &writer, at)
        })
    }

    /// Cancels an upload and drops what it staged.
    pub async fn cancel_upload(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        id: &str,
        pusher: &Pusher,
    ) -> Result<(), Error> {
        let row = self.upload(ns, model, id, pusher).await?;
        self.discard(&row).await
    }

    async fn discard(&self, row: &OciUploadRow) -> Result<(), Error> {
        self.store
            .abort_upload(&row.id, &row.backend_upload_id)
            .await?;
        let key = row.id.clone();
        self.db
            .run(move |conn| Ok(oci_uploads::delete(conn, &key)?))
            .await
    }

    /// Aborts uploads idle for longer than `ttl`; returns how many.
    pub async fn reap_idle_uploads(&self, ttl: std::time::Duration) -> Result<usize, Error> {
        let cutoff = now() - chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(3));
        let idle = self
            .db
            .run(move |conn| Ok(oci_uploads::idle_since(conn, cutoff)?))
            .await?;
        for row in &idle {
            self.discard(row).await?;
        }
        Ok(idle.len())
    }

    /// Links a blob the pusher may use to `ns/model` without its bytes moving: one held by the `from`
    /// repository (which the pusher may read), or, without `from`, one the pusher uploaded or can read
    /// anywhere. False when there is no such blob (the client then uploads it).
    pub async fn mount(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        digest: &Sha256Digest,
        from: Option<(NamespaceName, ModelName)>,
        pusher: &Pusher,
    ) -> Result<bool, Error> {
        let usable = match from {
            Some((from_ns, from_model)) => self
                .blob(from_ns, from_model, *digest)
                .await
                .map(|found| found.is_some_and(|b| matches!(b, super::Blob::File(_))))
                .or_else(|e| match e {
                    Error::NotFound { .. } => Ok(false),
                    other => Err(other),
                })?,
            None => {
                let (user, visible, key) = (
                    pusher.user_id.clone(),
                    pusher.visible.clone(),
                    digest.to_string(),
                );
                !self
                    .db
                    .run(move |conn| {
                        Ok(blobs::usable(
                            conn,
                            Some(&user),
                            &visible,
                            std::slice::from_ref(&key),
                        )?)
                    })
                    .await?
                    .is_empty()
            }
        };
        if !usable {
            return Ok(false);
        }
        let (namespace, name, key, user) = (
            ns.to_string(),
            model.to_string(),
            digest.to_string(),
            pusher.user_id.clone(),
        );
        let linked = self
            .db
            .run(move |conn| {
                transaction_retried(conn, |conn| {
                    blob_writes::hold_live(conn, std::slice::from_ref(&key), &[])?;
                    blobs::grant(conn, &key, &user)?;
                    oci_blob_links::link(conn, &namespace, &name, &key)?;
                    Ok(true)
                })
            })
            .await;
        match linked {
            // Not usable right now (being collected or restored): the client uploads it instead.
            Err(Error::Busy { .. }) => Ok(false),
            other => other,
        }
    }
}
