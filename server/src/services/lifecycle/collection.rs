//! Garbage collection: mark and sweep in batches of blob rows taken in digest order (keyset pagination,
//! so memory stays flat over millions of rows), one replica at a time under a lease.
//!
//! Each batch is marked without locks, then condemned in a transaction that locks the rows and asks
//! again (a version committed meanwhile keeps its blobs), then the objects are deleted (S3: 1,000 keys a
//! request) and only then the rows. A run stopped anywhere leaves rows condemned (never referenced again,
//! never usable) that the next run finishes first.

use std::collections::HashSet;
use std::time::Instant;

use chrono::{NaiveDateTime, Utc};
use kiln_core::api::{CollectionReport, CollectionRequest};
use kiln_core::{ErrorCode, Sha256Digest};

use super::{LifecycleService, scheduler};
use crate::db::repos::audit::{self, Actor};
use crate::db::repos::collection::{self, BlobEntry, Cutoffs};
use crate::db::repos::leases;
use crate::db::{new_id, now};
use crate::error::Error;
use crate::services::transaction_retried;

const LEASE: &str = crate::db::repos::blobs::COLLECTION_LEASE;
/// The longest grace period a run may ask for.
const MAX_GRACE_SECS: u64 = 315_360_000;

impl LifecycleService {
    /// Collects now (`kiln admin gc`): refused with 409 while another run holds the lease. Audited.
    pub async fn collect(
        &self,
        request: CollectionRequest,
        actor: Actor,
    ) -> Result<CollectionReport, Error> {
        if request.grace_seconds.is_some_and(|s| s > MAX_GRACE_SECS) {
            return Err(Error::bad_request(
                ErrorCode::InvalidJson,
                format!("grace_seconds must be at most {MAX_GRACE_SECS} (ten years)"),
            ));
        }
        let holder = new_id();
        self.take_lease(&holder).await?;
        let report = self.collect_holding(&holder, &request, 0).await;
        self.release_lease(&holder).await;
        let report = report?;
        if !report.dry_run {
            self.audit_collection(&actor, &report).await?;
        }
        Ok(report)
    }

    /// The server's own run: retention rules, then collection. Quietly skipped while another replica
    /// holds the lease.
    pub async fn scheduled_run(&self) -> Result<Option<CollectionReport>, Error> {
        let holder = new_id();
        match self.take_lease(&holder).await {
            Ok(()) => {}
            Err(Error::Conflict { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
        let result = async {
            let retired = self.apply_all_retention_rules(&holder).await?;
            self.collect_holding(&holder, &CollectionRequest::default(), retired)
                .await
        }
        .await;
        self.release_lease(&holder).await;
        let report = result?;
        self.audit_collection(&scheduler(), &report).await?;
        Ok(Some(report))
    }

    async fn audit_collection(
        &self,
        actor: &Actor,
        report: &CollectionReport,
    ) -> Result<(), Error> {
        let (actor, detail) = (actor.clone(), serde_json::to_value(report)?);
        self.db
            .run(move |conn| {
                Ok(audit::record(
                    conn,
                    &actor,
                    "storage.collect",
                    "blobs",
                    detail,
                )?)
            })
            .await
    }

    fn lease_span(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::minutes(2))
    }

    async fn take_lease(&self, holder: &str) -> Result<(), Error> {
        let (holder, lease) = (holder.to_owned(), self.lease_span());
        let taken = self
            .db
            .run(move |conn| {
                transaction_retried(conn, |conn| {
                    Ok(leases::acquire(conn, LEASE, &holder, now(), lease)?)
                })
            })
            .await?;
        taken.map_err(|(_, until)| Error::Conflict {
            code: ErrorCode::CollectionRunning,
            message: format!(
                "a garbage collection is running (its lease runs until {} UTC unless renewed); wait for it to finish",
                until.format("%Y-%m-%d %H:%M:%S")
            ),
            details: None,
        })
    }

    /// Renews the lease once a quarter of it has passed since `renewed` (then resets it); fails when it
    /// was lost, so a run that stalled past its lease stops before it deletes anything more.
    pub(super) async fn keep_lease(
        &self,
        holder: &str,
        renewed: &mut Instant,
    ) -> Result<(), Error> {
        if renewed.elapsed() < self.settings.lease / 4 {
            return Ok(());
        }
        *renewed = Instant::now();
        let (holder, lease) = (holder.to_owned(), self.lease_span());
        let held = self
            .db
            .run(move |conn| Ok(leases::renew(conn, LEASE, &holder, now(), lease)?))
            .await?;
        if held {
            return Ok(());
        }
        Err(Error::Conflict {
            code: ErrorCode::CollectionRunning,
            message: "this collection lost its lease (it stalled past it) and stopped; another replica collects now"
                .to_owned(),
            details: None,
        })
    }

    async fn release_lease(&self, holder: &str) {
        let holder = holder.to_owned();
        if let Err(e) = self
            .db
            .run(move |conn| Ok(leases::release(conn, LEASE, &holder)?))
            .await
        {
            tracing::warn!(error = %e.chain(), "releasing the collection lease failed; it expires");
        }
    }

    async fn collect_holding(
        &self,
        holder: &str,
        request: &CollectionRequest,
        versions_retired: u64,
    ) -> Result<CollectionReport, Error> {
        let clock = Instant::now();
        let mut renewed = Instant::now();
        let started_at = Utc::now();
        let grace = request
            .grace_seconds
            .map(std::time::Duration::from_secs)
            .unwrap_or(self.settings.grace);
        let at = now();
        let grace_span = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::MAX);
        let abandoned =
            chrono::Duration::from_std(self.upload_ttl.max(grace)).unwrap_or(chrono::Duration::MAX);
        // A span past the calendar's start keeps everything (never: collects everything).
        let before = |span| at.checked_sub_signed(span).unwrap_or(NaiveDateTime::MIN);
        let cutoffs = Cutoffs {
            recorded_before: before(grace_span),
            granted_after: before(grace_span),
            reserved_before: before(abandoned),
        };
        let mut report = CollectionReport {
            dry_run: request.dry_run,
            grace_seconds: grace.as_secs(),
            blobs_scanned: 0,
            blobs_deleted: 0,
            bytes_freed: 0,
            deletions_resumed: 0,
            uploads_aborted: 0,
            tar_layers_pruned: 0,
            versions_retired,
            started_at,
            duration_ms: 0,
        };
        if !request.dry_run {
            self.keep_lease(holder, &mut renewed).await?;
            report.uploads_aborted = (self.uploads.reap_idle(self.upload_ttl).await?
                + self.oci.reap_idle_uploads(self.upload_ttl).await?)
                as u64;
            report.tar_layers_pruned = self
                .db
                .run(|conn| Ok(collection::prune_tar_layers(conn)?))
                .await? as u64;
            report.deletions_resumed = self.finish_condemned(holder, &mut renewed).await?;
        }
        let batch = self.settings.batch_rows;
        let mut after = String::new();
        loop {
            let from = after.clone();
            let (scanned, last, garbage) = self
                .db
                .read(move |conn| {
                    let page = collection::page(conn, &from, batch)?;
                    let last = page.last().map(|r| r.digest.clone());
                    Ok((
                        page.len(),
                        last,
                        collection::garbage(conn, &page, &cutoffs)?,
                    ))
                })
                .await?;
            let Some(last) = last else { break };
            after = last;
            self.keep_lease(holder, &mut renewed).await?;
            report.blobs_scanned += scanned as u64;
            if garbage.is_empty() {
                continue;
            }
            if request.dry_run {
                report.blobs_deleted += garbage.len() as u64;
                report.bytes_freed += garbage.iter().map(|b| b.size as u64).sum::<u64>();
                continue;
            }
            let digests: Vec<String> = garbage.into_iter().map(|b| b.digest).collect();
            let condemned = self
                .db
                .run(move |conn| {
                    transaction_retried(conn, |conn| {
                        Ok(collection::condemn(conn, &digests, &cutoffs)?)
                    })
                })
                .await?;
            self.keep_lease(holder, &mut renewed).await?;
            let (count, bytes) = self.sweep(condemned).await?;
            report.blobs_deleted += count;
            report.bytes_freed += bytes;
        }
        report.duration_ms = clock.elapsed().as_millis() as u64;
        tracing::info!(
            dry_run = report.dry_run,
            scanned = report.blobs_scanned,
            deleted = report.blobs_deleted,
            bytes = report.bytes_freed,
            ms = report.duration_ms,
            "garbage collection finished"
        );
        Ok(report)
    }

    /// Finishes the deletions a run stopped mid-sweep left: condemned rows, whose objects may or may not
    /// be gone yet.
    async fn finish_condemned(&self, holder: &str, renewed: &mut Instant) -> Result<u64, Error> {
        let batch = self.settings.batch_rows;
        let mut finished = 0;
        loop {
            let rows = self
                .db
                .run(move |conn| Ok(collection::condemned(conn, "", batch)?))
                .await?;
            if rows.is_empty() {
                return Ok(finished);
            }
            self.keep_lease(holder, renewed).await?;
            finished += self.sweep(rows).await?.0;
        }
    }

    /// Deletes condemned blobs' objects, then forgets their rows; returns how many and their bytes. Only
    /// rows still condemned right before the deletion go (a writer may have taken one over since).
    async fn sweep(&self, condemned: Vec<BlobEntry>) -> Result<(u64, u64), Error> {
        if condemned.is_empty() {
            return Ok((0, 0));
        }
        let names: Vec<String> = condemned.iter().map(|b| b.digest.clone()).collect();
        let still: HashSet<String> = self
            .db
            .run(move |conn| Ok(collection::still_condemned(conn, &names)?))
            .await?
            .into_iter()
            .collect();
        let condemned: Vec<BlobEntry> = condemned
            .into_iter()
            .filter(|b| still.contains(&b.digest))
            .collect();
        let digests: Vec<Sha256Digest> = condemned
            .iter()
            .map(|b| b.digest.parse())
            .collect::<Result<_, _>>()?;
        self.store.delete_blobs(&digests).await?;
        let bytes = condemned.iter().map(|b| b.size as u64).sum();
        let names: Vec<String> = condemned.into_iter().map(|b| b.digest).collect();
        let forgotten = self
            .db
            .run(move |conn| {
                transaction_retried(conn, |conn| Ok(collection::forget(conn, &names)?))
            })
            .await?;
        Ok((forgotten as u64, bytes))
    }
}
