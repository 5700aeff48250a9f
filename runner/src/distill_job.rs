//! A distillation job from a server (docs/distillation.md): fetch the teacher and the dataset by digest,
//! continue from the server's saved training state when there is one, train with progress in every
//! heartbeat and the state sent back at each checkpoint, then upload the student and its report. A lost
//! lease (the job was cancelled, or this runner was too slow to heartbeat) stops the training at the next
//! step; a failure that may not recur (the network, the disk) leaves the job for the lease to run out and
//! another runner to resume.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kiln_core::FilePath;
use kiln_core::api::{
    DistillationJob, DistillationProgress, DistillationRequest, DistillationResult, FileEntry,
};
use kiln_onnx::ModelError;
use kiln_onnx::distill::architecture::StudentShape;
use kiln_onnx::distill::training::{Observer, Progress};
use kiln_onnx::distill::{Outcome, Request, Settings, distill};

use crate::coordinator::{Coordinator, CoordinatorError};
use crate::work::{Dropped, Runner, cached_file};

/// The report's name among the student's files.
pub const REPORT_FILE: &str = "distillation-report.json";

/// The library's settings for a request, each knob the request leaves out at its default.
pub fn settings_of(request: &DistillationRequest) -> Result<Settings, String> {
    let student = StudentShape::parse(request.student.as_deref().unwrap_or("layers=2"))?;
    let mut s = Settings::new(student);
    let t = &mut s.training;
    t.steps = request.steps.map_or(t.steps, |v| v as usize);
    t.batch_size = request.batch_size.map_or(t.batch_size, |v| v as usize);
    t.learning_rate = request.learning_rate.unwrap_or(t.learning_rate);
    t.objective.temperature = request.temperature.unwrap_or(t.objective.temperature);
    t.seed = request.seed.unwrap_or(t.seed);
    t.checkpoint_every_seconds = request
        .checkpoint_every_seconds
        .map_or(t.checkpoint_every_seconds, u64::from);
    s.sequence_length = request
        .sequence_length
        .map_or(s.sequence_length, |v| v as usize);
    Ok(s)
}

/// The loop's view of the server: progress kept for the heartbeat, each state file sent back, and the
/// lease's loss seen as a cancellation.
struct ServerObserver<C> {
    coordinator: Arc<C>,
    runtime: tokio::runtime::Handle,
    runner: String,
    job: String,
    progress: Arc<Mutex<Option<DistillationProgress>>>,
    lost: Arc<AtomicBool>,
}

impl<C: Coordinator> Observer for ServerObserver<C> {
    fn progress(&mut self, p: &Progress) {
        let mut kept = self.progress.lock().expect("progress lock");
        let checkpoint_step = kept.as_ref().and_then(|k| k.checkpoint_step);
        *kept = Some(DistillationProgress {
            step: p.step as u64,
            steps: p.steps as u64,
            loss: if p.loss.is_finite() { p.loss } else { 0.0 },
            steps_per_second: p.steps_per_second.max(0.0),
            eta_seconds: if p.eta_seconds.is_finite() {
                p.eta_seconds.clamp(0.0, 1e12) as u64
            } else {
                0
            },
            checkpoint_step,
        });
    }

    fn checkpointed(&mut self, path: &Path, step: usize) -> Result<(), ModelError> {
        let sent = self.runtime.block_on(self.coordinator.save_checkpoint(
            &self.runner,
            &self.job,
            step as u64,
            path,
        ));
        match sent {
            Ok(()) => {
                if let Some(p) = self.progress.lock().expect("progress lock").as_mut() {
                    p.checkpoint_step = Some(step as u64);
                }
                tracing::info!(job = %self.job, step, "training state saved to the server");
            }
            Err(CoordinatorError::LeaseLost(_)) => self.lost.store(true, Ordering::Relaxed),
            // The next checkpoint tries again; until then a death loses one more interval.
            Err(e) => {
                tracing::warn!(job = %self.job, error = %e, "the training state was not saved")
            }
        }
        Ok(())
    }

    fn cancelled(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }
}

impl<C: Coordinator> Runner<C> {
    /// Works on a claimed distillation until it is reported, lost, or left for another runner.
    pub async fn distill(
        self: &Arc<Self>,
        runner: &str,
        job: DistillationJob,
        heartbeat: Duration,
    ) {
        tracing::info!(job = %job.job_id, teacher = %job.teacher, attempt = job.attempt, resume_from = ?job.checkpoint_step, "distillation claimed");
        if !crate::work::plain_job_id(&job.job_id) {
            tracing::error!(job = %job.job_id, "refusing a job whose id is not a plain id");
            return;
        }
        let progress = Arc::new(Mutex::new(None));
        let lost = Arc::new(AtomicBool::new(false));
        let beats = {
            let (me, runner, job_id) = (self.clone(), runner.to_owned(), job.job_id.clone());
            let (progress, lost) = (progress.clone(), lost.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(heartbeat).await;
                    let now = progress.lock().expect("progress lock").clone();
                    match me
                        .coordinator
                        .heartbeat_progress(&runner, &job_id, now)
                        .await
                    {
                        Ok(_) => {}
                        Err(CoordinatorError::LeaseLost(_)) => {
                            lost.store(true, Ordering::Relaxed);
                            return;
                        }
                        Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                    }
                }
            })
        };
        let folder = self.cache.join("distillations").join(&job.job_id);
        let outcome = self
            .train(&folder, runner, &job, progress, lost.clone())
            .await;
        beats.abort();
        let result = match outcome {
            Ok(result) => result,
            Err(Dropped::Final(message)) => DistillationResult::Failed { message },
            Err(Dropped::LeaseLost) => {
                tracing::warn!(job = %job.job_id, "lost the job's lease (cancelled, or taken over); dropping it");
                let _ = tokio::fs::remove_dir_all(&folder).await;
                return;
            }
            Err(Dropped::Transient(e)) => {
                tracing::warn!(job = %job.job_id, error = %e, "distillation stopped; another runner resumes it after its lease runs out");
                let _ = tokio::fs::remove_dir_all(&folder).await;
                return;
            }
        };
        match self
            .coordinator
            .report_distillation(runner, &job.job_id, result)
            .await
        {
            Ok(()) => tracing::info!(job = %job.job_id, "distillation reported"),
            Err(e) => tracing::warn!(job = %job.job_id, error = %e, "the report was not accepted"),
        }
        let _ = tokio::fs::remove_dir_all(&folder).await;
    }

    async fn train(
        self: &Arc<Self>,
        folder: &Path,
        runner: &str,
        job: &DistillationJob,
        progress: Arc<Mutex<Option<DistillationProgress>>>,
        lost: Arc<AtomicBool>,
    ) -> Result<DistillationResult, Dropped> {
        let settings = settings_of(&job.request).map_err(Dropped::Final)?;
        let io = |e: std::io::Error| Dropped::Transient(format!("{}: {e}", folder.display()));
        let _ = tokio::fs::remove_dir_all(folder).await;
        tokio::fs::create_dir_all(folder).await.map_err(io)?;
        let teacher = folder.join("teacher");
        self.lay_out(runner, &job.job_id, "teacher", &job.teacher_files, &teacher)
            .await?;
        let data = folder.join("data");
        if !job.data_files.is_empty() {
            self.lay_out(runner, &job.job_id, "data", &job.data_files, &data)
                .await?;
        }
        let work = folder.join("work");
        tokio::fs::create_dir_all(&work).await.map_err(io)?;
        let state = folder.join("resume.safetensors");
        if job.checkpoint_step.is_some() {
            self.coordinator
                .load_checkpoint(runner, &job.job_id, &state)
                .await
                .map_err(lease_or_transient)?;
        }
        let mut observer = ServerObserver {
            coordinator: self.coordinator.clone(),
            runtime: tokio::runtime::Handle::current(),
            runner: runner.to_owned(),
            job: job.job_id.clone(),
            progress,
            lost: lost.clone(),
        };
        let device = self.device.clone();
        let has_data = !job.data_files.is_empty();
        let resume = job.checkpoint_step.is_some();
        let outcome = tokio::task::spawn_blocking(move || {
            let request = Request {
                teacher: &teacher,
                dataset: has_data.then_some(data.as_path()),
                settings: &settings,
                device: &device,
                resume_from: resume.then_some(state.as_path()),
                work: &work,
            };
            distill(&request, &mut observer)
        })
        .await
        .map_err(|e| Dropped::Transient(format!("the training thread ended: {e}")))?;
        let (report, student) = match outcome {
            Ok(Outcome::Finished { report, folder }) => (report, folder),
            Ok(Outcome::Cancelled) => return Err(Dropped::LeaseLost),
            Err(ModelError::Io(e)) => return Err(Dropped::Transient(e.to_string())),
            Err(e) => return Err(Dropped::Final(e.to_string())),
        };
        if lost.load(Ordering::Relaxed) {
            return Err(Dropped::LeaseLost);
        }
        let report_json = serde_json::to_value(&report).expect("the report serializes");
        let report_path = student.join(REPORT_FILE);
        let pretty = serde_json::to_vec_pretty(&report_json).expect("the report serializes");
        tokio::fs::write(&report_path, pretty).await.map_err(io)?;
        let files = self.upload_student(runner, &job.job_id, &student).await?;
        Ok(DistillationResult::Succeeded {
            files,
            report: report_json,
        })
    }

    /// Fetches a version's files into `into` by path, each through the digest-checked cache.
    async fn lay_out(
        self: &Arc<Self>,
        runner: &str,
        job: &str,
        input: &str,
        files: &[FileEntry],
        into: &Path,
    ) -> Result<(), Dropped> {
        for file in files {
            let cached = cached_file(&self.cache, file, job, |partial| async move {
                self.coordinator
                    .fetch_input(runner, job, input, file, &partial)
                    .await
            })
            .await?;
            let target = into.join(file.path.as_str());
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| Dropped::Transient(e.to_string()))?;
            }
            tokio::fs::copy(&cached, &target)
                .await
                .map_err(|e| Dropped::Transient(format!("{}: {e}", target.display())))?;
            if !self.keep_cache {
                let _ = tokio::fs::remove_file(&cached).await;
            }
        }
        Ok(())
    }

    /// Uploads every file of the student's folder (config, weights, tokenizer, report).
    async fn upload_student(
        self: &Arc<Self>,
        runner: &str,
        job: &str,
        student: &Path,
    ) -> Result<Vec<FileEntry>, Dropped> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(student)
            .map_err(|e| Dropped::Transient(e.to_string()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        let mut files = Vec::with_capacity(names.len());
        for path in names {
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let file: FilePath = name
                .parse()
                .map_err(|e| Dropped::Final(format!("student file {name:?}: {e}")))?;
            let entry = self
                .coordinator
                .upload_file(runner, job, &file, &path)
                .await
                .map_err(lease_or_transient)?;
            files.push(entry);
        }
        Ok(files)
    }
}

fn lease_or_transient(e: CoordinatorError) -> Dropped {
    match e {
        CoordinatorError::LeaseLost(_) => Dropped::LeaseLost,
        other => Dropped::Transient(other.to_string()),
    }
}
