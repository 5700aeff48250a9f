//! Distillation jobs: the rows only a distillation has, read with their `pipeline_jobs` row.

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::records::{DistillationRow, PipelineJobRow};
use crate::db::schema::{distillations, pipeline_jobs};

pub fn insert(conn: &mut DbConnection, row: &DistillationRow) -> QueryResult<()> {
    diesel::insert_into(distillations::table)
        .values(row.clone())
        .execute(conn)?;
    Ok(())
}

/// The job and its distillation row.
pub fn find(
    conn: &mut DbConnection,
    job_id: &str,
) -> QueryResult<Option<(PipelineJobRow, DistillationRow)>> {
    pipeline_jobs::table
        .inner_join(distillations::table)
        .filter(pipeline_jobs::id.eq(job_id))
        .select((PipelineJobRow::as_select(), DistillationRow::as_select()))
        .first(conn)
        .optional()
}

/// The distillations of a teacher version, newest first.
pub fn of_teacher(
    conn: &mut DbConnection,
    version_id: &str,
) -> QueryResult<Vec<(PipelineJobRow, DistillationRow)>> {
    pipeline_jobs::table
        .inner_join(distillations::table)
        .filter(pipeline_jobs::version_id.eq(version_id))
        .order((pipeline_jobs::created_at.desc(), pipeline_jobs::id.desc()))
        .select((PipelineJobRow::as_select(), DistillationRow::as_select()))
        .load(conn)
}

/// Distillations not finished whose student would be `target`: one at a time per target.
pub fn unfinished_into(conn: &mut DbConnection, target: &str) -> QueryResult<Option<String>> {
    pipeline_jobs::table
        .inner_join(distillations::table)
        .filter(distillations::target.eq(target))
        .filter(pipeline_jobs::state.eq_any(["queued", "running"]))
        .select(pipeline_jobs::id)
        .first(conn)
        .optional()
}

pub fn set_progress(conn: &mut DbConnection, job_id: &str, progress: &str) -> QueryResult<()> {
    diesel::update(distillations::table.filter(distillations::job_id.eq(job_id)))
        .set(distillations::progress.eq(progress))
        .execute(conn)?;
    Ok(())
}

pub fn set_checkpoint(conn: &mut DbConnection, job_id: &str, step: i64) -> QueryResult<()> {
    diesel::update(distillations::table.filter(distillations::job_id.eq(job_id)))
        .set(distillations::checkpoint_step.eq(step))
        .execute(conn)?;
    Ok(())
}

pub fn set_student(conn: &mut DbConnection, job_id: &str, version_id: &str) -> QueryResult<()> {
    diesel::update(distillations::table.filter(distillations::job_id.eq(job_id)))
        .set(distillations::student_version_id.eq(version_id))
        .execute(conn)?;
    Ok(())
}

/// The distillations not finished (queued or running): those whose saved state is still wanted.
pub fn unfinished_ids(conn: &mut DbConnection) -> QueryResult<std::collections::HashSet<String>> {
    Ok(pipeline_jobs::table
        .filter(pipeline_jobs::kind.eq(super::pipeline_jobs::JOB_DISTILL))
        .filter(pipeline_jobs::state.eq_any(["queued", "running"]))
        .select(pipeline_jobs::id)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}
