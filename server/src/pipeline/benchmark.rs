//! The benchmark stage: once a version's variants exist, one job per deployable variant and device class
//! with a live runner; runners claim them (services::runners), and each finished set of results re-publishes
//! the version's manifest (and its aliases') with the numbers in it.

use chrono::NaiveDateTime;
use kiln_core::api::JobState;
use kiln_core::deployment::BenchmarkResult;
use kiln_core::runners::BenchmarkReport;

use super::MAX_ATTEMPTS;
use crate::db::records::{BenchmarkResultRow, PipelineJobRow};
use crate::db::repos::{benchmarks, pipeline_jobs, runners, variants};
use crate::db::{DbConnection, new_id, now};
use crate::error::Error;
use crate::manifest::ManifestSigner;

/// Queues a benchmark of every deployable variant on every device class that has a runner heartbeating
/// since `live_since`. Returns how many jobs.
pub fn queue(
    conn: &mut DbConnection,
    version_id: &str,
    live_since: NaiveDateTime,
) -> Result<usize, Error> {
    let kinds = runners::live_device_kinds(conn, live_since)?;
    let mut queued = 0;
    for (variant, _) in variants::for_version(conn, version_id)? {
        if variant.status != "deployable" {
            continue;
        }
        for kind in &kinds {
            pipeline_jobs::enqueue_benchmark(conn, version_id, &variant.name, kind, MAX_ATTEMPTS)?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// Records a runner's report on a job it still holds (else 409 `lease_lost`, nothing written), and when it
/// was the version's last unfinished benchmark, re-publishes the manifests.
pub fn record(
    conn: &mut DbConnection,
    signer: &ManifestSigner,
    runner_id: &str,
    job: &PipelineJobRow,
    report: BenchmarkReport,
) -> Result<(), Error> {
    let lost = || {
        Error::conflict(
            "lease_lost",
            "this runner no longer holds the job (its lease ran out and it went back to the queue); drop the result and claim again",
        )
    };
    let (state, message, results): (JobState, Option<String>, Vec<BenchmarkResult>) = match report {
        BenchmarkReport::Succeeded { results } => (JobState::Succeeded, None, results),
        BenchmarkReport::Failed { message } => (JobState::Failed, Some(message), Vec::new()),
    };
    let summary = serde_json::json!({ "results": results.len() }).to_string();
    if !pipeline_jobs::finish(
        conn,
        &job.id,
        runner_id,
        state,
        message.as_deref(),
        Some(&summary),
    )? {
        return Err(lost());
    }
    let variant = job.variant.clone().unwrap_or_default();
    for result in results {
        benchmarks::insert(
            conn,
            &BenchmarkResultRow {
                id: new_id(),
                version_id: job.version_id.clone(),
                variant: variant.clone(),
                job_id: job.id.clone(),
                runner_id: runner_id.to_owned(),
                device: result.device.clone(),
                batch_size: result.batch_size,
                result: serde_json::to_string(&result)
                    .map_err(|e| Error::Internal(e.to_string()))?,
                measured_at: now(),
            },
        )?;
    }
    finish_stage_if_done(conn, signer, &job.version_id)
}

/// When no benchmark of the version is left to run, publish the manifests with the results.
pub fn finish_stage_if_done(
    conn: &mut DbConnection,
    signer: &ManifestSigner,
    version_id: &str,
) -> Result<(), Error> {
    if pipeline_jobs::unfinished_benchmarks(conn, version_id)? == 0 {
        crate::manifest::republish(conn, signer, version_id)?;
    }
    Ok(())
}
