//! The pipeline on push: background jobs a server's workers claim from the `pipeline_jobs` table with a
//! lease they keep alive by heartbeat, so jobs survive a restart (an expired lease makes a job claimable
//! again) and a job whose worker keeps dying is given up after [`MAX_ATTEMPTS`].
//!
//! Each kind is a type implementing [`Job`] in its own module; [`registry`] lists them, and [`ON_PUSH`]
//! says what follows what. Benchmarks share the table but are claimed by runners over the runner protocol
//! (`benchmark`, and the runner service above this floor).

pub mod benchmark;
mod convert;
mod job;
mod optimize;
mod scan;
mod variant_store;
mod worker;
mod workspace;

use std::sync::Arc;
use std::time::Duration;

use kiln_core::api::{PipelineOptions, VersionStatus};
use tokio::sync::Notify;

pub use convert::Convert;
pub use job::{HeldJob, Job, JobError, JobRegistry};
pub use optimize::Optimize;
pub use scan::Scan;
pub use worker::spawn_workers;

use crate::db::DbConnection;
use crate::db::repos::{pipeline_jobs, versions};
use crate::db::{Database, now};
use crate::error::Error;
use crate::manifest::ManifestSigner;
use crate::storage::BlobStore;

/// Tries per job; only failures that may not recur (storage or database down, a worker that died) retry.
pub const MAX_ATTEMPTS: i32 = 3;

/// The pipeline on push, in order. Each step's success queues the next with the push's options; the last
/// step's success makes the version ready: its manifest is published and its benchmarks are queued
/// ([`finish_push`]). A step refused fails the version.
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

/// After a step of [`ON_PUSH`] succeeded (in the transaction that records it): queue the next step, with
/// the same payload, or finish the push.
fn after_success(
    conn: &mut DbConnection,
    context: &JobContext,
    held: &HeldJob,
) -> Result<(), Error> {
    let version_id = held.version_id();
    let step = ON_PUSH.iter().position(|kind| *kind == held.row.kind);
    match step.and_then(|i| ON_PUSH.get(i + 1)) {
        Some(next) => {
            pipeline_jobs::enqueue(
                conn,
                version_id,
                next,
                MAX_ATTEMPTS,
                held.row.options.as_deref(),
            )?;
            Ok(())
        }
        None => finish_push(conn, context, version_id),
    }
}

/// The version is ready and published together (no ready version lacks its manifest), and its deployable
/// variants are queued for benchmarks on every device class with a live runner.
fn finish_push(
    conn: &mut DbConnection,
    context: &JobContext,
    version_id: &str,
) -> Result<(), Error> {
    versions::set_status(conn, version_id, VersionStatus::Ready.as_str())?;
    crate::manifest::publish_version(conn, &context.signer, version_id)?;
    let runner_lease = chrono::Duration::from_std(context.runner_lease)
        .map_err(|e| Error::Internal(format!("runner lease out of range: {e}")))?;
    benchmark::queue(conn, version_id, now() - runner_lease)?;
    Ok(())
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
}
