//! One writer per upload at a time. Two requests writing the same bytes of an upload at once could
//! leave one's parts staged under the other's hash state, and a blob stored under a digest its bytes
//! do not have. So a request claims the upload (a conditional update: no other live writer, the
//! offset it expects), renews the claim while it writes, and lets go when it records its progress or
//! fails. A claim whose server died lapses after [`CLAIM_LAPSES`], or as soon as a server started on the
//! same data directory can tell that run has ended ([`Claimant`]).

use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::QueryResult;

use crate::db::{Database, DbConnection, new_id, now};

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

/// Names this server run's claims `RUN.REQUEST`, RUN being the run's replica id (new each run). A server
/// that can tell a run has ended lets go of that run's claims at once instead of leaving them to lapse
/// (`startup::previous_run`).
#[derive(Debug, Clone)]
pub struct Claimant {
    run: Arc<str>,
}

impl Claimant {
    pub fn new(run: &str) -> Self {
        Self { run: run.into() }
    }

    /// The name of a new claim.
    pub fn claim_name(&self) -> String {
        format!("{}.{}", self.run, new_id())
    }
}

/// The SQL `LIKE` pattern of run `run`'s claims; `None` for a run id that `LIKE` would read as a
/// pattern itself (a run file edited by hand): such claims lapse.
pub fn claims_pattern(run: &str) -> Option<String> {
    let plain = !run.is_empty() && !run.contains(['%', '_', '\\', '.']);
    plain.then(|| format!("{run}.%"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_claims_match_its_pattern_and_no_other_runs() {
        let run = "replica-0123456789abcdef0123456789abcdef";
        let pattern = claims_pattern(run).unwrap();
        let prefix = pattern.strip_suffix('%').unwrap();
        let claimant = Claimant::new(run);
        assert!(claimant.claim_name().starts_with(prefix));
        assert_ne!(claimant.claim_name(), claimant.claim_name());
        let other = Claimant::new("replica-0123456789abcdef0123456789abcdee");
        assert!(!other.claim_name().starts_with(prefix));
    }

    /// A run id that `LIKE` would read as a pattern could match other runs' claims: it gets none.
    #[test]
    fn run_ids_that_are_patterns_themselves_get_no_pattern() {
        for run in ["", "%", "replica_1", "a\\b", "replica-1.x"] {
            assert_eq!(claims_pattern(run), None, "{run:?}");
        }
    }
}
