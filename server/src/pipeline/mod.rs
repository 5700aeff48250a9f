//! The pipeline on push (DESIGN.md): every committed version gets a `scan` job, whose success queues a
//! `convert` job, whose success queues an `optimize` job. In-process workers claim jobs through the database with a lease they keep alive by
//! heartbeat, so jobs survive a restart (an expired lease makes a job claimable again) and a job whose
//! worker keeps dying is given up after [`MAX_ATTEMPTS`].

pub mod benchmark;
mod convert;
pub mod embedded_runner;
mod optimize;
mod scan;
mod variant_store;
mod workspace;

use std::sync::Arc;
use std::time::Duration;

use diesel::Connection;
use kiln_core::api::{JobState, VersionStatus};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::db::records::PipelineJobRow;
use crate::db::repos::pipeline_jobs::{self, Claim, Queue};
use crate::db::repos::versions;
use crate::db::{Database, new_id, now};
use crate::error::Error;
use crate::storage::BlobStore;

pub const JOB_SCAN: &str = "scan";
pub const JOB_CONVERT: &str = "convert";
pub const JOB_OPTIMIZE: &str = "optimize";
/// Tries per job; only failures that may not recur (storage or database down, a worker that died) retry.
pub const MAX_ATTEMPTS: i32 = 3;

const LEASE: Duration = Duration::from_secs(120);
const HEARTBEAT: Duration = Duration::from_secs(20);
const IDLE_POLL: Duration = Duration::from_secs(2);

/// Why a job did not succeed.
#[derive(Debug)]
pub enum JobError {
    /// The version's content is the reason (unsafe, malformed, unsupported): final, shown to the user.
    Refused(String),
    /// Something around the job failed; it goes back to the queue while tries remain.
    Transient(String),
}

impl From<Error> for JobError {
    fn from(e: Error) -> Self {
        JobError::Transient(e.to_string())
    }
}

/// Wakes idle workers when a version is committed (they also poll, so a missed wake-up only delays).
#[derive(Clone, Default)]
pub struct PipelineQueue {
    notify: Arc<Notify>,
}

impl PipelineQueue {
    pub fn wake(&self) {
        self.notify.notify_waiters();
    }
}

/// What a job needs.
#[derive(Clone)]
pub struct JobContext {
    pub db: Database,
    pub store: BlobStore,
    /// Signs the version's manifest when its pipeline is ready.
    pub signer: Arc<crate::manifest::ManifestSigner>,
    /// A runner without a heartbeat for this long is lost: benchmarks are queued only for device classes
    /// with a runner heard from within it.
    pub runner_lease: Duration,
}

/// Starts `count` workers on the current runtime; they stop claiming jobs once `stop` is cancelled.
pub fn spawn_workers(
    context: JobContext,
    queue: PipelineQueue,
    count: usize,
    stop: CancellationToken,
) {
    for _ in 0..count {
        let owner = format!("embedded-{}", new_id());
        tokio::spawn(worker_loop(
            context.clone(),
            queue.clone(),
            owner,
            stop.clone(),
        ));
    }
}

fn lease_until() -> chrono::NaiveDateTime {
    now() + chrono::Duration::from_std(LEASE).expect("lease fits")
}

async fn worker_loop(
    context: JobContext,
    queue: PipelineQueue,
    owner: String,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        let notified = queue.notify.notified();
        let claimed = {
            let owner = owner.clone();
            context
                .db
                .run(move |conn| {
                    Ok(pipeline_jobs::claim_next(
                        conn,
                        &owner,
                        lease_until(),
                        Queue::Pipeline,
                    )?)
                })
                .await
        };
        match claimed {
            Ok(Claim::Claimed(job)) => run_job(&context, &owner, job).await,
            Ok(Claim::GaveUp(job)) => {
                tracing::warn!(job = %job.id, kind = %job.kind, "pipeline job given up");
                let _ =
                    set_version_status(&context.db, &job.version_id, VersionStatus::Failed).await;
            }
            Ok(Claim::Nothing) => {
                tokio::select! {
                    _ = tokio::time::sleep(IDLE_POLL) => {}
                    _ = notified => {}
                    _ = stop.cancelled() => {}
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "pipeline worker cannot claim jobs");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

/// Extends the lease inside the caller's transaction, so results are written only by the worker that
/// still holds the job (on PostgreSQL the UPDATE also locks the row against a concurrent claim until the
/// transaction ends).
pub(crate) fn keep_holding(
    conn: &mut crate::db::DbConnection,
    job: &PipelineJobRow,
    owner: &str,
) -> Result<(), Error> {
    if pipeline_jobs::heartbeat(conn, &job.id, owner, lease_until())? {
        Ok(())
    } else {
        Err(Error::conflict(
            "lease_lost",
            "this worker no longer holds the job; another worker took it over",
        ))
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

async fn run_job(context: &JobContext, owner: &str, job: PipelineJobRow) {
    tracing::info!(job = %job.id, kind = %job.kind, attempt = job.attempts, "pipeline job started");
    if let Err(e) =
        set_version_status(&context.db, &job.version_id, VersionStatus::Processing).await
    {
        tracing::error!(error = %e, "cannot mark the version processing");
    }
    let heartbeat = tokio::spawn(keep_lease(
        context.db.clone(),
        job.id.clone(),
        owner.to_owned(),
    ));
    let outcome = match job.kind.as_str() {
        JOB_SCAN => scan::run(context, &job).await,
        JOB_CONVERT => convert::run(context, &job, owner).await,
        JOB_OPTIMIZE => optimize::run(context, &job, owner).await,
        other => Err(JobError::Refused(format!("unknown job kind {other:?}"))),
    };
    heartbeat.abort();
    if let Err(e) = record_outcome(
        &context.db,
        &context.signer,
        context.runner_lease,
        owner,
        &job,
        outcome,
    )
    .await
    {
        // The lease runs out and another try picks the job up.
        tracing::error!(job = %job.id, error = %e, "cannot record the job's outcome");
    }
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
            Err(e) => tracing::warn!(job = %job_id, error = %e, "heartbeat failed"),
        }
    }
}

async fn record_outcome(
    db: &Database,
    signer: &Arc<crate::manifest::ManifestSigner>,
    runner_lease: Duration,
    owner: &str,
    job: &PipelineJobRow,
    outcome: Result<serde_json::Value, JobError>,
) -> Result<(), Error> {
    let owner = owner.to_owned();
    let job = job.clone();
    let signer = signer.clone();
    let runner_lease = chrono::Duration::from_std(runner_lease).expect("lease fits");
    db.run(move |conn| {
        conn.transaction(|conn| {
            let (id, version_id) = (job.id.as_str(), job.version_id.as_str());
            match outcome {
                Ok(report) => {
                    let report = report.to_string();
                    if !pipeline_jobs::finish(
                        conn,
                        id,
                        &owner,
                        JobState::Succeeded,
                        None,
                        Some(&report),
                    )? {
                        return Ok(());
                    }
                    let options = job.options.as_deref();
                    match job.kind.as_str() {
                        JOB_SCAN => pipeline_jobs::enqueue(
                            conn,
                            version_id,
                            JOB_CONVERT,
                            MAX_ATTEMPTS,
                            options,
                        )?,
                        JOB_CONVERT => pipeline_jobs::enqueue(
                            conn,
                            version_id,
                            JOB_OPTIMIZE,
                            MAX_ATTEMPTS,
                            options,
                        )?,
                        _ => {
                            versions::set_status(conn, version_id, VersionStatus::Ready.as_str())?;
                            // Ready and published together: no ready version lacks its manifest.
                            crate::manifest::publish_version(conn, &signer, version_id)?;
                            benchmark::queue(conn, version_id, now() - runner_lease)?;
                        }
                    }
                }
                Err(JobError::Refused(message)) => {
                    if pipeline_jobs::finish(
                        conn,
                        id,
                        &owner,
                        JobState::Failed,
                        Some(&message),
                        None,
                    )? {
                        versions::set_status(conn, version_id, VersionStatus::Failed.as_str())?;
                    }
                }
                Err(JobError::Transient(message)) if job.attempts < job.max_attempts => {
                    pipeline_jobs::release(conn, id, &owner, &message)?;
                }
                Err(JobError::Transient(message)) => {
                    let message = format!("gave up after {} tries: {message}", job.attempts);
                    if pipeline_jobs::finish(
                        conn,
                        id,
                        &owner,
                        JobState::Failed,
                        Some(&message),
                        None,
                    )? {
                        versions::set_status(conn, version_id, VersionStatus::Failed.as_str())?;
                    }
                }
            }
            Ok(())
        })
    })
    .await
}
