//! Re-issuing manifests before they expire. Expiry protects deployments from a frozen mirror, so an alias
//! that has not moved in 90 days must not freeze itself: kiln signs a new manifest for it with the next
//! sequence, the same content and new dates. Published manifests are never changed.

use chrono::{DateTime, Utc};
use diesel::Connection;

use super::ManifestSigner;
use crate::db::DbConnection;
use crate::db::repos::{aliases, is_unique_violation, manifests, versions};
use crate::error::Error;

/// Manifests are re-issued when less than this share of their validity is left.
const REFRESH_WHEN_LEFT: i32 = 3;

/// Re-issues every version's and alias's newest manifest that expires within a third of the validity
/// from `now`. Returns how many were re-issued. Safe with several servers at once: the alias sequence is
/// taken by compare-and-swap and a version's sequence is unique, so a race re-issues once.
pub fn refresh_expiring(
    conn: &mut DbConnection,
    signer: &ManifestSigner,
    now: DateTime<Utc>,
) -> Result<usize, Error> {
    let threshold = (now + signer.validity() / REFRESH_WHEN_LEFT).naive_utc();
    let (version_ids, alias_ids) = manifests::expiring_before(conn, threshold)?;
    let mut reissued = 0;
    for version_id in version_ids {
        let result = conn.transaction(|conn| {
            let due = manifests::latest_for_version(conn, &version_id)?
                .is_some_and(|m| m.expires_at < threshold);
            let ready = versions::status(conn, &version_id)?.as_deref() == Some("ready");
            if !(due && ready) {
                return Ok(false);
            }
            versions::lock(conn, &version_id)?;
            super::publish_version(conn, signer, &version_id)?;
            Ok::<_, Error>(true)
        });
        reissued += usize::from(counted(result, "version", &version_id));
    }
    for alias_id in alias_ids {
        let result = conn.transaction(|conn| {
            let due = manifests::latest_for_alias(conn, &alias_id)?
                .is_some_and(|m| m.expires_at < threshold);
            if !due {
                return Ok(false);
            }
            let row = aliases::by_id(conn, &alias_id)?;
            versions::lock(conn, &row.version_id)?;
            if !aliases::bump_sequence(conn, &row)? {
                return Ok(false);
            }
            let next = crate::db::records::AliasRow {
                sequence: row.sequence + 1,
                ..row
            };
            super::publish_alias(conn, signer, &next)?;
            Ok::<_, Error>(true)
        });
        reissued += usize::from(counted(result, "alias", &alias_id));
    }
    Ok(reissued)
}

/// Whether one re-issue happened. Another server re-issuing first is fine; any other failure is logged
/// and the pass goes on, so that one bad subject does not keep every later one from being re-issued.
fn counted(result: Result<bool, Error>, what: &str, id: &str) -> bool {
    match result {
        Ok(reissued) => reissued,
        Err(Error::Database(e)) if is_unique_violation(&e) => false,
        Err(e) => {
            tracing::warn!(%what, %id, error = %e.chain(), "cannot re-issue a manifest nearing expiry");
            false
        }
    }
}
