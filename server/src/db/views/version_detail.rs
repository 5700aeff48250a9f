//! A version as the API shows it: its files, its pipeline's jobs and the variants they produced, with each
//! variant's benchmark results.

use kiln_core::api::{
    Dim, FileEntry, FlaggedFile, JobState, PipelineJob, TensorSignature, VariantDetail,
    VariantOrigin, VariantStatus, VersionDetail, VersionStatus,
};
use kiln_core::deployment::BenchmarkResult;

use crate::db::DbConnection;
use crate::db::records::{PipelineJobRow, VariantFileRow, VariantRow, VersionFileRow, VersionRow};
use crate::db::repos::{benchmarks, pipeline_jobs, variants, versions};
use crate::error::Error;

fn corrupt(what: &str, value: &str) -> Error {
    Error::Internal(format!("unknown {what} {value:?} in the database"))
}

pub fn version_detail(
    conn: &mut DbConnection,
    ns: &str,
    model: &str,
    row: &VersionRow,
    files: Vec<VersionFileRow>,
) -> Result<VersionDetail, Error> {
    // A distillation of this version is a job of its own (GET .../distillations), not a pipeline step.
    let pipeline: Vec<PipelineJob> = pipeline_jobs::for_version(conn, &row.id)?
        .into_iter()
        .filter(|j| j.kind != pipeline_jobs::JOB_DISTILL)
        .map(job)
        .collect::<Result<_, _>>()?;
    let flagged = pipeline
        .iter()
        .filter(|j| j.kind == SCAN_KIND)
        .filter_map(|j| j.report.as_ref())
        .flat_map(flagged_in_scan_report)
        .collect();
    let mut benchmarks: Vec<(String, BenchmarkResult)> = benchmarks::for_version(conn, &row.id)?
        .into_iter()
        .map(|b| {
            serde_json::from_str(&b.result)
                .map(|r| (b.variant, r))
                .map_err(Error::from)
        })
        .collect::<Result<_, _>>()?;
    let variants = variants::for_version(conn, &row.id)?
        .into_iter()
        .map(|(variant_row, files)| {
            let (mine, rest) = std::mem::take(&mut benchmarks)
                .into_iter()
                .partition(|(name, _)| *name == variant_row.name);
            benchmarks = rest;
            variant(
                variant_row,
                files,
                mine.into_iter().map(|(_, r)| r).collect(),
            )
        })
        .collect::<Result<_, _>>()?;
    Ok(VersionDetail {
        namespace: ns.parse()?,
        model: model.parse()?,
        version: row.version.parse()?,
        status: VersionStatus::parse(&row.status)
            .ok_or_else(|| corrupt("version status", &row.status))?,
        files: files
            .into_iter()
            .map(file_entry)
            .collect::<Result<_, _>>()?,
        created_at: row.created_at.and_utc(),
        pipeline,
        variants,
        flagged,
        damage: versions::damage(conn, &row.id)?,
        lineage: super::resolved_lineage(conn, &row.id)?,
        // Who may see a derived version depends on the caller: the services add them (this detail is
        // kept by the read cache and signed into manifests, for every caller alike).
        derived: Vec::new(),
        derived_count: 0,
    })
}

/// The scan job's kind: its report lists each file, with `flagged` set for one stored only, never loaded.
/// It is defined here, below the pipeline, because this read model interprets the scan's report;
/// `pipeline::Scan::KIND` is this constant.
pub const SCAN_KIND: &str = "scan";

/// The version's files its scan marked as stored only, never loaded.
pub fn flagged_files(conn: &mut DbConnection, version_id: &str) -> Result<Vec<FlaggedFile>, Error> {
    Ok(pipeline_jobs::for_version(conn, version_id)?
        .into_iter()
        .filter(|j| j.kind == SCAN_KIND)
        .filter_map(|j| serde_json::from_str(j.report.as_deref()?).ok())
        .flat_map(|report| flagged_in_scan_report(&report))
        .collect())
}

/// The files a scan report marks as stored only (see [`SCAN_KIND`]).
fn flagged_in_scan_report(report: &serde_json::Value) -> Vec<FlaggedFile> {
    report["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some(FlaggedFile {
                path: f["path"].as_str()?.to_owned(),
                reason: f["flagged"].as_str()?.to_owned(),
            })
        })
        .collect()
}

/// A version's file as the API lists it.
pub fn file_entry(f: VersionFileRow) -> Result<FileEntry, Error> {
    Ok(FileEntry {
        path: f.path.parse()?,
        digest: f.digest.parse()?,
        size: f.size,
    })
}

/// A variant's files as the API lists them: the model file first, then the rest by path.
pub fn variant_file_entries(
    model_path: &str,
    mut files: Vec<VariantFileRow>,
) -> Result<Vec<FileEntry>, Error> {
    files.sort_by(|a, b| (a.path != model_path, &a.path).cmp(&(b.path != model_path, &b.path)));
    files
        .into_iter()
        .map(|f| {
            Ok(FileEntry {
                path: f.path.parse()?,
                digest: f.digest.parse()?,
                size: f.size,
            })
        })
        .collect()
}

fn job(row: PipelineJobRow) -> Result<PipelineJob, Error> {
    Ok(PipelineJob {
        state: JobState::parse(&row.state).ok_or_else(|| corrupt("job state", &row.state))?,
        kind: row.kind,
        variant: row.variant,
        device: row.device,
        engine: row.engine,
        attempts: row.attempts,
        max_attempts: row.max_attempts,
        message: row.message,
        report: row.report.and_then(|r| serde_json::from_str(&r).ok()),
        created_at: row.created_at.and_utc(),
        started_at: row.started_at.map(|t| t.and_utc()),
        finished_at: row.finished_at.map(|t| t.and_utc()),
    })
}

fn variant(
    row: VariantRow,
    files: Vec<VariantFileRow>,
    benchmarks: Vec<BenchmarkResult>,
) -> Result<VariantDetail, Error> {
    let model_file = files
        .iter()
        .find(|f| f.path == row.model_path)
        .ok_or_else(|| Error::Internal(format!("variant {} lacks its model file", row.name)))?;
    let digest = model_file.digest.parse()?;
    let size = files.iter().map(|f| f.size).sum();
    Ok(VariantDetail {
        origin: origin(&row),
        status: VariantStatus::parse(&row.status)
            .ok_or_else(|| corrupt("variant status", &row.status))?,
        digest,
        size,
        opset: row.opset,
        inputs: signatures(&row.inputs)?,
        outputs: signatures(&row.outputs)?,
        validation: row.validation.and_then(|v| serde_json::from_str(&v).ok()),
        passes: row.passes.and_then(|p| serde_json::from_str(&p).ok()),
        files: variant_file_entries(&row.model_path, files)?,
        name: row.name,
        benchmarks,
    })
}

/// The `onnx` variant is the pushed model itself when kiln did not convert it (it carries no validation: the
/// convert job records a conversion's proof, and nothing for a model pushed as ONNX); every other variant
/// is made by the optimize job.
fn origin(row: &VariantRow) -> VariantOrigin {
    match (row.name.as_str(), &row.validation) {
        ("onnx", None) => VariantOrigin::Pushed,
        ("onnx", Some(_)) => VariantOrigin::Converted,
        _ => VariantOrigin::Optimized,
    }
}

fn signatures(json: &str) -> Result<Vec<TensorSignature>, Error> {
    Ok(serde_json::from_str(json)?)
}

/// The API form of a signature the checker read.
pub fn signature_of(value: &kiln_onnx::model_check::ValueSignature) -> TensorSignature {
    use kiln_onnx::model_check::DimInfo;
    TensorSignature {
        name: value.name.clone(),
        dtype: value.dtype.clone(),
        shape: value.shape.as_ref().map(|dims| {
            dims.iter()
                .map(|d| match d {
                    DimInfo::Fixed(v) => Dim::Fixed(*v),
                    DimInfo::Symbolic(s) => Dim::Symbolic(s.clone()),
                    DimInfo::Unknown => Dim::Unknown,
                })
                .collect()
        }),
    }
}
