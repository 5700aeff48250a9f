//! The in-process workers: claim the oldest pipeline job under a lease, keep the lease alive while the job
//! runs, and record its outcome in one transaction with whatever follows it.

use std::time::Duration;

use diesel::Connection;
use kiln_core::api::{JobState, VersionStatus};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{HeldJob, JobContext, JobError, JobRegistry, PipelineQueue, StepEnd};
use crate::db::records::PipelineJobRow;
use crate::db::repos::pipeline_jobs::{self, Claim, LeaseLost, Queue};
use crate::db::repos::versions;
use crate::db::{Database, DbConnection, new_id, now};
use crate::error::Error;

const LEASE: Duration = Duration::from_secs(120);
const HEARTBEAT: Duration = Duration::from_secs(20);
const IDLE_POLL: Duration = Duration::from_secs(2);

/// Starts `count` workers on the current runtime; they stop claiming jobs once `stop` is cancelled.
pub fn spawn_workers(
    context: JobContext,
    registry: JobRegistry,
    queue: PipelineQueue,
    count: usize,
    stop: CancellationToken,
) {
    for _ in 0..count {
        let worker = Worker {
            context: context.clone(),
            registry: registry.clone(),
            queue: queue.clone(),
            owner: format!("embedded-{}", new_id()),
        };
        tokio::spawn(worker.run(stop.clone()));
    }
}

fn lease_until() -> chrono::NaiveDateTime {
    now() + chrono::Duration::from_std(LEASE).expect("lease fits")
}

struct Worker {
    context: JobContext,
    registry: JobRegistry,
    queue: PipelineQueue,
    owner: String,
}

impl Worker {
    async fn run(self, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let notified = self.queue.notified();
            let owner = self.owner.clone();
            let context = self.context.clone();
            let claimed = self
                .context
                .db
                .run(move |conn| {
                    // A job given up (its workers kept dying) ends its step in the same transaction.
                    conn.transaction(|conn| {
                        let claim = pipeline_jobs::claim_next(
                            conn,
                            &owner,
                            lease_until(),
                            Queue::Pipeline,
                        )?;
                        if let Claim::GaveUp(job) = &claim {
                            super::after_step(conn, &context, job, StepEnd::Failed)?;
                        }
                        Ok(claim)
                    })
                })
                .await;
            match claimed {
                Ok(Claim::Claimed(row)) => {
                    self.run_job(HeldJob {
                        row,
                        owner: self.owner.clone(),
                    })
                    .await
                }
                Ok(Claim::GaveUp(job)) => {
                    tracing::warn!(job = %job.id, kind = %job.kind, "pipeline job given up");
                }
                Ok(Claim::Nothing) => {
                    tokio::select! {
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                        _ = notified => {}
                        _ = stop.cancelled() => {}
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e.chain(), "pipeline worker cannot claim jobs");
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
    }

    async fn run_job(&self, held: HeldJob) {
        let span = tracing::info_span!(
            "pipeline job",
            otel.name = %format!("pipeline {}", held.row.kind),
            job.id = %held.row.id,
            job.kind = %held.row.kind,
            job.attempt = held.row.attempts,
            version.id = %held.row.version_id,
        );
        self.run_held_job(held).instrument(span).await
    }

    async fn run_held_job(&self, held: HeldJob) {
        let job = &held.row;
        tracing::info!(job = %job.id, kind = %job.kind, attempt = job.attempts, "pipeline job started");
        if super::is_gate(&job.kind)
            && let Err(e) =
                set_version_status(&self.context.db, &job.version_id, VersionStatus::Processing)
                    .await
        {
            tracing::error!(error = %e.chain(), "cannot mark the version processing");
        }
        let heartbeat = tokio::spawn(keep_lease(
            self.context.db.clone(),
            job.id.clone(),
            held.owner.clone(),
        ));
        let started = std::time::Instant::now();
        let outcome = self.registry.run(&self.context, &held).await;
        heartbeat.abort();
        let result = match &outcome {
            Ok(_) => "succeeded",
            Err(JobError::Skipped(_)) => "skipped",
            Err(JobError::Transient(_)) => "transient",
            Err(_) => "failed",
        };
        metrics::histogram!(crate::telemetry::metrics::JOB_DURATION,
            "kind" => job.kind.clone(), "outcome" => result)
        .record(started.elapsed().as_secs_f64());
        if let Err(JobError::Transient(e)) = &outcome {
            tracing::warn!(job = %job.id, kind = %job.kind, error = %e.chain(), "pipeline job failed; it may be retried");
        }
        if let Err(e) = record_outcome(&self.context, held.clone(), outcome).await {
            // The lease runs out and another try picks the job up.
            tracing::error!(job = %held.row.id, error = %e.chain(), "cannot record the job's outcome");
        }
    }
}

/// Extends the lease inside the caller's transaction; [`LeaseLost`] when another worker took the job.
pub(super) fn keep_holding(
    conn: &mut DbConnection,
    job: &PipelineJobRow,
    owner: &str,
) -> Result<(), Error> {
    if pipeline_jobs::heartbeat(conn, &job.id, owner, lease_until())? {
        Ok(())
    } else {
        Err(LeaseLost::worker(&job.id).into())
    }
}

async fn set_version_status(
    db: &Database,
    version_id: &str,
    status: VersionStatus,
) -> Result<(), Error> {
    let version_id = version_id.to_owned();
    db.run(move |conn| Ok(versions::set_status(conn, &version_id, status.as_str())?))
        .await
}

async fn keep_lease(db: Database, job_id: String, owner: String) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        let (id, me) = (job_id.clone(), owner.clone());
        match db
            .run(move |conn| Ok(pipeline_jobs::heartbeat(conn, &id, &me, lease_until())?))
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job = %job_id, "lost the lease on a running job");
                return;
            }
            Err(e) => tracing::warn!(job = %job_id, error = %e.chain(), "heartbeat failed"),
        }
    }
}

/// Records the outcome while the worker still holds the job, and what follows from it (the version's state,
/// its manifests, the next step) in the same transaction.
async fn record_outcome(
    context: &JobContext,
    held: HeldJob,
    outcome: Result<serde_json::Value, JobError>,
) -> Result<(), Error> {
    let context = context.clone();
    let db = context.db.clone();
    db.run(move |conn| {
        conn.transaction(|conn| {
            let job = &held.row;
            let (state, message, report, end) = match outcome {
                Err(e @ JobError::Transient(_)) if job.attempts < job.max_attempts => {
                    pipeline_jobs::release(conn, &job.id, &held.owner, &e.message())?;
                    return Ok(());
                }
                Ok(report) => (
                    JobState::Succeeded,
                    None,
                    Some(report.to_string()),
                    StepEnd::Succeeded,
                ),
                Err(JobError::Skipped(reason)) => {
                    (JobState::Skipped, Some(reason), None, StepEnd::Skipped)
                }
                Err(JobError::Refused(message)) => {
                    (JobState::Failed, Some(message), None, StepEnd::Failed)
                }
                Err(e) => {
                    let message = format!("gave up after {} tries: {}", job.attempts, e.message());
                    (JobState::Failed, Some(message), None, StepEnd::Failed)
                }
            };
            let finished = pipeline_jobs::finish(
                conn,
                &job.id,
                &held.owner,
                state,
                message.as_deref(),
                report.as_deref(),
            )?;
            if finished {
                super::after_step(conn, &context, job, end)?;
            }
            Ok(())
        })
    })
    .await
}
