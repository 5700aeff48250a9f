//! Runners: registration, claiming benchmark jobs under a lease, heartbeats, reports, and the list users
//! see. Every call names the runner; only the credential that registered it may act for it (another gets
//! 404, as if it did not exist).

use kiln_core::ErrorCode;
use std::sync::Arc;
use std::time::Duration;

use diesel::Connection;
use kiln_core::api::PipelineOptions;
use kiln_core::runners::{
    BenchmarkJob, BenchmarkReport, EngineInfo, HeartbeatAck, RegisteredRunner, RunnerHeartbeat,
    RunnerRegistration, RunnerState, RunnerView,
};
use kiln_core::{ModelName, NamespaceName, VersionName};

use crate::db::records::{PipelineJobRow, RunnerRow};
use crate::db::repos::pipeline_jobs::{self, Claim, LeaseLost, Queue};
use crate::db::repos::{runners, variants, versions};
use crate::db::views::variant_file_entries;
use crate::db::{Database, DbConnection, new_id, now};
use crate::error::Error;
use crate::manifest::ManifestSigner;
use crate::pipeline::benchmark;
use crate::services::paging::{PageRequest, Paged};

/// Queued benchmarks for a device class whose runners have been silent this many leases are failed.
pub const ORPHANED_AFTER_LEASES: i32 = 3;

#[derive(Clone)]
pub struct RunnerService {
    db: Database,
    signer: Arc<ManifestSigner>,
    lease: Duration,
}

/// What a held job is about: the variant of a version whose files a runner may fetch.
pub struct JobSubject {
    pub namespace: NamespaceName,
    pub model: ModelName,
    pub version: VersionName,
    pub variant: String,
}

fn lease(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).expect("lease fits")
}

fn check(registration: &RunnerRegistration) -> Result<(), Error> {
    let bad = |message: String| Err(Error::bad_request(ErrorCode::InvalidRunner, message));
    let text_ok = |s: &str, max: usize| !s.trim().is_empty() && s.len() <= max;
    if !text_ok(&registration.name, 128) {
        return bad("name must be 1-128 characters".to_owned());
    }
    let device_ok = registration.device == "cpu"
        || registration
            .device
            .strip_prefix("cuda:")
            .is_some_and(|n| n.parse::<u16>().is_ok());
    if !device_ok {
        return bad(format!(
            "device {:?} is not cpu or cuda:N",
            registration.device
        ));
    }
    for (field, value) in [
        ("device_name", &registration.device_name),
        ("engine", &registration.engine),
        ("kiln_version", &registration.kiln_version),
    ] {
        if !text_ok(value, 256) {
            return bad(format!("{field} must be 1-256 characters"));
        }
    }
    if registration.capabilities.len() > 32
        || registration.capabilities.iter().any(|c| !text_ok(c, 64))
    {
        return bad("capabilities: at most 32, each 1-64 characters".to_owned());
    }
    if registration.memory_bytes.is_some_and(|m| m < 0) {
        return bad("memory_bytes must be at least 0".to_owned());
    }
    if registration
        .threads
        .is_some_and(|t| !(1..=RunnerRegistration::MAX_THREADS).contains(&t))
    {
        return bad(format!(
            "threads must be 1 to {}",
            RunnerRegistration::MAX_THREADS
        ));
    }
    if registration.driver.as_ref().is_some_and(|d| d.len() > 256) {
        return bad("driver must be at most 256 characters".to_owned());
    }
    check_engines(&registration.engines)
}

fn check_engines(engines: &[EngineInfo]) -> Result<(), Error> {
    let bad = |message: String| Err(Error::bad_request(ErrorCode::InvalidRunner, message));
    if engines.len() > 8 {
        return bad(format!("engines: at most 8, not {}", engines.len()));
    }
    for (i, engine) in engines.iter().enumerate() {
        let name_ok = engine.name.len() <= 32
            && engine.name.starts_with(|c: char| c.is_ascii_lowercase())
            && engine
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return bad(format!(
                "engine name {:?}: 1-32 characters, lowercase letters, digits, - and _, starting with a letter",
                engine.name
            ));
        }
        if engines[..i].iter().any(|e| e.name == engine.name) {
            return bad(format!("engine {:?} is listed twice", engine.name));
        }
        if engine.version.trim().is_empty() || engine.version.len() > 64 {
            return bad(format!(
                "engine {}: version must be 1-64 characters",
                engine.name
            ));
        }
        let providers = &engine.execution_providers;
        if providers.is_empty()
            || providers.len() > 16
            || providers
                .iter()
                .any(|p| p.trim().is_empty() || p.len() > 64)
        {
            return bad(format!(
                "engine {}: execution_providers: 1 to 16, each 1-64 characters",
                engine.name
            ));
        }
    }
    Ok(())
}

/// The engines a registration offers; none listed is kiln's evaluator (runners from before engines).
fn engines_of(registration: &RunnerRegistration) -> Vec<EngineInfo> {
    if !registration.engines.is_empty() {
        return registration.engines.clone();
    }
    vec![EngineInfo {
        name: EngineInfo::KILN.to_owned(),
        version: registration.kiln_version.clone(),
        execution_providers: vec![registration.device_kind().to_owned()],
    }]
}

/// The runner, when `token_id` registered it.
pub(crate) fn owned(
    conn: &mut DbConnection,
    runner_id: &str,
    token_id: &str,
) -> Result<RunnerRow, Error> {
    runners::find(conn, runner_id)?
        .filter(|r| r.token_id == token_id)
        .ok_or_else(|| {
            Error::not_found(format!(
                "runner {runner_id} (of this credential; register first)"
            ))
        })
}

fn lost_job(job_id: &str) -> Error {
    LeaseLost::runner(job_id).into()
}

fn view(
    row: RunnerRow,
    current_job: Option<String>,
    lost_before: chrono::NaiveDateTime,
) -> Result<RunnerView, Error> {
    let state = if row.last_heartbeat_at < lost_before {
        RunnerState::Lost
    } else if current_job.is_some() {
        RunnerState::Busy
    } else {
        RunnerState::Idle
    };
    Ok(RunnerView {
        id: row.id,
        name: row.name,
        device: row.device,
        device_name: row.device_name,
        memory_bytes: row.memory_bytes,
        driver: row.driver,
        engine: row.engine,
        kiln_version: row.kiln_version,
        capabilities: serde_json::from_str(&row.capabilities)?,
        threads: row.threads.map(|t| t as u32),
        engines: serde_json::from_str(&row.engines)?,
        state,
        registered_at: row.registered_at.and_utc(),
        last_heartbeat_at: row.last_heartbeat_at.and_utc(),
        current_job,
    })
}

impl RunnerService {
    pub fn new(db: Database, signer: Arc<ManifestSigner>, lease: Duration) -> Self {
        Self { db, signer, lease }
    }

    /// Registers a runner; one that registers again with the same credential, name and device after being
    /// lost (a restart) gets its old id back, so restarts do not pile up lost runners.
    pub async fn register(
        &self,
        token_id: String,
        registration: RunnerRegistration,
    ) -> Result<RegisteredRunner, Error> {
        check(&registration)?;
        let at = now();
        let row = RunnerRow {
            id: new_id(),
            name: registration.name.clone(),
            token_id,
            device: registration.device.clone(),
            device_kind: registration.device_kind().to_owned(),
            device_name: registration.device_name.clone(),
            memory_bytes: registration.memory_bytes,
            driver: registration.driver.clone(),
            engine: registration.engine.clone(),
            kiln_version: registration.kiln_version.clone(),
            capabilities: serde_json::to_string(&registration.capabilities)?,
            threads: registration.threads.map(|t| t as i32),
            registered_at: at,
            last_heartbeat_at: at,
            engines: serde_json::to_string(&engines_of(&registration))?,
        };
        let lost_before = at - lease(self.lease);
        let id = self
            .db
            .run(move |conn| {
                conn.transaction(|conn| {
                    if let Some(earlier) = runners::find_lost(
                        conn,
                        &row.token_id,
                        &row.name,
                        &row.device,
                        lost_before,
                    )? {
                        let taken = RunnerRow {
                            id: earlier.id,
                            registered_at: earlier.registered_at,
                            ..row.clone()
                        };
                        // Only while it is still lost: of two restarting at once, one takes it back.
                        if runners::update_registration(conn, &taken, lost_before)? {
                            return Ok(taken.id);
                        }
                    }
                    runners::insert(conn, &row)?;
                    Ok::<_, Error>(row.id)
                })
            })
            .await?;
        tracing::info!(runner = %id, name = %registration.name, device = %registration.device, "runner registered");
        Ok(RegisteredRunner {
            id,
            lease_seconds: self.lease.as_secs(),
            heartbeat_seconds: (self.lease.as_secs() / 4).max(1),
        })
    }

    /// When a lease taken now runs out.
    pub fn lease_until(&self) -> chrono::NaiveDateTime {
        now() + lease(self.lease)
    }

    /// Records that the runner is alive and, when it names its job, extends that job's lease and keeps
    /// the progress it reports (a distillation's).
    pub async fn heartbeat(
        &self,
        runner_id: String,
        token_id: String,
        beat: RunnerHeartbeat,
    ) -> Result<HeartbeatAck, Error> {
        let until = now() + lease(self.lease);
        let RunnerHeartbeat { job_id, progress } = beat;
        let progress = progress.map(|p| serde_json::to_string(&p)).transpose()?;
        self.db
            .run(move |conn| {
                owned(conn, &runner_id, &token_id)?;
                runners::touch(conn, &runner_id, now())?;
                let Some(job_id) = job_id else {
                    return Ok(HeartbeatAck {
                        lease_expires_at: None,
                    });
                };
                if pipeline_jobs::held(conn, &job_id, &runner_id)?.is_none()
                    || !pipeline_jobs::heartbeat(conn, &job_id, &runner_id, until)?
                {
                    return Err(lost_job(&job_id));
                }
                if let Some(progress) = &progress {
                    crate::db::repos::distillations::set_progress(conn, &job_id, progress)?;
                }
                Ok(HeartbeatAck {
                    lease_expires_at: Some(until.and_utc()),
                })
            })
            .await
    }

    /// The oldest benchmark job for the runner's device class, now leased to it; None when there is none.
    pub async fn claim(
        &self,
        runner_id: String,
        token_id: String,
    ) -> Result<Option<BenchmarkJob>, Error> {
        let until = now() + lease(self.lease);
        let signer = self.signer.clone();
        self.db
            .run(move |conn| {
                let runner = owned(conn, &runner_id, &token_id)?;
                runners::touch(conn, &runner_id, now())?;
                let engines: Vec<String> = serde_json::from_str::<Vec<EngineInfo>>(&runner.engines)?
                    .into_iter()
                    .map(|e| e.name)
                    .collect();
                loop {
                    let queue = Queue::Benchmark {
                        device_kind: &runner.device_kind,
                        engines: &engines,
                    };
                    // Giving a job up and finishing the version's benchmark stage commit together.
                    let claimed = conn.transaction(|conn| {
                        let claim = pipeline_jobs::claim_next(conn, &runner_id, until, queue)?;
                        if let Claim::GaveUp(job) = &claim {
                            tracing::warn!(job = %job.id, "benchmark job given up: its runners kept dying");
                            benchmark::finish_stage_if_done(conn, &signer, &job.version_id)?;
                        }
                        Ok::<_, Error>(claim)
                    })?;
                    match claimed {
                        Claim::Nothing => return Ok(None),
                        Claim::GaveUp(_) => {}
                        Claim::Claimed(job) => return Ok(Some(describe(conn, job)?)),
                    }
                }
            })
            .await
    }

    /// What a job the runner holds is about (for fetching its files); 409 once the lease is gone.
    pub async fn held_job(
        &self,
        runner_id: String,
        token_id: String,
        job_id: String,
    ) -> Result<JobSubject, Error> {
        self.db
            .run(move |conn| {
                owned(conn, &runner_id, &token_id)?;
                let job = pipeline_jobs::held(conn, &job_id, &runner_id)?
                    .ok_or_else(|| lost_job(&job_id))?;
                let (ns, model, version) = versions::context(conn, &job.version_id)?;
                Ok(JobSubject {
                    namespace: ns.parse()?,
                    model: model.parse()?,
                    version: version.version.parse()?,
                    variant: job.variant.unwrap_or_default(),
                })
            })
            .await
    }

    /// Records the result of a job the runner still holds (a late report is refused, nothing written).
    pub async fn report(
        &self,
        runner_id: String,
        token_id: String,
        job_id: String,
        report: BenchmarkReport,
    ) -> Result<(), Error> {
        let signer = self.signer.clone();
        self.db
            .run(move |conn| {
                let runner = owned(conn, &runner_id, &token_id)?;
                runners::touch(conn, &runner_id, now())?;
                conn.transaction(|conn| {
                    let job = pipeline_jobs::held(conn, &job_id, &runner_id)?
                        .ok_or_else(|| lost_job(&job_id))?;
                    benchmark::record(conn, &signer, &runner, &job, report)
                })
            })
            .await
    }

    /// Fails the benchmark jobs queued for a device class whose runners have all been silent for
    /// [`ORPHANED_AFTER_LEASES`] leases (a GPU runner gone for good), so that the rest of their version's
    /// results still reach its manifest. Returns how many.
    pub async fn fail_orphaned(&self) -> Result<usize, Error> {
        let silent = lease(self.lease) * ORPHANED_AFTER_LEASES;
        let signer = self.signer.clone();
        self.db
            .run(move |conn| {
                let before = now() - silent;
                let mut failed = 0;
                for job in pipeline_jobs::orphaned_benchmarks(conn, before)? {
                    let device = job.device.clone().unwrap_or_default();
                    let engine = job.engine.clone().unwrap_or_default();
                    let message = format!(
                        "not measured: no {device} runner with the {engine} engine was heard from for {} s",
                        silent.num_seconds()
                    );
                    conn.transaction(|conn| {
                        if pipeline_jobs::fail_queued(conn, &job.id, &message)? {
                            failed += 1;
                            benchmark::finish_stage_if_done(conn, &signer, &job.version_id)?;
                        }
                        Ok::<_, Error>(())
                    })?;
                }
                Ok(failed)
            })
            .await
    }

    /// Runners by name, a page at a time, each with the job it holds.
    pub async fn list(&self, page: PageRequest) -> Result<Paged<RunnerView>, Error> {
        let lost_before = now() - lease(self.lease);
        let after = page.after::<2>()?.map(|[name, id]| (name, id));
        let limit = page.limit;
        let (rows, held) = self
            .db
            .run(move |conn| {
                let held: std::collections::HashMap<String, String> =
                    pipeline_jobs::held_leases(conn)?
                        .into_iter()
                        .filter_map(|(owner, job)| Some((owner?, job)))
                        .collect();
                Ok((runners::list(conn, after, limit)?, held))
            })
            .await?;
        Paged::new(rows, &page, |row| vec![row.name.clone(), row.id.clone()]).try_map(|row| {
            let job = held.get(&row.id).cloned();
            view(row, job, lost_before)
        })
    }
}

fn describe(conn: &mut DbConnection, job: PipelineJobRow) -> Result<BenchmarkJob, Error> {
    let (ns, model, version) = versions::context(conn, &job.version_id)?;
    let variant = job.variant.clone().unwrap_or_default();
    let (row, files) = variants::for_version(conn, &job.version_id)?
        .into_iter()
        .find(|(v, _)| v.name == variant)
        .ok_or_else(|| Error::Internal(format!("benchmark job {} has no variant", job.id)))?;
    let files = variant_file_entries(&row.model_path, files)?;
    let options: PipelineOptions = match &job.options {
        Some(options) => serde_json::from_str(options)?,
        None => PipelineOptions::default(),
    };
    Ok(BenchmarkJob {
        engine: job
            .engine
            .clone()
            .unwrap_or_else(|| EngineInfo::KILN.to_owned()),
        batch_sizes: options.benchmark_batch_sizes.unwrap_or_default(),
        sequence_lengths: options.benchmark_sequence_lengths.unwrap_or_default(),
        job_id: job.id,
        model: format!("{ns}/{model}"),
        version: version.version.parse()?,
        variant,
        attempt: job.attempts,
        lease_expires_at: job.lease_expires_at.unwrap_or_else(now).and_utc(),
        files,
    })
}
