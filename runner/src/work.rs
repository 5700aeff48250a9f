//! The runner's loop: register, then claim a job, keep its lease by heartbeat while fetching its files into
//! the digest-checked cache and measuring, report, repeat. A job whose lease is lost is dropped unreported;
//! one the engine cannot run is reported as failed (final); a device or fetch failure is not reported, so
//! the lease runs out and the job goes back to the queue for another try.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use candle_core::Device;
use kiln_core::api::FileEntry;
use kiln_core::runners::{BenchmarkJob, BenchmarkReport};
use kiln_core::{Sha256Digest, Sha256Hasher};
use tokio_util::sync::CancellationToken;

use crate::coordinator::{Coordinator, CoordinatorError};
use crate::device::DeviceInfo;
use crate::engine::{self, Engine, EngineError, Requested};

pub struct Runner<C> {
    pub coordinator: Arc<C>,
    pub name: String,
    pub device: Device,
    pub info: DeviceInfo,
    /// What it measures with; jobs name one of them.
    pub engines: Vec<Engine>,
    pub settings: engine::Settings,
    /// Files by digest (`sha256/<hex>`), and a scratch folder per job.
    pub cache: PathBuf,
    /// Keep fetched files for later jobs (a standalone runner); the embedded runner, whose files are in
    /// the server's own store, deletes them after each job.
    pub keep_cache: bool,
    /// How often an idle runner asks for work (each ask is also its heartbeat).
    pub idle_poll: Duration,
    /// Whether it takes distillation jobs (asked for before benchmarks).
    pub distill: bool,
}

/// Why a job ended without a result to report.
pub(crate) enum Dropped {
    LeaseLost,
    /// Retry later: the lease runs out and the job is claimable again.
    Transient(String),
    /// Final: reported as failed.
    Final(String),
}

impl<C: Coordinator> Runner<C> {
    /// Registers and works until `stop` (or until the server refuses the runner for good).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) -> Result<(), CoordinatorError> {
        let mut registration = self.info.registration(&self.name, &self.engines);
        if self.distill {
            registration.capabilities.push("distill".to_owned());
        }
        let registered = loop {
            match self.coordinator.register(registration.clone()).await {
                Ok(registered) => break registered,
                Err(CoordinatorError::Unavailable(e)) => {
                    tracing::warn!(error = %e, "cannot register yet; retrying");
                    if pause(&stop, Duration::from_secs(2)).await {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e),
            }
        };
        let id = registered.id;
        let heartbeat = Duration::from_secs(registered.heartbeat_seconds.max(1));
        tracing::info!(runner = %id, device = %self.info.device, "runner registered; waiting for jobs");
        while !stop.is_cancelled() {
            if self.distill {
                match self.coordinator.claim_distillation(&id).await {
                    Ok(Some(job)) => {
                        self.distill(&id, job, heartbeat).await;
                        continue;
                    }
                    Ok(None) => {}
                    Err(CoordinatorError::Refused(e)) => return Err(CoordinatorError::Refused(e)),
                    Err(e) => tracing::warn!(error = %e, "cannot claim a distillation"),
                }
            }
            match self.coordinator.claim(&id).await {
                Ok(Some(job)) => self.work(&id, job, heartbeat).await,
                Ok(None) => {
                    if pause(&stop, self.idle_poll.min(heartbeat)).await {
                        break;
                    }
                }
                Err(CoordinatorError::Refused(e)) => return Err(CoordinatorError::Refused(e)),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim a job");
                    if pause(&stop, Duration::from_secs(2)).await {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    async fn work(self: &Arc<Self>, runner: &str, job: BenchmarkJob, heartbeat: Duration) {
        tracing::info!(job = %job.job_id, model = %job.model, version = %job.version, variant = %job.variant, engine = %job.engine, attempt = job.attempt, "benchmark claimed");
        if !plain_job_id(&job.job_id) {
            tracing::error!(job = %job.job_id, "refusing a job whose id is not a plain id");
            return;
        }
        let lost = CancellationToken::new();
        let beats = {
            let (me, runner, job_id, lost) = (
                self.clone(),
                runner.to_owned(),
                job.job_id.clone(),
                lost.clone(),
            );
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(heartbeat).await;
                    match me.coordinator.heartbeat(&runner, Some(&job_id)).await {
                        Ok(_) => {}
                        Err(CoordinatorError::LeaseLost(_)) => {
                            lost.cancel();
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                    }
                }
            })
        };
        let folder = self.cache.join("jobs").join(&job.job_id);
        let cancel = Arc::new(AtomicBool::new(false));
        let outcome = tokio::select! {
            outcome = self.measure(&folder, runner, &job, cancel.clone()) => outcome,
            () = lost.cancelled() => Err(Dropped::LeaseLost),
        };
        // Whatever happened: stop a benchmark still running, drop the scratch folder and, for a runner that
        // keeps no cache, the fetched files.
        cancel.store(true, Ordering::Relaxed);
        beats.abort();
        let _ = tokio::fs::remove_dir_all(&folder).await;
        if !self.keep_cache {
            for file in &job.files {
                let _ = tokio::fs::remove_file(cache_path(&self.cache, &file.digest)).await;
            }
        }
        let report = match outcome {
            Ok(results) => BenchmarkReport::Succeeded { results },
            Err(Dropped::Final(message)) => BenchmarkReport::Failed { message },
            Err(Dropped::LeaseLost) => {
                tracing::warn!(job = %job.job_id, "lost the job's lease; dropping it");
                return;
            }
            Err(Dropped::Transient(e)) => {
                tracing::warn!(job = %job.job_id, error = %e, "benchmark failed; the job will be retried after its lease runs out");
                return;
            }
        };
        match self.coordinator.report(runner, &job.job_id, report).await {
            Ok(()) => tracing::info!(job = %job.job_id, "benchmark reported"),
            Err(e) => tracing::warn!(job = %job.job_id, error = %e, "the report was not accepted"),
        }
    }

    /// Lays the job's files out in a scratch folder and measures.
    async fn measure(
        self: &Arc<Self>,
        folder: &Path,
        runner: &str,
        job: &BenchmarkJob,
        cancel: Arc<AtomicBool>,
    ) -> Result<Vec<kiln_core::deployment::BenchmarkResult>, Dropped> {
        let io = |e: std::io::Error| Dropped::Transient(format!("{}: {e}", folder.display()));
        tokio::fs::create_dir_all(folder).await.map_err(io)?;
        for file in &job.files {
            let cached = self.cached(runner, job, file).await?;
            lay_out(&cached, &folder.join(file.path.as_str()))
                .await
                .map_err(io)?;
        }
        let model = folder.join(
            job.files
                .first()
                .ok_or_else(|| Dropped::Final("the job lists no files".to_owned()))?
                .path
                .as_str(),
        );
        let engine = self
            .engines
            .iter()
            .find(|e| e.name() == job.engine)
            .cloned()
            .ok_or_else(|| {
                Dropped::Final(format!(
                    "this runner does not measure with the {} engine",
                    job.engine
                ))
            })?;
        let requested = Requested {
            batch_sizes: job.batch_sizes.iter().map(|&b| b as usize).collect(),
            sequence_lengths: job.sequence_lengths.iter().map(|&l| l as usize).collect(),
        };
        let me = self.clone();
        let runner = runner.to_owned();
        let measured = tokio::task::spawn_blocking(move || {
            engine::benchmark(
                &engine,
                &model,
                &me.device,
                &me.info,
                &me.name_for(&runner),
                (&me.settings, &requested),
                &cancel,
            )
        })
        .await
        .map_err(|e| Dropped::Transient(format!("the benchmark thread failed: {e}")))?;
        measured.map_err(|e| match e {
            EngineError::Unsupported(m) => Dropped::Final(m),
            EngineError::Device(m) => Dropped::Transient(m),
        })
    }

    /// `name (id)`: how results name the runner that measured them.
    fn name_for(&self, runner: &str) -> String {
        format!("{} ({runner})", self.name)
    }

    /// A benchmark job's file from the cache (see [`cached_file`]).
    async fn cached(
        &self,
        runner: &str,
        job: &BenchmarkJob,
        file: &FileEntry,
    ) -> Result<PathBuf, Dropped> {
        cached_file(&self.cache, file, &job.job_id, |partial| async move {
            self.coordinator.fetch(runner, job, file, &partial).await
        })
        .await
    }
}

/// The file from the cache, fetched with `fetch` into a partial file and checked against its digest
/// first when it is not there (or no longer holds those bytes: it is checked again on every use).
pub(crate) async fn cached_file<F, Fut>(
    cache: &Path,
    file: &FileEntry,
    job_id: &str,
    fetch: F,
) -> Result<PathBuf, Dropped>
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: std::future::Future<Output = Result<(), CoordinatorError>>,
{
    let path = cache_path(cache, &file.digest);
    if tokio::fs::metadata(&path)
        .await
        .is_ok_and(|m| m.len() == file.size as u64)
    {
        let check = path.clone();
        if tokio::task::spawn_blocking(move || hash_file(&check))
            .await
            .is_ok_and(|d| d.is_ok_and(|d| d == file.digest))
        {
            return Ok(path);
        }
        let _ = tokio::fs::remove_file(&path).await;
    }
    let folder = path.parent().expect("cache paths have a folder");
    let io = |e: std::io::Error| Dropped::Transient(format!("{}: {e}", folder.display()));
    tokio::fs::create_dir_all(folder).await.map_err(io)?;
    let partial = folder.join(format!("{}.partial-{job_id}", file.digest.hex()));
    match fetch(partial.clone()).await {
        Ok(()) => {}
        Err(CoordinatorError::LeaseLost(_)) => return Err(Dropped::LeaseLost),
        Err(e) => return Err(Dropped::Transient(e.to_string())),
    }
    let check = partial.clone();
    let actual = tokio::task::spawn_blocking(move || hash_file(&check))
        .await
        .map_err(|e| Dropped::Transient(e.to_string()))?
        .map_err(io)?;
    if actual != file.digest {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(Dropped::Final(format!(
            "{}: the server sent bytes that hash to {actual}, not {}",
            file.path, file.digest
        )));
    }
    tokio::fs::rename(&partial, &path).await.map_err(io)?;
    Ok(path)
}

/// Puts a cached file at `place` (its folders made): a hard link, or a copy across file systems.
pub(crate) async fn lay_out(cached: &Path, place: &Path) -> std::io::Result<()> {
    if let Some(parent) = place.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let _ = tokio::fs::remove_file(place).await;
    if tokio::fs::hard_link(cached, place).await.is_err() {
        tokio::fs::copy(cached, place).await?;
    }
    Ok(())
}

/// The id names a scratch folder: anything but a plain id (a hostile or broken server) is refused.
pub fn plain_job_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `cache/sha256/<2 hex>/<64 hex>`.
pub fn cache_path(cache: &Path, digest: &Sha256Digest) -> PathBuf {
    let hex = digest.hex();
    cache.join("sha256").join(&hex[..2]).join(hex)
}

fn hash_file(path: &Path) -> std::io::Result<Sha256Digest> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buffer[..n]);
    }
}

/// Sleeps, or returns true at once when `stop` fires.
async fn pause(stop: &CancellationToken, duration: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(duration) => false,
        () = stop.cancelled() => true,
    }
}
