//! A committed student next to its teacher: sizes and agreement from the job's report, latency from the
//! benchmarks both versions have, read when shown (the student's arrive as its pipeline runs).

use kiln_core::api::{DistillationComparison, LatencyPair};
use kiln_core::deployment::BenchmarkResult;

use crate::db::DbConnection;
use crate::db::repos::{benchmarks, versions};
use crate::error::Error;

type Key = (String, String, String, i64, Option<i64>);

fn measured(conn: &mut DbConnection, version_id: &str) -> Result<Vec<(Key, f64)>, Error> {
    benchmarks::for_version(conn, version_id)?
        .into_iter()
        .map(|row| {
            let result: BenchmarkResult = serde_json::from_str(&row.result)?;
            let key = (
                row.variant,
                result.device,
                result.engine,
                result.batch_size,
                result.sequence_length,
            );
            Ok((key, result.p50_ms))
        })
        .collect()
}

/// The comparison, when the student is committed (and not deleted since) and the report is there.
pub fn of(
    conn: &mut DbConnection,
    teacher_id: &str,
    student_id: Option<&str>,
    report: Option<&serde_json::Value>,
) -> Result<Option<DistillationComparison>, Error> {
    let (Some(student_id), Some(report)) = (student_id, report) else {
        return Ok(None);
    };
    let (ns, model, version) = versions::context(conn, student_id)?;
    let number = |name: &str| report.get(name).and_then(|v| v.as_u64()).unwrap_or(0);
    let teacher = measured(conn, teacher_id)?;
    // The latest measurement of each kind wins (results are ordered by when they were measured).
    let mut latency: Vec<LatencyPair> = Vec::new();
    for (key, student_p50) in measured(conn, student_id)? {
        let Some((_, teacher_p50)) = teacher.iter().rev().find(|(k, _)| *k == key) else {
            continue;
        };
        let (variant, device, engine, batch_size, sequence_length) = key;
        latency.retain(|p| {
            (
                &p.variant,
                &p.device,
                &p.engine,
                p.batch_size,
                p.sequence_length,
            ) != (&variant, &device, &engine, batch_size, sequence_length)
        });
        latency.push(LatencyPair {
            variant,
            device,
            engine,
            batch_size,
            sequence_length,
            teacher_p50_ms: *teacher_p50,
            student_p50_ms: student_p50,
        });
    }
    Ok(Some(DistillationComparison {
        student: format!("{ns}/{model}:{}", version.version),
        teacher_parameters: number("teacher_parameters"),
        student_parameters: number("student_parameters"),
        teacher_bytes: number("teacher_bytes"),
        student_bytes: number("student_bytes"),
        top1_agreement: report
            .pointer("/trained/top1")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0),
        latency,
    }))
}
