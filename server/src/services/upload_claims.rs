//! One writer per upload at a time. Two requests writing the same bytes of an upload at once could
//! leave one's parts staged under the other's hash state, and a blob stored under a digest its bytes
//! do not have. So a request claims the upload (a conditional update: no other live writer, the
//! offset it expects), renews the claim while it writes, and lets go when it records its progress or
//! fails. A claim whose server died lapses after [`CLAIM_LAPSES`].

use chrono::NaiveDateTime;
use diesel::QueryResult;

use crate::db::{Database, DbConnection, now};

/// How long a claim lasts unless renewed; a writer renews it four times as often. It is all a push
/// resumed after its server died mid-chunk waits (answered `upload_busy` meanwhile): short, because a
/// writer that is alive renews whether or not its client is sending.
pub const CLAIM_LAPSES: std::time::Duration = std::time::Duration::from_secs(20);

/// The seconds a request refused because another holds the claim is told to wait (`Retry-After`).
pub const BUSY_RETRY_AFTER: u64 = 1;

/// Claims older than this have lapsed.
pub fn stale_before(at: NaiveDateTime) -> NaiveDateTime {
    at - chrono::Duration::from_std(CLAIM_LAPSES).unwrap_or_default()
}

/// Renews a claim while it lives; dropping it stops renewing.
pub struct ClaimKeeper(tokio::task::JoinHandle<()>);

impl ClaimKeeper {
    /// Renews with `renew` (which says whether the claim is still held) until dropped.
    pub fn start<F>(db: Database, renew: F) -> Self
    where
        F: Fn(&mut DbConnection, NaiveDateTime) -> QueryResult<bool>
            + Send
            + Sync
            + Clone
            + 'static,
    {
        Self(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(CLAIM_LAPSES / 4);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let renew = renew.clone();
                let held = db.run(move |conn| Ok(renew(conn, now())?)).await;
                if !matches!(held, Ok(true)) {
                    return;
                }
            }
        }))
    }
}

impl Drop for ClaimKeeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}
