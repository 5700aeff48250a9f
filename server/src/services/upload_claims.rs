//! One writer per upload at a time. Two requests writing the same bytes of an upload at once could
//! leave one's parts staged under the other's hash state, and a blob stored under a digest its bytes
//! do not have. So a request claims the upload (a conditional update: no other live writer, the
//! offset it expects), renews the claim while it writes, and lets go when it records its progress or
//! fails. A claim whose server died lapses after [`CLAIM_LAPSES`], or as soon as that server runs again
//! ([`Claimant`]).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::QueryResult;
use kiln_core::Sha256Digest;

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

/// Names this server's claims `SERVER.REQUEST`. SERVER is the same whenever a server runs again with the
/// same host name, listen address and data directory, and no two servers running at once share it (they
/// cannot listen on one address of one host): so a server that starts holds no claim under its name, and
/// lets go at once of any it finds, which its last run died holding. A push resumed after a restart then
/// goes on without waiting for them to lapse. A server listening on port 0 is named anew each run; its
/// claims lapse.
#[derive(Debug, Clone)]
pub struct Claimant {
    server: Arc<str>,
}

impl Claimant {
    pub fn for_server(host: &str, listen: SocketAddr, data_dir: &Path) -> Self {
        if listen.port() == 0 {
            return Self::fresh();
        }
        let identity = format!("{host}\n{listen}\n{}", data_dir.display());
        let digest = Sha256Digest::of(identity.as_bytes()).hex();
        Self {
            server: digest[..16].into(),
        }
    }

    /// A name no earlier run had.
    pub fn fresh() -> Self {
        Self {
            server: new_id().into(),
        }
    }

    /// The name of a new claim.
    pub fn claim_name(&self) -> String {
        format!("{}.{}", self.server, new_id())
    }

    /// The SQL `LIKE` pattern of this server's claims (its name is hexadecimal: nothing to escape).
    pub fn claims_pattern(&self) -> String {
        format!("{}.%", self.server)
    }
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

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn matches(pattern: &str, name: &str) -> bool {
        name.starts_with(pattern.trim_end_matches('%'))
    }

    #[test]
    fn a_server_run_again_where_it_ran_names_its_claims_as_before() {
        let dir = Path::new("/var/lib/kiln");
        let first = Claimant::for_server("node-1", at(8080), dir);
        let again = Claimant::for_server("node-1", at(8080), dir);
        assert_eq!(first.claims_pattern(), again.claims_pattern());
        assert!(matches(&again.claims_pattern(), &first.claim_name()));
        assert_ne!(first.claim_name(), first.claim_name());
    }

    #[test]
    fn servers_that_can_run_at_once_name_their_claims_apart() {
        let dir = Path::new("/var/lib/kiln");
        let one = Claimant::for_server("node-1", at(8080), dir).claims_pattern();
        for other in [
            Claimant::for_server("node-2", at(8080), dir),
            Claimant::for_server("node-1", at(8081), dir),
            Claimant::for_server("node-1", at(8080), Path::new("/srv/kiln")),
        ] {
            assert_ne!(one, other.claims_pattern());
            assert!(!matches(&one, &other.claim_name()));
        }
    }

    /// Port 0 is another port each run: nothing says two such servers are not running at once.
    #[test]
    fn a_server_on_port_zero_is_named_anew_each_run() {
        let dir = Path::new("/var/lib/kiln");
        let a = Claimant::for_server("node-1", at(0), dir);
        let b = Claimant::for_server("node-1", at(0), dir);
        assert_ne!(a.claims_pattern(), b.claims_pattern());
    }

    /// A pattern holds no character `LIKE` reads specially but its closing `%`.
    #[test]
    fn claim_patterns_hold_no_like_wildcards() {
        for claimant in [
            Claimant::for_server("host_with%odd_chars", at(80), Path::new("/data")),
            Claimant::fresh(),
        ] {
            let pattern = claimant.claims_pattern();
            let server = pattern.strip_suffix(".%").unwrap();
            assert!(!server.contains(['%', '_', '\\']), "{pattern}");
        }
    }
}
