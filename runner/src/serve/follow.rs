//! Following an alias: its manifest is polled with `If-None-Match` (304 while it has not moved); a new one
//! is verified, held to a sequence that never goes backwards, its variant loaded beside the one being
//! served, and only then do new requests go to it. Requests already queued finish on the old variant, whose
//! instances end when its last request is answered. A manifest that fails any check is refused and logged,
//! and the old version keeps serving. A fixed version is followed the same way: its manifest is re-signed
//! before it expires, and a fresh one keeps `--when-expired refuse` serving.

use std::sync::Arc;
use std::time::Duration;

use kiln_core::ModelRef;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::loader::Loader;
use super::registry::{Fetched, Registry};
use super::{ServeError, Served, State, WhenExpired, metrics};

pub struct Follower {
    pub state: Arc<State>,
    pub loader: Loader,
    pub registry: Registry,
    pub subject: ModelRef,
    pub interval: Duration,
    /// Woken by a verified webhook delivery (`--webhook-secret`): poll without waiting out the interval.
    pub poll_now: Arc<Notify>,
}

/// After a webhook's wake-up finds nothing new, the manifest is polled again this many times, this far
/// apart: a registry replica may answer from the manifest it cached a moment before the move.
const RECHECKS: u32 = 2;
const RECHECK_AFTER: Duration = Duration::from_secs(2);
/// Webhook wake-ups poll no closer together than this, so that replayed deliveries cannot keep the
/// registry busy.
const NUDGE_GAP: Duration = Duration::from_secs(1);

/// What to do with a newer manifest than the one served.
enum Change {
    /// The same document (re-fetched without a usable ETag).
    None,
    /// A new sequence that deploys the same bytes (re-signed before expiry, or the alias set again to the
    /// same version): nothing to load.
    Resigned,
    Load,
}

fn compare(served: &Served, fetched: &Fetched) -> Result<Change, ServeError> {
    let manifest = &fetched.verified.manifest;
    let digest = fetched.verified.payload_sha256;
    if manifest.sequence < served.sequence {
        return Err(ServeError::Refused(format!(
            "the manifest does not verify: {} sequence {} is older than sequence {} being served; someone may be serving an old manifest",
            manifest.subject(),
            manifest.sequence,
            served.sequence
        )));
    }
    if manifest.sequence == served.sequence {
        return if digest == served.payload_sha256 {
            Ok(Change::None)
        } else {
            Err(ServeError::Refused(format!(
                "the manifest does not verify: {} sequence {} differs from the manifest with that sequence being served",
                manifest.subject(),
                manifest.sequence
            )))
        };
    }
    let same_bytes = manifest.version.as_str() == served.version
        && manifest
            .variants
            .iter()
            .any(|v| v.name == served.variant && v.sha256 == served.sha256);
    Ok(if same_bytes {
        Change::Resigned
    } else {
        Change::Load
    })
}

impl Follower {
    pub async fn run(self, mut etag: Option<String>, stop: CancellationToken) {
        let mut rechecks: u32 = 0;
        let mut polled = Instant::now();
        loop {
            let wait = if rechecks > 0 {
                RECHECK_AFTER.min(self.interval)
            } else {
                self.interval
            };
            let nudged = tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => false,
                () = self.poll_now.notified() => true,
            };
            if nudged {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep_until(polled + NUDGE_GAP) => {}
                }
                rechecks = RECHECKS;
            } else {
                rechecks = rechecks.saturating_sub(1);
            }
            polled = Instant::now();
            match self.poll(etag.as_deref()).await {
                Ok(Some(next)) => {
                    etag = next;
                    rechecks = 0;
                }
                Ok(None) => {}
                Err(e) => self.failed(e),
            }
        }
    }

    /// Logs a poll that failed; the version served goes on (or not, for an expired manifest under
    /// `--when-expired refuse`, which `State::model` decides).
    fn failed(&self, e: ServeError) {
        match e {
            ServeError::Registry(why) => {
                let served = self.state.current();
                match (served.expired(chrono::Utc::now()), self.state.when_expired) {
                    (None, _) => {
                        tracing::warn!(error = %why, "cannot fetch the manifest; still serving the version loaded, whose manifest is valid")
                    }
                    (Some(at), WhenExpired::Keep) => {
                        tracing::warn!(error = %why, expired_at = %at, "cannot fetch the manifest, and the one served has expired; still serving it (--when-expired keep)")
                    }
                    (Some(at), WhenExpired::Refuse) => {
                        tracing::error!(error = %why, expired_at = %at, "cannot fetch the manifest, and the one served has expired; not serving (--when-expired refuse)")
                    }
                }
            }
            e => {
                metrics::manifest_refused();
                let served = self.state.current();
                tracing::error!(
                    error = %e,
                    serving = %served.version,
                    "refused the alias's new manifest; still serving version {}",
                    served.version
                );
            }
        }
    }

    /// One poll; `Some(etag)` once the newest manifest is the one served (or was accepted).
    async fn poll(&self, etag: Option<&str>) -> Result<Option<Option<String>>, ServeError> {
        let Some(fetched) = self.registry.manifest(&self.subject, etag).await? else {
            return Ok(None);
        };
        let current = self.state.current();
        let next_etag = fetched.etag.clone();
        let manifest = &fetched.verified.manifest;
        let (version, sequence) = (manifest.version.to_string(), manifest.sequence);
        let served = match compare(&current, &fetched)? {
            Change::None => return Ok(Some(next_etag)),
            Change::Resigned => Served {
                reference: current.reference.clone(),
                version: current.version.clone(),
                variant: current.variant.clone(),
                sha256: current.sha256,
                sequence,
                payload_sha256: fetched.verified.payload_sha256,
                expires_at: Some(manifest.expires_at),
                signature: current.signature.clone(),
                labels: current.labels.clone(),
                batcher: current.batcher.clone(),
            },
            Change::Load => {
                tracing::info!(from = %current.version, to = %version, sequence, "the alias moved; loading the new version beside the old");
                self.loader
                    .load(&self.registry, &self.subject, fetched)
                    .await?
            }
        };
        let served = Arc::new(served);
        metrics::serving(&served, Some(&current));
        let previous = self.state.replace(served);
        if previous.version != version {
            tracing::info!(from = %previous.version, to = %version, sequence, "switched: new requests go to version {version}");
        }
        Ok(Some(next_etag))
    }
}
