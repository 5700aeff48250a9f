//! Putting bytes in the store under their digest in step with garbage collection: a writer reserves the
//! digest (`pending`, which collection leaves alone) before the bytes go in, and records them live in the
//! transaction that references them. Bytes already stored are not written again; bytes collection is
//! deleting at that moment are waited for.

use std::time::Duration;

use kiln_core::Sha256Digest;

use crate::db::Database;
use crate::db::repos::blobs::{self, Reservation};
use crate::error::Error;
use crate::services::transaction_retried;

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

/// In the transaction that references `digests`: holds their rows against collection and records the
/// reserved ones live. Fails (the caller's transaction rolls back) when one is no longer usable: a blob
/// found stored at reservation that collection condemned since.
pub fn hold_live(conn: &mut crate::db::DbConnection, digests: &[String]) -> Result<(), Error> {
    // For update, not share: two commits of the same pending blob would each hold a share lock and
    // then wait on the other's to mark it live.
    blobs::lock(conn, digests, blobs::RowLock::Update)?;
    for digest in digests {
        blobs::mark_live(conn, digest)?;
    }
    let live = blobs::find_many(conn, digests)?.len();
    let mut wanted = digests.to_vec();
    wanted.sort();
    wanted.dedup();
    if live != wanted.len() {
        return Err(Error::Busy {
            message: "a blob was deleted by garbage collection while it was being committed; retry"
                .to_owned(),
        });
    }
    Ok(())
}
