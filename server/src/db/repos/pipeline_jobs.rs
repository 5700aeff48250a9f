//! Pipeline jobs. A worker claims a job by taking its lease with a conditional UPDATE, so two workers never
//! hold the same job; a lease that runs out (the worker died) makes the job claimable again.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use kiln_core::api::JobState;

use crate::db::DbConnection;
use crate::db::records::PipelineJobRow;
use crate::db::schema::pipeline_jobs;
use crate::db::{new_id, now};

pub fn enqueue(
    conn: &mut DbConnection,
    version_id: &str,
    kind: &str,
    max_attempts: i32,
    options: Option<&str>,
) -> QueryResult<()> {
    insert(conn, version_id, kind, max_attempts, options, None)
}

/// What a benchmark job measures: a variant, on a device class (`cpu`, `cuda`), with an engine (`kiln`,
/// `onnxruntime`).
#[derive(Debug, Clone, Copy)]
pub struct BenchmarkTarget<'a> {
    pub variant: &'a str,
    pub device_kind: &'a str,
    pub engine: &'a str,
}

/// Queues one benchmark for runners to claim; `options` are the push's pipeline options (its batch sizes
/// and sequence lengths).
pub fn enqueue_benchmark(
    conn: &mut DbConnection,
    version_id: &str,
    target: BenchmarkTarget<'_>,
    max_attempts: i32,
    options: Option<&str>,
) -> QueryResult<()> {
    insert(
        conn,
        version_id,
        JOB_BENCHMARK,
        max_attempts,
        options,
        Some(target),
    )
}

/// Queues a distillation of the teacher `version_id` for runners of `device_kind`; returns the job's id.
pub fn enqueue_distillation(
    conn: &mut DbConnection,
    version_id: &str,
    device_kind: &str,
    max_attempts: i32,
) -> QueryResult<String> {
    let id = new_id();
    insert_row(
        conn,
        PipelineJobRow {
            id: id.clone(),
            device: Some(device_kind.to_owned()),
            ..queued_row(version_id, JOB_DISTILL, max_attempts)
        },
    )?;
    Ok(id)
}

fn queued_row(version_id: &str, kind: &str, max_attempts: i32) -> PipelineJobRow {
    PipelineJobRow {
        id: new_id(),
        version_id: version_id.to_owned(),
        kind: kind.to_owned(),
        state: JobState::Queued.as_str().to_owned(),
        attempts: 0,
        max_attempts,
        message: None,
        report: None,
        lease_owner: None,
        lease_expires_at: None,
        created_at: now(),
        started_at: None,
        finished_at: None,
        options: None,
        variant: None,
        device: None,
        engine: None,
    }
}

fn insert_row(conn: &mut DbConnection, row: PipelineJobRow) -> QueryResult<()> {
    diesel::insert_into(pipeline_jobs::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

fn insert(
    conn: &mut DbConnection,
    version_id: &str,
    kind: &str,
    max_attempts: i32,
    options: Option<&str>,
    benchmark: Option<BenchmarkTarget<'_>>,
) -> QueryResult<()> {
    insert_row(
        conn,
        PipelineJobRow {
            options: options.map(str::to_owned),
            variant: benchmark.map(|b| b.variant.to_owned()),
            device: benchmark.map(|b| b.device_kind.to_owned()),
            engine: benchmark.map(|b| b.engine.to_owned()),
            ..queued_row(version_id, kind, max_attempts)
        },
    )
}

/// The job kinds runners claim; the server's pipeline workers never do.
pub const JOB_BENCHMARK: &str = "benchmark";
pub const JOB_DISTILL: &str = "distill";

/// What held a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// A pipeline worker of a server.
    Worker,
    /// A benchmark runner.
    Runner,
}

/// The caller no longer holds the job: its lease ran out and the job went back to the queue (another worker
/// or runner may hold it now). Whatever the caller meant to write about the job is dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LeaseLost {
    pub job_id: String,
    pub holder: Holder,
}

impl LeaseLost {
    pub fn worker(job_id: &str) -> Self {
        Self {
            job_id: job_id.to_owned(),
            holder: Holder::Worker,
        }
    }

    pub fn runner(job_id: &str) -> Self {
        Self {
            job_id: job_id.to_owned(),
            holder: Holder::Runner,
        }
    }
}

impl std::fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.holder {
            Holder::Worker => write!(
                f,
                "this worker no longer holds job {}; its lease ran out and another worker took it over",
                self.job_id
            ),
            Holder::Runner => write!(
                f,
                "this runner no longer holds job {} (its lease ran out and it went back to the queue); drop it and claim again",
                self.job_id
            ),
        }
    }
}

/// Queued benchmark jobs created before `before` for a device class and engine no runner has heartbeat
/// for since `before`: nobody is coming for them.
pub fn orphaned_benchmarks(
    conn: &mut DbConnection,
    before: NaiveDateTime,
) -> QueryResult<Vec<PipelineJobRow>> {
    let live = super::runners::live_queues(conn, before)?;
    let queued: Vec<PipelineJobRow> = pipeline_jobs::table
        .filter(pipeline_jobs::kind.eq(JOB_BENCHMARK))
        .filter(pipeline_jobs::state.eq(JobState::Queued.as_str()))
        .filter(pipeline_jobs::created_at.lt(before))
        .select(PipelineJobRow::as_select())
        .load(conn)?;
    Ok(queued
        .into_iter()
        .filter(|job| {
            let queue = (
                job.device.clone().unwrap_or_default(),
                job.engine.clone().unwrap_or_default(),
            );
            !live.contains(&queue)
        })
        .collect())
}

/// Fails a job still queued (a compare-and-swap on its state); false when someone claimed it meanwhile.
pub fn fail_queued(conn: &mut DbConnection, id: &str, message: &str) -> QueryResult<bool> {
    let updated = diesel::update(
        pipeline_jobs::table
            .filter(pipeline_jobs::id.eq(id))
            .filter(pipeline_jobs::state.eq(JobState::Queued.as_str())),
    )
    .set((
        pipeline_jobs::state.eq(JobState::Failed.as_str()),
        pipeline_jobs::message.eq(message),
        pipeline_jobs::finished_at.eq(now()),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// Benchmark jobs of a version not finished yet (queued, or running).
pub fn unfinished_benchmarks(conn: &mut DbConnection, version_id: &str) -> QueryResult<i64> {
    pipeline_jobs::table
        .filter(pipeline_jobs::version_id.eq(version_id))
        .filter(pipeline_jobs::kind.eq(JOB_BENCHMARK))
        .filter(
            pipeline_jobs::state
                .eq(JobState::Queued.as_str())
                .or(pipeline_jobs::state.eq(JobState::Running.as_str())),
        )
        .count()
        .get_result(conn)
}

/// The job, when `owner` holds its lease.
pub fn held(conn: &mut DbConnection, id: &str, owner: &str) -> QueryResult<Option<PipelineJobRow>> {
    held_by(id, owner)
        .filter(pipeline_jobs::lease_expires_at.ge(now()))
        .select(PipelineJobRow::as_select())
        .first(conn)
        .optional()
}

/// Every job held under an unexpired lease, as (owner, job id).
pub fn held_leases(conn: &mut DbConnection) -> QueryResult<Vec<(Option<String>, String)>> {
    pipeline_jobs::table
        .filter(pipeline_jobs::state.eq(JobState::Running.as_str()))
        .filter(pipeline_jobs::lease_expires_at.ge(now()))
        .select((pipeline_jobs::lease_owner, pipeline_jobs::id))
        .load(conn)
}

/// A version's jobs, oldest first.
pub fn for_version(conn: &mut DbConnection, version_id: &str) -> QueryResult<Vec<PipelineJobRow>> {
    pipeline_jobs::table
        .filter(pipeline_jobs::version_id.eq(version_id))
        .order((pipeline_jobs::created_at.asc(), pipeline_jobs::id.asc()))
        .select(PipelineJobRow::as_select())
        .load(conn)
}

/// What a claim found.
pub enum Claim {
    /// This worker now holds the job until `lease_expires_at` (it must heartbeat to keep it).
    Claimed(PipelineJobRow),
    /// The job's worker died once too often; it was marked failed instead of retried.
    GaveUp(PipelineJobRow),
    Nothing,
}

/// Which jobs a claimer takes: the server's pipeline workers take everything but runners' jobs; a runner
/// takes the benchmarks queued for its device class and one of its engines, or the distillations queued
/// for its device class.
#[derive(Debug, Clone, Copy)]
pub enum Queue<'a> {
    Pipeline,
    Benchmark {
        device_kind: &'a str,
        engines: &'a [String],
    },
    Distill {
        device_kind: &'a str,
    },
}

#[derive(QueryableByName)]
struct JobId {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

/// Claimable jobs, oldest first. On PostgreSQL one row, locked `FOR UPDATE SKIP LOCKED` in the caller's
/// transaction, so concurrent claimers each lock a different job instead of queueing on one (locking more
/// than the one taken would hide the rest from them); on SQLite, which has one writer at a time, up to 16
/// for the compare-and-swap below to try in turn.
fn candidates(
    conn: &mut DbConnection,
    queue: Queue<'_>,
    at: NaiveDateTime,
) -> QueryResult<Vec<PipelineJobRow>> {
    if let DbConnection::Postgresql(pg) = conn {
        let (kind_filter, device, engines) = match queue {
            Queue::Pipeline => (
                "kind <> $2 AND kind <> $5 AND $3 = '' AND cardinality($4) = 0",
                "",
                &[][..],
            ),
            Queue::Distill { device_kind } => (
                "kind = $5 AND device = $3 AND cardinality($4) = 0 AND $2 <> ''",
                device_kind,
                &[][..],
            ),
            Queue::Benchmark {
                device_kind,
                engines,
            } => (
                "kind = $2 AND device = $3 AND engine = ANY($4)",
                device_kind,
                engines,
            ),
        };
        let ids: Vec<JobId> = diesel::sql_query(format!(
            "SELECT id FROM pipeline_jobs \
             WHERE (state = 'queued' OR (state = 'running' AND lease_expires_at < $1)) AND {kind_filter} \
             ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
        ))
        .bind::<diesel::sql_types::Timestamp, _>(at)
        .bind::<diesel::sql_types::Text, _>(JOB_BENCHMARK)
        .bind::<diesel::sql_types::Text, _>(device)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(engines)
        .bind::<diesel::sql_types::Text, _>(JOB_DISTILL)
        .load(pg)?;
        let ids: Vec<String> = ids.into_iter().map(|j| j.id).collect();
        return pipeline_jobs::table
            .filter(pipeline_jobs::id.eq_any(ids))
            .order((pipeline_jobs::created_at.asc(), pipeline_jobs::id.asc()))
            .select(PipelineJobRow::as_select())
            .load(conn);
    }
    let mut query = pipeline_jobs::table
        .filter(
            pipeline_jobs::state
                .eq(JobState::Queued.as_str())
                .or(pipeline_jobs::state
                    .eq(JobState::Running.as_str())
                    .and(pipeline_jobs::lease_expires_at.lt(at))),
        )
        .into_boxed();
    query = match queue {
        Queue::Pipeline => query
            .filter(pipeline_jobs::kind.ne(JOB_BENCHMARK))
            .filter(pipeline_jobs::kind.ne(JOB_DISTILL)),
        Queue::Distill { device_kind } => query
            .filter(pipeline_jobs::kind.eq(JOB_DISTILL))
            .filter(pipeline_jobs::device.eq(device_kind.to_owned())),
        Queue::Benchmark {
            device_kind,
            engines,
        } => query
            .filter(pipeline_jobs::kind.eq(JOB_BENCHMARK))
            .filter(pipeline_jobs::device.eq(device_kind.to_owned()))
            .filter(pipeline_jobs::engine.eq_any(engines.to_vec())),
    };
    query
        .order((pipeline_jobs::created_at.asc(), pipeline_jobs::id.asc()))
        .limit(16)
        .select(PipelineJobRow::as_select())
        .load(conn)
}

/// Claims the oldest job of `queue` that is queued or whose lease ran out.
pub fn claim_next(
    conn: &mut DbConnection,
    owner: &str,
    lease_until: NaiveDateTime,
    queue: Queue<'_>,
) -> QueryResult<Claim> {
    conn.transaction(|conn| claim_in_transaction(conn, owner, lease_until, queue))
}

fn claim_in_transaction(
    conn: &mut DbConnection,
    owner: &str,
    lease_until: NaiveDateTime,
    queue: Queue<'_>,
) -> QueryResult<Claim> {
    let at = now();
    let candidates = candidates(conn, queue, at)?;
    for job in candidates {
        // Matching the state and attempts we read, and a lease still expired now, makes the UPDATE a
        // compare-and-swap: of two workers racing for this job exactly one changes a row, and a worker whose
        // heartbeat just extended the lease keeps its job.
        let unchanged = pipeline_jobs::table
            .filter(pipeline_jobs::id.eq(&job.id))
            .filter(pipeline_jobs::state.eq(&job.state))
            .filter(pipeline_jobs::attempts.eq(job.attempts))
            .filter(
                pipeline_jobs::state
                    .eq(JobState::Queued.as_str())
                    .or(pipeline_jobs::lease_expires_at.lt(at)),
            );
        if job.attempts >= job.max_attempts {
            let who = if job.kind == JOB_BENCHMARK || job.kind == JOB_DISTILL {
                "runner"
            } else {
                "pipeline worker"
            };
            let message = format!(
                "the {who} stopped during this job {} times; giving up",
                job.attempts
            );
            let updated = diesel::update(unchanged)
                .set((
                    pipeline_jobs::state.eq(JobState::Failed.as_str()),
                    pipeline_jobs::message.eq(&message),
                    pipeline_jobs::lease_owner.eq(None::<String>),
                    pipeline_jobs::lease_expires_at.eq(None::<NaiveDateTime>),
                    pipeline_jobs::finished_at.eq(at),
                ))
                .execute(conn)?;
            if updated == 1 {
                return Ok(Claim::GaveUp(PipelineJobRow {
                    state: JobState::Failed.as_str().to_owned(),
                    message: Some(message),
                    ..job
                }));
            }
            continue;
        }
        let updated = diesel::update(unchanged)
            .set((
                pipeline_jobs::state.eq(JobState::Running.as_str()),
                pipeline_jobs::attempts.eq(job.attempts + 1),
                pipeline_jobs::lease_owner.eq(owner),
                pipeline_jobs::lease_expires_at.eq(lease_until),
                pipeline_jobs::started_at.eq(at),
            ))
            .execute(conn)?;
        if updated == 1 {
            return Ok(Claim::Claimed(PipelineJobRow {
                state: JobState::Running.as_str().to_owned(),
                attempts: job.attempts + 1,
                lease_owner: Some(owner.to_owned()),
                lease_expires_at: Some(lease_until),
                started_at: Some(at),
                ..job
            }));
        }
    }
    Ok(Claim::Nothing)
}

type HeldBy<'a> = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<pipeline_jobs::table, diesel::dsl::Eq<pipeline_jobs::id, &'a str>>,
        diesel::dsl::Eq<pipeline_jobs::lease_owner, &'a str>,
    >,
    diesel::dsl::Eq<pipeline_jobs::state, &'static str>,
>;

/// The job, as long as `owner` holds its lease (a worker whose lease moved on changes nothing).
fn held_by<'a>(id: &'a str, owner: &'a str) -> HeldBy<'a> {
    pipeline_jobs::table
        .filter(pipeline_jobs::id.eq(id))
        .filter(pipeline_jobs::lease_owner.eq(owner))
        .filter(pipeline_jobs::state.eq(JobState::Running.as_str()))
}

/// Extends the lease; false when this worker no longer holds the job.
pub fn heartbeat(
    conn: &mut DbConnection,
    id: &str,
    owner: &str,
    lease_until: NaiveDateTime,
) -> QueryResult<bool> {
    let updated = diesel::update(held_by(id, owner))
        .set(pipeline_jobs::lease_expires_at.eq(lease_until))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Records the end of a job this worker holds; false (and nothing written) when it no longer holds it.
pub fn finish(
    conn: &mut DbConnection,
    id: &str,
    owner: &str,
    state: JobState,
    message: Option<&str>,
    report: Option<&str>,
) -> QueryResult<bool> {
    let updated = diesel::update(held_by(id, owner))
        .set((
            pipeline_jobs::state.eq(state.as_str()),
            pipeline_jobs::message.eq(message),
            pipeline_jobs::report.eq(report),
            pipeline_jobs::lease_owner.eq(None::<String>),
            pipeline_jobs::lease_expires_at.eq(None::<NaiveDateTime>),
            pipeline_jobs::finished_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Puts a job this worker holds back in the queue after a failure that may not recur (storage down).
pub fn release(conn: &mut DbConnection, id: &str, owner: &str, message: &str) -> QueryResult<bool> {
    let updated = diesel::update(held_by(id, owner))
        .set((
            pipeline_jobs::state.eq(JobState::Queued.as_str()),
            pipeline_jobs::message.eq(message),
            pipeline_jobs::lease_owner.eq(None::<String>),
            pipeline_jobs::lease_expires_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(updated == 1)
}

/// Cancels a job not finished yet (queued, or running under any lease): its runner's next heartbeat or
/// report is refused as `lease_lost`. False when it had already finished.
pub fn cancel(conn: &mut DbConnection, id: &str, message: &str) -> QueryResult<bool> {
    let updated = diesel::update(
        pipeline_jobs::table
            .filter(pipeline_jobs::id.eq(id))
            .filter(
                pipeline_jobs::state
                    .eq(JobState::Queued.as_str())
                    .or(pipeline_jobs::state.eq(JobState::Running.as_str())),
            ),
    )
    .set((
        pipeline_jobs::state.eq(JobState::Cancelled.as_str()),
        pipeline_jobs::message.eq(message),
        pipeline_jobs::lease_owner.eq(None::<String>),
        pipeline_jobs::lease_expires_at.eq(None::<NaiveDateTime>),
        pipeline_jobs::finished_at.eq(now()),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// The job, whatever its state.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<PipelineJobRow>> {
    pipeline_jobs::table
        .filter(pipeline_jobs::id.eq(id))
        .select(PipelineJobRow::as_select())
        .first(conn)
        .optional()
}
