//! The benchmark stage: once a version's variants exist, one job per deployable variant and device class
//! with a live runner; runners claim them (services::runners), and each finished set of results re-publishes
//! the version's manifest (and its aliases') with the numbers in it.

use chrono::NaiveDateTime;
use kiln_core::ErrorCode;
use kiln_core::api::JobState;
use kiln_core::deployment::BenchmarkResult;
use kiln_core::runners::{BenchmarkReport, EngineInfo};

use super::MAX_ATTEMPTS;
use crate::db::records::{BenchmarkResultRow, PipelineJobRow, RunnerRow};
use crate::db::repos::pipeline_jobs::{BenchmarkTarget, LeaseLost};
use crate::db::repos::{benchmarks, pipeline_jobs, runners, variants, versions};
use crate::db::{DbConnection, new_id, now};
use crate::error::Error;
use crate::manifest::ManifestSigner;

/// Queues a benchmark of every deployable variant on every device class and engine that has a runner
/// heartbeating since `live_since`, with the push's pipeline `options` (its batch sizes and sequence
/// lengths). Returns how many jobs.
pub fn queue(
    conn: &mut DbConnection,
    version_id: &str,
    live_since: NaiveDateTime,
    options: Option<&str>,
) -> Result<usize, Error> {
    let queues = runners::live_queues(conn, live_since)?;
    let mut queued = 0;
    for (variant, _) in variants::for_version(conn, version_id)? {
        if variant.status != "deployable" {
            continue;
        }
        for (device_kind, engine) in &queues {
            let target = BenchmarkTarget {
                variant: &variant.name,
                device_kind,
                engine,
            };
            pipeline_jobs::enqueue_benchmark(conn, version_id, target, MAX_ATTEMPTS, options)?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// Records a runner's report on a job it still holds (else 409 `lease_lost`, nothing written), and when it
/// was the version's last unfinished benchmark, re-publishes the manifests. What identifies the measurement
/// (device, its name and driver, engine, runner, time) is taken from the runner's registration and the
/// server's clock, not from the report, so a runner cannot sign itself into a manifest as another.
pub fn record(
    conn: &mut DbConnection,
    signer: &ManifestSigner,
    runner: &RunnerRow,
    job: &PipelineJobRow,
    report: BenchmarkReport,
) -> Result<(), Error> {
    let lost = || Error::from(LeaseLost::runner(&job.id));
    let (state, message, results): (JobState, Option<String>, Vec<BenchmarkResult>) = match report {
        BenchmarkReport::Succeeded { results } => (JobState::Succeeded, None, check(results)?),
        BenchmarkReport::Failed { message } => {
            let message: String = message.chars().take(2000).collect();
            (JobState::Failed, Some(message), Vec::new())
        }
    };
    versions::lock(conn, &job.version_id)?;
    let summary = serde_json::json!({ "results": results.len() }).to_string();
    if !pipeline_jobs::finish(
        conn,
        &job.id,
        &runner.id,
        state,
        message.as_deref(),
        Some(&summary),
    )? {
        return Err(lost());
    }
    let variant = job.variant.clone().unwrap_or_default();
    let at = now();
    let summary: Vec<_> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "batch_size": r.batch_size, "p50_ms": r.p50_ms, "p99_ms": r.p99_ms,
                "throughput": r.throughput,
            })
        })
        .collect();
    crate::db::repos::webhooks::record_version_event(
        conn,
        kiln_core::api::WebhookEventType::BenchmarkCompleted.as_str(),
        &job.version_id,
        serde_json::json!({
            "variant": variant, "device": runner.device, "engine": runner.engine,
            "runner": runner.name, "state": state, "message": message, "results": summary,
        }),
    )?;
    if let Some(started) = job.started_at {
        let outcome = if state == JobState::Succeeded {
            "succeeded"
        } else {
            "failed"
        };
        metrics::histogram!(crate::telemetry::metrics::JOB_DURATION,
            "kind" => job.kind.clone(), "outcome" => outcome)
        .record((at - started).num_milliseconds().max(0) as f64 / 1000.0);
    }
    let engine = registered_engine(runner, job)?;
    for reported in results {
        if let Some(provider) = &reported.execution_provider
            && !engine.execution_providers.contains(provider)
        {
            return Err(Error::bad_request(
                ErrorCode::InvalidBenchmark,
                format!(
                    "execution provider {provider:?} is not one this runner registered for {} ({})",
                    engine.name,
                    engine.execution_providers.join(", ")
                ),
            ));
        }
        let result = BenchmarkResult {
            device: runner.device.clone(),
            device_name: runner.device_name.clone(),
            driver: runner.driver.clone(),
            engine: engine.name.clone(),
            engine_version: Some(engine.version.clone()),
            runner: format!("{} ({})", runner.name, runner.id),
            measured_at: at.and_utc(),
            ..reported
        };
        benchmarks::insert(
            conn,
            &BenchmarkResultRow {
                id: new_id(),
                version_id: job.version_id.clone(),
                variant: variant.clone(),
                job_id: job.id.clone(),
                runner_id: runner.id.clone(),
                device: result.device.clone(),
                batch_size: result.batch_size,
                result: serde_json::to_string(&result)?,
                measured_at: at,
            },
        )?;
    }
    finish_stage_if_done(conn, signer, &job.version_id)
}

/// The engine the job was queued for, as the runner registered it: what the results are attributed to.
fn registered_engine(runner: &RunnerRow, job: &PipelineJobRow) -> Result<EngineInfo, Error> {
    let wanted = job.engine.as_deref().unwrap_or(EngineInfo::KILN);
    serde_json::from_str::<Vec<EngineInfo>>(&runner.engines)?
        .into_iter()
        .find(|e| e.name == wanted)
        .ok_or_else(|| {
            Error::Internal(format!(
                "runner {} holds a {wanted} job but did not register that engine",
                runner.id
            ))
        })
}

/// Numbers a manifest can carry: 1-16 results, each with a batch of at least 1, at least one timed
/// iteration, and finite, ordered, non-negative latencies.
fn check(results: Vec<BenchmarkResult>) -> Result<Vec<BenchmarkResult>, Error> {
    let bad = |why: String| Err(Error::bad_request(ErrorCode::InvalidBenchmark, why));
    if results.is_empty() || results.len() > 16 {
        return bad(format!(
            "a report carries 1 to 16 results, not {}",
            results.len()
        ));
    }
    for r in &results {
        let latencies = [r.p50_ms, r.p90_ms, r.p99_ms, r.throughput];
        if r.batch_size < 1 || r.iterations < 1 {
            return bad("batch_size and iterations must be at least 1".to_owned());
        }
        if latencies.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return bad("latencies and throughput must be finite and non-negative".to_owned());
        }
        if !(r.p50_ms <= r.p90_ms && r.p90_ms <= r.p99_ms) {
            return bad(format!(
                "percentiles out of order: p50 {} p90 {} p99 {}",
                r.p50_ms, r.p90_ms, r.p99_ms
            ));
        }
        if r.max_abs_error.is_some_and(|e| !e.is_finite() || e < 0.0) {
            return bad("max_abs_error must be finite and non-negative".to_owned());
        }
        if r.peak_memory_bytes.is_some_and(|m| m < 0) {
            return bad("peak_memory_bytes must be at least 0".to_owned());
        }
        if r.sequence_length.is_some_and(|l| l < 1) {
            return bad("sequence_length must be at least 1".to_owned());
        }
        if r.engine_options.len() > 16
            || r.engine_options
                .iter()
                .any(|(k, v)| k.is_empty() || k.len() > 64 || v.len() > 256)
        {
            return bad(
                "engine_options: at most 16, names 1-64 characters, values at most 256".to_owned(),
            );
        }
        if r.execution_provider.as_ref().is_some_and(|p| p.len() > 64) {
            return bad("execution_provider must be at most 64 characters".to_owned());
        }
        if let Some(g) = &r.generation {
            let times = [
                g.time_to_first_token_ms,
                g.per_token_ms,
                g.tokens_per_second,
            ];
            if g.prompt_tokens < 1 || g.generated_tokens < 1 {
                return bad(
                    "generation needs at least one prompt and one generated token".to_owned(),
                );
            }
            if times.iter().any(|v| !v.is_finite() || *v < 0.0) {
                return bad("generation times must be finite and non-negative".to_owned());
            }
        }
    }
    Ok(results)
}

/// When no benchmark of the version is left to run, publish the manifests with the results.
pub fn finish_stage_if_done(
    conn: &mut DbConnection,
    signer: &ManifestSigner,
    version_id: &str,
) -> Result<(), Error> {
    versions::lock(conn, version_id)?;
    if pipeline_jobs::unfinished_benchmarks(conn, version_id)? == 0 {
        crate::manifest::republish(conn, signer, version_id)?;
    }
    Ok(())
}
