//! The pipeline on push: background jobs a server's workers claim from the `pipeline_jobs` table with a
//! lease they keep alive by heartbeat, so jobs survive a restart (an expired lease makes a job claimable
//! again) and a job whose worker keeps dying is given up after [`MAX_ATTEMPTS`].
//!
//! Each kind is a type implementing [`Job`] in its own module; [`registry`] lists them, and [`ON_PUSH`]
//! says what follows what. Benchmarks share the table but are claimed by runners over the runner protocol
//! (`benchmark`, and the runner service above this floor).

pub mod benchmark;
mod convert;
mod isolation;
mod job;
mod optimize;
mod scan;
pub mod step;
mod variant_store;
mod worker;
mod workspace;

use std::sync::Arc;
use std::time::Duration;

use kiln_core::api::{PipelineOptions, VersionStatus, WebhookEventType};
use tokio::sync::Notify;

pub use convert::Convert;
pub use isolation::{StepLimits, inherited_env};
pub use job::{HeldJob, Job, JobError, JobRegistry};
pub use optimize::Optimize;
pub use scan::Scan;
pub use worker::spawn_workers;

use crate::db::DbConnection;
use crate::db::records::PipelineJobRow;
use crate::db::repos::{pipeline_jobs, versions, webhooks};
use crate::db::{Database, now};
use crate::error::Error;
use crate::manifest::ManifestSigner;
use crate::storage::BlobStore;

/// Tries per job; only failures that may not recur (storage or database down, a worker that died) retry.
pub const MAX_ATTEMPTS: i32 = 3;

/// The pipeline on push, in order. The first step is the gate: its success makes the version `ready` and
/// publishes its manifest (the files as pushed, signed), its refusal fails the version. Every later step
/// adds what it can and, however it ends (succeeded, skipped with a reason, or failed with its message),
/// queues the next with the push's options, and the version stays ready. After the last one the manifests
/// (the version's and its aliases') are re-published with the variants the steps added, and the deployable
/// variants are queued for benchmarks ([`after_step`]).
pub const ON_PUSH: &[&str] = &[Scan::KIND, Convert::KIND, Optimize::KIND];

/// Every job kind this server's workers run.
pub fn registry() -> JobRegistry {
    JobRegistry::default()
        .register::<Scan>()
        .register::<Convert>()
        .register::<Optimize>()
}

/// Queues the first step of a committed version's pipeline, in the caller's transaction (so no committed
/// version ever lacks its pipeline).
pub fn enqueue_push(
    conn: &mut DbConnection,
    version_id: &str,
    options: &PipelineOptions,
) -> Result<(), Error> {
    let first = Scan {
        options: options.clone(),
    };
    let payload = job::payload_of(&first)?;
    pipeline_jobs::enqueue(conn, version_id, Scan::KIND, MAX_ATTEMPTS, Some(&payload))?;
    Ok(())
}

/// How a step of [`ON_PUSH`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEnd {
    Succeeded,
    Skipped,
    Failed,
}

/// After a step of [`ON_PUSH`] ended, in the transaction that records how: the version's state and
/// manifests follow, and the next step is queued.
fn after_step(
    conn: &mut DbConnection,
    context: &JobContext,
    job: &PipelineJobRow,
    end: StepEnd,
) -> Result<(), Error> {
    let version_id = job.version_id.as_str();
    let Some(step) = ON_PUSH.iter().position(|kind| *kind == job.kind) else {
        return Ok(());
    };
    if step == 0 {
        if end != StepEnd::Succeeded {
            versions::set_status(conn, version_id, VersionStatus::Failed.as_str())?;
            webhooks::record_version_event(
                conn,
                WebhookEventType::VersionFailed.as_str(),
                version_id,
                serde_json::json!({ "status": VersionStatus::Failed }),
            )?;
            return Ok(());
        }
        // Ready and published together: no ready version lacks its manifest.
        versions::set_status(conn, version_id, VersionStatus::Ready.as_str())?;
        webhooks::record_version_event(
            conn,
            WebhookEventType::VersionReady.as_str(),
            version_id,
            serde_json::json!({ "status": VersionStatus::Ready }),
        )?;
        crate::manifest::publish_version(conn, &context.signer, version_id)?;
    }
    match ON_PUSH.get(step + 1) {
        Some(next) => {
            pipeline_jobs::enqueue(conn, version_id, next, MAX_ATTEMPTS, job.options.as_deref())?;
        }
        None => {
            crate::manifest::republish(conn, &context.signer, version_id)?;
            let runner_lease = chrono::Duration::from_std(context.runner_lease)
                .map_err(|e| Error::Internal(format!("runner lease out of range: {e}")))?;
            benchmark::queue(
                conn,
                version_id,
                now() - runner_lease,
                job.options.as_deref(),
            )?;
        }
    }
    Ok(())
}

/// Whether a job of this kind decides the version's state (while it runs the version is `processing`).
fn is_gate(kind: &str) -> bool {
    ON_PUSH.first() == Some(&kind)
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

    fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }
}

/// What a job needs.
#[derive(Clone)]
pub struct JobContext {
    pub db: Database,
    pub store: BlobStore,
    /// Signs the version's manifest when its pipeline is ready.
    pub signer: Arc<ManifestSigner>,
    /// A runner without a heartbeat for this long is lost: benchmarks are queued only for device classes
    /// with a runner heard from within it.
    pub runner_lease: Duration,
    /// The child process that opens the version's files, and its limits.
    pub step_limits: StepLimits,
}

/// A step's child answered with an output of another step: a bug, not the model's fault.
fn unexpected(kind: &str) -> JobError {
    JobError::Transient(Error::Internal(format!(
        "the {kind} step's process answered for another step"
    )))
}
