//! The embedded default's CPU runner: kiln-runner's loop, in-process, speaking the runner protocol to this
//! server's services instead of over HTTP. It registers and shows in `GET /api/v1/runners` like any other;
//! KILN_EMBEDDED_RUNNER=false turns it off (then benchmarks wait for a `kiln-runner`).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kiln_core::api::FileEntry;
use kiln_core::runners::{
    BenchmarkJob, BenchmarkReport, HeartbeatAck, RegisteredRunner, RunnerRegistration,
};
use kiln_runner::engine::Settings;
use kiln_runner::{Coordinator, CoordinatorError, Runner};
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::services::Services;
use crate::services::downloads::FileSource;

struct EmbeddedCoordinator {
    services: Services,
    /// Stands for the credential a remote runner registers with.
    token_id: String,
}

fn coordinator_error(e: Error) -> CoordinatorError {
    match e {
        Error::LeaseLost(lost) => CoordinatorError::LeaseLost(lost.job_id),
        e if e.is_transient() => CoordinatorError::Unavailable(e.chain().to_string()),
        other => CoordinatorError::Refused(other.to_string()),
    }
}

impl Coordinator for EmbeddedCoordinator {
    async fn register(
        &self,
        registration: RunnerRegistration,
    ) -> Result<RegisteredRunner, CoordinatorError> {
        self.services
            .runners
            .register(self.token_id.clone(), registration)
            .await
            .map_err(coordinator_error)
    }

    async fn heartbeat(
        &self,
        runner: &str,
        job: Option<&str>,
    ) -> Result<HeartbeatAck, CoordinatorError> {
        self.services
            .runners
            .heartbeat(
                runner.to_owned(),
                self.token_id.clone(),
                job.map(str::to_owned),
            )
            .await
            .map_err(coordinator_error)
    }

    async fn claim(&self, runner: &str) -> Result<Option<BenchmarkJob>, CoordinatorError> {
        self.services
            .runners
            .claim(runner.to_owned(), self.token_id.clone())
            .await
            .map_err(coordinator_error)
    }

    async fn fetch(
        &self,
        runner: &str,
        job: &BenchmarkJob,
        file: &FileEntry,
        into: &Path,
    ) -> Result<(), CoordinatorError> {
        let subject = self
            .services
            .runners
            .held_job(runner.to_owned(), self.token_id.clone(), job.job_id.clone())
            .await
            .map_err(coordinator_error)?;
        let download = self
            .services
            .downloads
            .open(
                subject.namespace,
                subject.model,
                subject.version,
                FileSource::Variant(subject.variant),
                file.path.clone(),
                |_| Ok(None),
            )
            .await
            .map_err(coordinator_error)?;
        kiln_runner::coordinator::save_stream(into, download.body).await
    }

    async fn report(
        &self,
        runner: &str,
        job: &str,
        report: BenchmarkReport,
    ) -> Result<(), CoordinatorError> {
        self.services
            .runners
            .report(
                runner.to_owned(),
                self.token_id.clone(),
                job.to_owned(),
                report,
            )
            .await
            .map_err(coordinator_error)
    }
}

/// Starts the embedded CPU runner on the current runtime; it stops when `stop` fires.
pub fn spawn(services: Services, cache: &Path, threads: u32, stop: CancellationToken) {
    let info = kiln_runner::device::DeviceInfo::cpu(threads as usize);
    let runner = Arc::new(Runner {
        coordinator: Arc::new(EmbeddedCoordinator {
            services,
            token_id: "embedded".to_owned(),
        }),
        name: "embedded".to_owned(),
        device: candle_core::Device::Cpu,
        info,
        // Lighter than a dedicated runner's defaults: it shares the machine with the server.
        settings: Settings {
            threads: threads as usize,
            warmup: 2,
            min_iterations: 3,
            max_iterations: 100,
            time_budget: Duration::from_secs(1),
            ..Settings::default()
        },
        cache: cache.to_owned(),
        keep_cache: false,
        idle_poll: Duration::from_secs(1),
    });
    tokio::spawn(async move {
        if let Err(e) = runner.run(stop).await {
            tracing::error!(error = %e, "the embedded runner stopped");
        }
    });
}
