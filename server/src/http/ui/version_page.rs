//! A version's page: files, the pipeline as a timeline, where the variants came from, the version's
//! lineage and what was derived from it, variants side by side, benchmark charts and the signed manifest,
//! all from the `VersionDetail` and manifest the API serves.

use askama::Template;
use kiln_core::api::{ManifestResponse, VariantDetail, VariantOrigin, VersionDetail};

use super::chart::{Point, Scale, Series, chart, escape};
use super::display;
use super::render::Layout;

pub struct FileRow {
    pub path: String,
    pub href: String,
    pub size: String,
    pub digest: String,
    pub digest_short: String,
}

pub struct Step {
    pub label: String,
    pub state: &'static str,
    pub duration: String,
    pub message: String,
}

pub struct VariantRow {
    pub name: String,
    pub status: &'static str,
    pub origin: &'static str,
    pub size: String,
    pub ratio: String,
    pub opset: i32,
    pub max_abs: String,
    pub rel_l2: String,
    pub tolerance: String,
    pub passes: String,
}

pub struct BenchmarkRow {
    pub variant: String,
    pub device: String,
    pub batch: i64,
    pub p50: String,
    pub p90: String,
    pub p99: String,
    pub throughput: String,
    /// A decoder's time to first token and tokens per second generating (empty for other models).
    pub first_token: String,
    pub tokens_per_second: String,
    pub memory: String,
    pub engine: String,
}

pub struct Chart {
    pub svg: String,
    pub caption: &'static str,
}

pub struct ManifestView {
    pub subject: String,
    pub issuer: String,
    pub sequence: i64,
    pub kid: String,
    pub issued: String,
    pub issued_iso: String,
    pub expires: String,
    pub expires_iso: String,
    pub variants: String,
}

#[derive(Template)]
#[template(path = "version.html")]
pub struct VersionPage {
    layout: Layout,
    namespace: String,
    name: String,
    version: String,
    status: &'static str,
    created: String,
    created_iso: String,
    files: Vec<FileRow>,
    flagged: Vec<(String, String)>,
    /// Why the version is not served (the store check found a blob missing), if it is damaged.
    damage: Option<String>,
    steps: Vec<Step>,
    /// Where the variants came from (the pipeline's conversion and optimization).
    variant_origins: Vec<String>,
    /// Where the version came from, and what was derived from it.
    lineage: Option<super::lineage_section::LineageSection>,
    variants: Vec<VariantRow>,
    charts: Vec<Chart>,
    benchmarks: Vec<BenchmarkRow>,
    manifest: Option<ManifestView>,
}

fn number_field(value: &Option<serde_json::Value>, field: &str) -> Option<f64> {
    value.as_ref()?.get(field)?.as_f64()
}

fn steps(detail: &VersionDetail) -> Vec<Step> {
    detail
        .pipeline
        .iter()
        .map(|job| {
            let label = match (&job.variant, &job.device) {
                (Some(variant), Some(device)) => format!("{} {variant} on {device}", job.kind),
                (Some(variant), None) => format!("{} {variant}", job.kind),
                _ => job.kind.clone(),
            };
            let duration = match (&job.started_at, &job.finished_at) {
                (Some(start), Some(end)) => display::duration(start, end),
                _ => String::new(),
            };
            let attempts = if job.attempts > 1 {
                format!(" (try {} of {})", job.attempts, job.max_attempts)
            } else {
                String::new()
            };
            Step {
                label,
                state: job.state.as_str(),
                duration,
                message: format!("{}{attempts}", job.message.clone().unwrap_or_default()),
            }
        })
        .collect()
}

/// Where the variants came from: what the conversion read.
fn variant_origins(detail: &VersionDetail) -> Vec<String> {
    let mut lines = Vec::new();
    for job in detail.pipeline.iter().filter(|j| j.kind == "convert") {
        let Some(report) = &job.report else { continue };
        match report.get("source").and_then(|s| s.as_str()) {
            Some("onnx") => lines.push(format!(
                "onnx: the pushed {} (opset {}, produced by {})",
                report["model"].as_str().unwrap_or("model"),
                report["opset"],
                report["producer"].as_str().unwrap_or("an unnamed tool"),
            )),
            Some(source) => lines.push(format!(
                "onnx: converted by kiln from a {source} checkpoint ({}) read from {}",
                report["family"].as_str().unwrap_or("unknown family"),
                report["read"]
                    .as_array()
                    .map(|files| files
                        .iter()
                        .filter_map(|f| f.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
            )),
            None => {}
        }
    }
    for variant in detail
        .variants
        .iter()
        .filter(|v| v.origin == VariantOrigin::Optimized)
    {
        lines.push(format!("{}: optimized by kiln from onnx", variant.name));
    }
    lines
}

fn original_size(variants: &[VariantDetail]) -> Option<i64> {
    variants
        .iter()
        .find(|v| v.name == "onnx")
        .or_else(|| variants.iter().find(|v| v.origin == VariantOrigin::Pushed))
        .map(|v| v.size)
}

fn variant_rows(variants: &[VariantDetail]) -> Vec<VariantRow> {
    let original = original_size(variants);
    variants
        .iter()
        .map(|v| {
            let shown = |field: &str| {
                number_field(&v.validation, field)
                    .map(display::number)
                    .unwrap_or_else(|| "—".to_owned())
            };
            let passes = v
                .passes
                .as_ref()
                .and_then(|p| p.as_array())
                .map(|passes| {
                    passes
                        .iter()
                        .filter_map(|p| p.get("pass").and_then(|n| n.as_str()))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            VariantRow {
                name: v.name.clone(),
                status: v.status.as_str(),
                origin: v.origin.as_str(),
                size: display::bytes(v.size),
                ratio: match original {
                    Some(o) if o > 0 => format!("{:.2}×", v.size as f64 / o as f64),
                    _ => "—".to_owned(),
                },
                opset: v.opset,
                max_abs: shown("max_abs_error"),
                rel_l2: shown("rel_l2_error"),
                tolerance: shown("tolerance_rel_l2"),
                passes,
            }
        })
        .collect()
}

fn benchmark_rows(variants: &[VariantDetail]) -> Vec<BenchmarkRow> {
    let mut rows = Vec::new();
    for v in variants {
        for b in &v.benchmarks {
            rows.push(BenchmarkRow {
                variant: v.name.clone(),
                device: b.device.clone(),
                batch: b.batch_size,
                p50: display::number(b.p50_ms),
                p90: display::number(b.p90_ms),
                p99: display::number(b.p99_ms),
                throughput: display::number(b.throughput),
                first_token: b
                    .generation
                    .as_ref()
                    .map(|g| display::number(g.time_to_first_token_ms))
                    .unwrap_or_default(),
                tokens_per_second: b
                    .generation
                    .as_ref()
                    .map(|g| display::number(g.tokens_per_second))
                    .unwrap_or_default(),
                memory: b.peak_memory_bytes.map(display::bytes).unwrap_or_default(),
                engine: b.engine.clone(),
            });
        }
    }
    rows
}

/// One series per variant and device, each point a batch size, y from `measure`.
fn by_batch(
    variants: &[VariantDetail],
    measure: &dyn Fn(&kiln_core::deployment::BenchmarkResult) -> f64,
    name: &str,
) -> Vec<Series> {
    let mut series: Vec<Series> = Vec::new();
    for v in variants {
        let mut devices: Vec<&str> = v.benchmarks.iter().map(|b| b.device.as_str()).collect();
        devices.sort_unstable();
        devices.dedup();
        for device in devices {
            let mut results: Vec<_> = v.benchmarks.iter().filter(|b| b.device == device).collect();
            results.sort_by_key(|b| b.batch_size);
            series.push(Series {
                name: format!("{} {device}", v.name),
                points: results
                    .iter()
                    .map(|b| Point {
                        x: b.batch_size as f64,
                        y: measure(b),
                        data: format!(
                            r#"data-variant="{}" data-device="{}" data-batch="{}" data-{name}="{}""#,
                            escape(&v.name),
                            escape(device),
                            b.batch_size,
                            measure(b)
                        ),
                    })
                    .collect(),
            });
        }
    }
    series
}

fn charts(variants: &[VariantDetail]) -> Vec<Chart> {
    if variants.iter().all(|v| v.benchmarks.is_empty()) {
        return Vec::new();
    }
    let p50 = by_batch(variants, &|b| b.p50_ms, "p50");
    let p99 = by_batch(variants, &|b| b.p99_ms, "p99");
    let throughput = by_batch(variants, &|b| b.throughput, "throughput");
    let size_error: Vec<Series> = variants
        .iter()
        .filter_map(|v| {
            let error = number_field(&v.validation, "rel_l2_error")?;
            Some(Series {
                name: v.name.clone(),
                points: vec![Point {
                    x: v.size as f64 / (1024.0 * 1024.0),
                    y: error,
                    data: format!(
                        r#"data-variant="{}" data-size="{}" data-error="{error}""#,
                        escape(&v.name),
                        v.size
                    ),
                }],
            })
        })
        .collect();
    let mut out = vec![
        Chart {
            svg: chart(
                "latency-p50",
                "batch size",
                "p50 latency (ms)",
                Scale::Log2,
                true,
                &p50,
            ),
            caption: "Median latency by batch size, per variant and device",
        },
        Chart {
            svg: chart(
                "latency-p99",
                "batch size",
                "p99 latency (ms)",
                Scale::Log2,
                true,
                &p99,
            ),
            caption: "99th-percentile latency by batch size, per variant and device",
        },
        Chart {
            svg: chart(
                "throughput",
                "batch size",
                "items per second",
                Scale::Log2,
                true,
                &throughput,
            ),
            caption: "Throughput at the median latency, per variant and device",
        },
    ];
    if !size_error.is_empty() {
        out.push(Chart {
            svg: chart(
                "size-error",
                "size (MiB)",
                "rel. L2 error",
                Scale::Linear,
                false,
                &size_error,
            ),
            caption: "Size against error from the original, per variant",
        });
    }
    out
}

fn manifest_view(m: ManifestResponse) -> ManifestView {
    let p = &m.payload;
    ManifestView {
        subject: p.subject(),
        issuer: p.iss.clone().unwrap_or_else(|| "(not named)".into()),
        sequence: m.sequence,
        kid: m.kid,
        issued: display::date(&p.issued_at),
        issued_iso: display::iso(&p.issued_at),
        expires: display::date(&p.expires_at),
        expires_iso: display::iso(&p.expires_at),
        variants: p
            .variants
            .iter()
            .map(|v| v.name.clone())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

pub fn build(
    layout: Layout,
    detail: VersionDetail,
    manifest: Option<ManifestResponse>,
) -> VersionPage {
    let (ns, model, version) = (&detail.namespace, &detail.model, &detail.version);
    let files = detail
        .files
        .iter()
        .map(|f| FileRow {
            href: format!(
                "/api/v1/models/{ns}/{model}/versions/{version}/files/{}",
                display::url_path(f.path.as_str())
            ),
            path: f.path.to_string(),
            size: display::bytes(f.size),
            digest: f.digest.to_string(),
            digest_short: f.digest.to_string().chars().take(19).collect(),
        })
        .collect();
    VersionPage {
        layout,
        namespace: ns.to_string(),
        name: model.to_string(),
        version: version.to_string(),
        status: detail.status.as_str(),
        created: display::date(&detail.created_at),
        created_iso: display::iso(&detail.created_at),
        files,
        flagged: detail
            .flagged
            .iter()
            .map(|f| (f.path.clone(), f.reason.clone()))
            .collect(),
        damage: detail.damage.clone(),
        steps: steps(&detail),
        variant_origins: variant_origins(&detail),
        lineage: super::lineage_section::build(&detail),
        variants: variant_rows(&detail.variants),
        charts: charts(&detail.variants),
        benchmarks: benchmark_rows(&detail.variants),
        manifest: manifest.map(manifest_view),
    }
}
