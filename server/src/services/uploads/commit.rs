//! Committing a session: the digest checked, the staged parts promoted to the blob's content address,
//! and the blob recorded, by the one request that holds the complete session.

use kiln_core::ErrorCode;
use kiln_core::Sha256Digest;
use kiln_core::Sha256Hasher;
use kiln_core::api::BlobInfo;
use serde_json::json;

use super::{UploadService, Uploader};
use crate::db::blob_writes;
use crate::db::now;
use crate::db::records::UploadSessionRow;
use crate::db::repos::blobs::Reservation;
use crate::db::repos::{blobs, uploads};
use crate::error::Error;
use crate::services::transaction_retried;

/// How often a commit waiting for another commit of the same session looks again.
const COMMIT_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Whose turn a commit is.
enum CommitTurn {
    /// This request holds the complete session and commits it.
    Mine(UploadSessionRow),
    /// Another commit of the same session stored the blob meanwhile.
    DoneByAnother(BlobInfo),
}

impl UploadService {
    /// Verifies the digest, promotes the staged bytes to their content address and records the blob.
    /// Two pushes of the same file by one user share a session, so two commits of it can arrive at
    /// once: they take turns holding the session. One that finds the session ended by the other
    /// answers with the blob when it was stored, and 404 when it was not (the bytes were refused).
    pub async fn commit(&self, id: &str, uploader: &Uploader) -> Result<BlobInfo, Error> {
        let committer = self.claimant.claim_name();
        let row = match self.claim_for_commit(id, uploader, &committer).await? {
            CommitTurn::Mine(row) => row,
            CommitTurn::DoneByAnother(blob) => return Ok(blob),
        };
        let keeper = self.keep_claim(&row.id, &committer);
        let committed = self.commit_claimed(&row, uploader, &committer).await;
        drop(keeper);
        if committed.is_err() {
            self.release(&row.id, &committer).await;
        }
        committed
    }

    /// Waits until this request holds the complete session, or another commit of it has ended.
    async fn claim_for_commit(
        &self,
        id: &str,
        uploader: &Uploader,
        committer: &str,
    ) -> Result<CommitTurn, Error> {
        // A live committer renews its claim for as long as it works (promoting a large blob on S3 takes
        // minutes); one whose server died lets go when the claim lapses, and `claim` takes it over.
        let mut waited_for: Option<String> = None;
        loop {
            let row = match (self.find(id, uploader).await, &waited_for) {
                (Ok(row), _) => row,
                (Err(Error::NotFound { what }), Some(digest)) => {
                    // The other commit ended the session: it stored the blob, or refused the bytes.
                    return match self.usable_blob(digest, uploader).await? {
                        Some(blob) => Ok(CommitTurn::DoneByAnother(blob)),
                        None => Err(Error::NotFound { what }),
                    };
                }
                (Err(e), _) => return Err(e),
            };
            if row.upload_offset != row.size {
                return Err(Error::Conflict {
                    code: ErrorCode::UploadIncomplete,
                    message: format!(
                        "the session has {} of {} bytes; send the rest before committing",
                        row.upload_offset, row.size
                    ),
                    details: Some(json!({ "offset": row.upload_offset, "size": row.size })),
                });
            }
            if self.claim(&row.id, row.size, committer).await? {
                return Ok(CommitTurn::Mine(row));
            }
            waited_for = Some(row.digest);
            tokio::time::sleep(COMMIT_POLL).await;
        }
    }

    /// The blob, when it is stored and the uploader may use it.
    async fn usable_blob(
        &self,
        digest: &str,
        uploader: &Uploader,
    ) -> Result<Option<BlobInfo>, Error> {
        let key = digest.to_owned();
        let (user, visible) = (uploader.user_id.clone(), uploader.visible.clone());
        let found = self
            .db
            .run(move |conn| Ok(blobs::usable(conn, Some(&user), &visible, &[key])?))
            .await?;
        found
            .into_iter()
            .next()
            .map(|blob| {
                Ok(BlobInfo {
                    digest: blob.digest.parse()?,
                    size: blob.size,
                })
            })
            .transpose()
    }

    /// The commit proper, by the request that holds the complete session.
    async fn commit_claimed(
        &self,
        row: &UploadSessionRow,
        uploader: &Uploader,
        committer: &str,
    ) -> Result<BlobInfo, Error> {
        let id = &row.id;
        let declared: Sha256Digest = row.digest.parse()?;
        let actual = Sha256Hasher::restore(&row.hash_state)
            .ok_or_else(|| {
                Error::Internal(format!("upload session {id} has a corrupt hash state"))
            })?
            .finalize();
        if actual != declared {
            self.discard(row).await?;
            return Err(Error::BadRequest {
                code: ErrorCode::DigestMismatch,
                message: format!(
                    "the uploaded bytes hash to {actual}, not the declared {declared}; the upload was discarded, start it again"
                ),
                details: Some(json!({ "declared": declared, "actual": actual })),
            });
        }
        let key = row.id.clone();
        let parts = self
            .db
            .run(move |conn| Ok(uploads::parts(conn, &key)?))
            .await?;
        let expected_parts = (row.size + row.part_size - 1) / row.part_size;
        if parts.len() as i64 != expected_parts
            || parts
                .iter()
                .enumerate()
                .any(|(i, p)| p.part_number != i as i32 + 1)
        {
            return Err(Error::Internal(format!(
                "upload session {id} has inconsistent parts"
            )));
        }
        let etags = parts.into_iter().map(|p| p.etag).collect();
        let reservation = blob_writes::reserve(&self.db, &declared, row.size).await?;
        if reservation == Reservation::Write {
            self.store
                .promote_upload(
                    &row.id,
                    &row.backend_upload_id,
                    etags,
                    &declared,
                    row.size as u64,
                )
                .await?;
        }
        let (key, digest) = (row.id.clone(), row.digest.clone());
        let (user, me) = (uploader.user_id.clone(), committer.to_owned());
        // Live, the uploader's grant and the session's end in one transaction: a crash before it leaves
        // an idle session for the reaper (and a pending blob collection removes once abandoned).
        self.db
            .run(move |conn| {
                let written: &[String] = match reservation {
                    Reservation::Write => std::slice::from_ref(&digest),
                    _ => &[],
                };
                transaction_retried(conn, |conn| {
                    // The claim lapsed (its renewals failed) and another commit took the session over.
                    if !uploads::still_writing(conn, &key, &me, now())? {
                        return Err(Error::Busy {
                            message: format!(
                                "another request took over committing upload session {key}; commit again"
                            ),
                        });
                    }
                    blob_writes::hold_live(conn, std::slice::from_ref(&digest), written)?;
                    blobs::grant(conn, &digest, &user)?;
                    Ok(uploads::delete(conn, &key)?)
                })
            })
            .await?;
        if reservation == Reservation::Stored {
            // The same bytes were stored already: the staged copy is not needed.
            if let Err(e) = self
                .store
                .abort_upload(&row.id, &row.backend_upload_id)
                .await
            {
                tracing::warn!(error = %e.chain(), session = %row.id, "dropping a staged duplicate failed; the store check finds it");
            }
        }
        Ok(BlobInfo {
            digest: declared,
            size: row.size,
        })
    }
}
