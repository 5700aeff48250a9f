//! Typed background work, in the style of crates.io's worker: a job kind is a type that implements
//! [`Job`] (its name in the `pipeline_jobs.kind` column, its payload as the type's own fields, how it runs),
//! and the [`JobRegistry`] is the one table from kind names to code. Adding a kind is a new module and one
//! `register` line in `pipeline::registry`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use kiln_onnx::ModelError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::JobContext;
use crate::db::DbConnection;
use crate::db::records::PipelineJobRow;
use crate::error::Error;

/// One kind of background job. The value itself is the payload: it is stored as JSON in the job's row
/// (`options`) when queued and read back when a worker claims it; a row without a payload reads as `{}`.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The kind's name in the queue; stable, since queued rows outlive a deploy.
    const KIND: &'static str;

    /// Does the work for the version the claimed job is about. The returned report is stored with the job
    /// and shown in `kiln show`.
    fn run(
        self,
        context: &JobContext,
        held: &HeldJob,
    ) -> impl Future<Output = Result<serde_json::Value, JobError>> + Send;
}

/// A job as its worker holds it: the claimed row, and the lease owner results must be written under.
#[derive(Debug, Clone)]
pub struct HeldJob {
    pub row: PipelineJobRow,
    pub owner: String,
}

impl HeldJob {
    pub fn version_id(&self) -> &str {
        &self.row.version_id
    }

    /// Extends the lease inside the caller's transaction, so results are written only by the worker that
    /// still holds the job (on PostgreSQL the UPDATE also locks the row against a concurrent claim until
    /// the transaction ends).
    pub fn keep_holding(&self, conn: &mut DbConnection) -> Result<(), Error> {
        super::worker::keep_holding(conn, &self.row, &self.owner)
    }

    fn payload<J: Job>(&self) -> Result<J, JobError> {
        serde_json::from_str(self.row.options.as_deref().unwrap_or("{}")).map_err(|e| {
            JobError::Refused(format!("the {} job's payload does not read: {e}", J::KIND))
        })
    }
}

/// Why a job did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The step cannot run on this version (a format kiln does not convert, an op its evaluator does not
    /// run, variants not asked for): recorded as `skipped` with the reason, never a failure of the version.
    #[error("{0}")]
    Skipped(String),
    /// The version's content is the reason (unsafe, malformed): final, shown to the user.
    #[error("{0}")]
    Refused(String),
    /// Something around the job failed (store, database, a task); it goes back to the queue while tries
    /// remain. The cause is kept for the log and the job's message.
    #[error(transparent)]
    Transient(#[from] Error),
}

impl From<tokio::task::JoinError> for JobError {
    fn from(e: tokio::task::JoinError) -> Self {
        JobError::Transient(e.into())
    }
}

impl JobError {
    /// A model library failure: reading the files is worth a retry; anything about the content is final.
    pub fn from_model(e: ModelError) -> Self {
        match e {
            ModelError::Io(_) => JobError::Transient(std::io::Error::other(e).into()),
            other => JobError::Refused(other.to_string()),
        }
    }

    /// What the job's row and `kiln show` say.
    pub fn message(&self) -> String {
        match self {
            JobError::Skipped(message) | JobError::Refused(message) => message.clone(),
            JobError::Transient(e) => e.chain().to_string(),
        }
    }
}

type Outcome<'a> = Pin<Box<dyn Future<Output = Result<serde_json::Value, JobError>> + Send + 'a>>;
type RunErased = for<'a> fn(&'a JobContext, &'a HeldJob) -> Outcome<'a>;

fn run_erased<'a, J: Job>(context: &'a JobContext, held: &'a HeldJob) -> Outcome<'a> {
    Box::pin(async move { held.payload::<J>()?.run(context, held).await })
}

/// The job kinds a worker can run, by name.
#[derive(Default, Clone)]
pub struct JobRegistry {
    kinds: HashMap<&'static str, RunErased>,
}

impl JobRegistry {
    pub fn register<J: Job>(mut self) -> Self {
        let earlier = self.kinds.insert(J::KIND, run_erased::<J>);
        assert!(earlier.is_none(), "job kind {} registered twice", J::KIND);
        self
    }

    /// Runs a claimed job with the code registered for its kind.
    pub async fn run(
        &self,
        context: &JobContext,
        held: &HeldJob,
    ) -> Result<serde_json::Value, JobError> {
        match self.kinds.get(held.row.kind.as_str()) {
            Some(run) => run(context, held).await,
            None => Err(JobError::Refused(format!(
                "unknown job kind {:?}",
                held.row.kind
            ))),
        }
    }
}

/// Serializes a job's payload for its row.
pub fn payload_of<J: Job>(job: &J) -> Result<String, Error> {
    Ok(serde_json::to_string(job)?)
}
