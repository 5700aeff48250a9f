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
    diesel::insert_into(pipeline_jobs::table)
        .values(PipelineJobRow {
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
            options: options.map(str::to_owned),
        })
        .execute(conn)?;
    Ok(())
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

/// Claims the oldest job that is queued or whose lease ran out.
pub fn claim_next(
    conn: &mut DbConnection,
    owner: &str,
    lease_until: NaiveDateTime,
) -> QueryResult<Claim> {
    let at = now();
    let candidates: Vec<PipelineJobRow> = pipeline_jobs::table
        .filter(
            pipeline_jobs::state
                .eq(JobState::Queued.as_str())
                .or(pipeline_jobs::state
                    .eq(JobState::Running.as_str())
                    .and(pipeline_jobs::lease_expires_at.lt(at))),
        )
        .order((pipeline_jobs::created_at.asc(), pipeline_jobs::id.asc()))
        .limit(16)
        .select(PipelineJobRow::as_select())
        .load(conn)?;
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
            let message = format!(
                "the pipeline worker stopped during this job {} times; giving up",
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
