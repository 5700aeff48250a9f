//! Putting bytes in the store under their digest in step with garbage collection: a writer reserves the
//! digest (`pending`, which collection leaves alone) before the bytes go in, and records them live in the
//! transaction that references them. Bytes already stored are not written again; bytes collection is
//! deleting at that moment are waited for.

use std::time::Duration;

use kiln_core::Sha256Digest;

use crate::db::Database;
use crate::db::repos::blobs::{self, Reservation};
use crate::db::transaction_retried;
use crate::error::Error;

/// How long a writer waits for a collection to finish deleting the same bytes (one batch's deletes).
const CONDEMNED_WAIT: Duration = Duration::from_secs(10);
const CONDEMNED_POLL: Duration = Duration::from_millis(200);

/// Reserves `digest` for a writer: `Write` to put the bytes in the store (then record them with
/// [`blobs::mark_live`]), `Stored` when they are there already.
pub async fn reserve(
    db: &Database,
    digest: &Sha256Digest,
    size: i64,
) -> Result<Reservation, Error> {
    let deadline = tokio::time::Instant::now() + CONDEMNED_WAIT;
    loop {
        let key = digest.to_string();
        let reservation = db
            .run(move |conn| {
                transaction_retried(conn, |conn| Ok(blobs::reserve(conn, &key, size)?))
            })
            .await?;
        if reservation != Reservation::Condemned {
            return Ok(reservation);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Busy {
                message: format!(
                    "{digest} is being deleted by garbage collection right now; retry in a few seconds"
                ),
            });
        }
        tokio::time::sleep(CONDEMNED_POLL).await;
    }
}

/// In the transaction that references `digests`: holds their rows against collection and records live
/// the ones this caller wrote (`written`, reserved by it). Fails (the caller's transaction rolls back)
/// when one is not usable: a blob found stored at reservation that collection condemned since, or one
/// the store check found missing that another writer is restoring.
pub fn hold_live(
    conn: &mut crate::db::DbConnection,
    digests: &[String],
    written: &[String],
) -> Result<(), Error> {
    let mut wanted = digests.to_vec();
    wanted.sort();
    wanted.dedup();
    // For update, not share: two commits of the same pending blob would each hold a share lock and
    // then wait on the other's to mark it live.
    blobs::lock(conn, &wanted, blobs::RowLock::Update)?;
    for digest in written {
        blobs::mark_live(conn, digest)?;
    }
    let live = blobs::find_many(conn, &wanted)?.len();
    if live != wanted.len() {
        return Err(Error::Busy {
            message: "a blob is not usable right now (garbage collection is deleting it, or the store check found it missing and it is being uploaded again); retry".to_owned(),
        });
    }
    Ok(())
}

/// Records live, in its own transaction, a blob this caller reserved and wrote.
pub async fn written(db: &Database, digest: &Sha256Digest) -> Result<(), Error> {
    let key = digest.to_string();
    db.run(move |conn| Ok(blobs::mark_live(conn, &key)?)).await
}
