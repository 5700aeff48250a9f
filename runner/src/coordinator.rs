//! Whom a runner works for: a kiln server over HTTP ([`crate::http::HttpCoordinator`]), or the server
//! itself in-process (its embedded CPU runner). Both speak the same protocol (kiln_core::runners).

use std::future::Future;
use std::path::Path;

use kiln_core::FilePath;
use kiln_core::api::{DistillationJob, DistillationProgress, DistillationResult, FileEntry};
use kiln_core::runners::{
    BenchmarkJob, BenchmarkReport, HeartbeatAck, RegisteredRunner, RunnerRegistration,
};

#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    /// The runner no longer holds the job: drop it (another runner has it).
    #[error("lost the lease on job {0}")]
    LeaseLost(String),
    /// The server refused for good (bad credentials, bad registration): stop.
    #[error("{0}")]
    Refused(String),
    /// The server or the network failed; try again later.
    #[error("{0}")]
    Unavailable(String),
}

pub trait Coordinator: Send + Sync + 'static {
    fn register(
        &self,
        registration: RunnerRegistration,
    ) -> impl Future<Output = Result<RegisteredRunner, CoordinatorError>> + Send;

    fn heartbeat(
        &self,
        runner: &str,
        job: Option<&str>,
    ) -> impl Future<Output = Result<HeartbeatAck, CoordinatorError>> + Send;

    fn claim(
        &self,
        runner: &str,
    ) -> impl Future<Output = Result<Option<BenchmarkJob>, CoordinatorError>> + Send;

    /// Writes the file's bytes to `into` (the caller checks them against the digest).
    fn fetch(
        &self,
        runner: &str,
        job: &BenchmarkJob,
        file: &FileEntry,
        into: &Path,
    ) -> impl Future<Output = Result<(), CoordinatorError>> + Send;

    fn report(
        &self,
        runner: &str,
        job: &str,
        report: BenchmarkReport,
    ) -> impl Future<Output = Result<(), CoordinatorError>> + Send;

    /// A heartbeat for a distillation, with how far it has got.
    fn heartbeat_progress(
        &self,
        runner: &str,
        job: &str,
        progress: Option<DistillationProgress>,
    ) -> impl Future<Output = Result<HeartbeatAck, CoordinatorError>> + Send;

    fn claim_distillation(
        &self,
        runner: &str,
    ) -> impl Future<Output = Result<Option<DistillationJob>, CoordinatorError>> + Send;

    /// Writes one of the job's input files (`teacher` or `data`) to `into`; the caller checks its digest.
    fn fetch_input(
        &self,
        runner: &str,
        job: &str,
        input: &str,
        file: &FileEntry,
        into: &Path,
    ) -> impl Future<Output = Result<(), CoordinatorError>> + Send;

    /// Writes the job's saved training state to `into`.
    fn load_checkpoint(
        &self,
        runner: &str,
        job: &str,
        into: &Path,
    ) -> impl Future<Output = Result<(), CoordinatorError>> + Send;

    fn save_checkpoint(
        &self,
        runner: &str,
        job: &str,
        step: u64,
        from: &Path,
    ) -> impl Future<Output = Result<(), CoordinatorError>> + Send;

    /// Uploads one of the student's files; the server answers with its digest.
    fn upload_file(
        &self,
        runner: &str,
        job: &str,
        path: &FilePath,
        from: &Path,
    ) -> impl Future<Output = Result<FileEntry, CoordinatorError>> + Send;

    fn report_distillation(
        &self,
        runner: &str,
        job: &str,
        result: DistillationResult,
    ) -> impl Future<Output = Result<(), CoordinatorError>> + Send;
}

/// Writes a downloaded body to `into`, chunk by chunk.
pub async fn save_stream<E: std::fmt::Display>(
    into: &Path,
    body: impl futures_util::Stream<Item = Result<bytes::Bytes, E>>,
) -> Result<(), CoordinatorError> {
    use futures_util::StreamExt;
    use tokio::io::AsyncWriteExt;
    let io = |e: std::io::Error| CoordinatorError::Unavailable(format!("{}: {e}", into.display()));
    let mut out = tokio::fs::File::create(into).await.map_err(io)?;
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| CoordinatorError::Unavailable(e.to_string()))?;
        out.write_all(&chunk).await.map_err(io)?;
    }
    out.flush().await.map_err(io)
}
