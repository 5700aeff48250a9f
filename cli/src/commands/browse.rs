//! `kiln ls` and `kiln show`: what the registry holds, as tables or as JSON.

use comfy_table::presets::NOTHING;
use comfy_table::{Cell, CellAlignment, Table};
use kiln_core::ModelRef;
use kiln_core::api::{
    JobState, ModelDetail, ModelSummary, VariantDetail, VariantOrigin, VariantStatus,
    VersionDetail, VersionStatus,
};
use serde::Serialize;

use crate::client::{ApiClient, ModelFilter};
use crate::error::CliError;
use crate::progress::human_bytes;

pub(crate) fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(NOTHING)
        .set_header(header.iter().map(Cell::new));
    table
}

pub(crate) fn print_json<T: Serialize>(value: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).expect("API types serialize")
    );
}

pub(crate) fn date(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

/// `kiln ls [NS[/MODEL]]`
/// `kiln ls [NS[/MODEL]]`: models (filtered by the server, `limit` of them unless None), or versions.
pub async fn ls(
    client: &ApiClient,
    reference: Option<ModelRef>,
    filter: &ModelFilter,
    limit: Option<usize>,
    json: bool,
) -> Result<(), CliError> {
    let namespace = match &reference {
        None => None,
        Some(r) if r.version.is_some() || r.alias.is_some() => {
            return Err(CliError::Usage(format!(
                "ls lists models or versions; to see one version use: kiln show {r}"
            )));
        }
        Some(ModelRef {
            namespace,
            model: Some(model),
            ..
        }) => {
            if !filter.is_empty() {
                return Err(CliError::Usage(format!(
                    "--tag, --search, --prefix and --has-variant filter models; kiln ls {namespace}/{model} lists its versions"
                )));
            }
            versions_table(&client.model(namespace, model).await?, json);
            return Ok(());
        }
        Some(ModelRef { namespace, .. }) => Some(namespace),
    };
    let (models, more) = client.models(namespace, filter, limit).await?;
    models_table(&models, json);
    if more && !json {
        eprintln!(
            "(the first {}; --limit N lists more, --all lists every one)",
            models.len()
        );
    }
    Ok(())
}

fn models_table(models: &[ModelSummary], json: bool) {
    if json {
        return print_json(&models);
    }
    let mut out = table(&["MODEL", "LATEST", "VERSIONS", "UPDATED", "DESCRIPTION"]);
    for m in models {
        out.add_row(vec![
            Cell::new(format!("{}/{}", m.namespace, m.name)),
            Cell::new(
                m.latest_version
                    .as_ref()
                    .map_or("-".to_owned(), ToString::to_string),
            ),
            Cell::new(m.version_count).set_alignment(CellAlignment::Right),
            Cell::new(date(&m.updated_at)),
            Cell::new(m.description.lines().next().unwrap_or("")),
        ]);
    }
    if models.is_empty() {
        println!("no models yet; push one with: kiln push ./my-model NAMESPACE/MODEL:VERSION");
    } else {
        println!("{out}");
    }
}

fn versions_table(model: &ModelDetail, json: bool) {
    if json {
        return print_json(model);
    }
    let mut out = table(&["VERSION", "STATUS", "FILES", "SIZE", "CREATED"]);
    for v in &model.versions {
        out.add_row(vec![
            Cell::new(&v.version),
            Cell::new(v.status.as_str()),
            Cell::new(v.file_count).set_alignment(CellAlignment::Right),
            Cell::new(human_bytes(v.total_size)).set_alignment(CellAlignment::Right),
            Cell::new(date(&v.created_at)),
        ]);
    }
    println!("{out}");
}

/// `kiln show NS/MODEL[:VERSION]`
pub async fn show(client: &ApiClient, reference: ModelRef, json: bool) -> Result<(), CliError> {
    let Some(model) = &reference.model else {
        return Err(CliError::Usage(format!(
            "show needs NAMESPACE/MODEL[:VERSION|@ALIAS]; to list a namespace use: kiln ls {reference}"
        )));
    };
    let version = match (&reference.version, &reference.alias) {
        (Some(version), _) => Some(version.clone()),
        // The version the alias names now (as the API says; `kiln verify` checks the signed manifest).
        (None, Some(alias)) => {
            let aliases: Vec<kiln_core::deployment::AliasView> = client
                .get_all(&format!("/models/{}/{model}/aliases", reference.namespace))
                .await?;
            let named = aliases
                .into_iter()
                .find(|a| &a.name == alias)
                .ok_or_else(|| {
                    CliError::NotFound(format!(
                        "{reference} does not exist; see kiln alias ls {}/{model}",
                        reference.namespace
                    ))
                })?;
            Some(named.version)
        }
        (None, None) => None,
    };
    match version {
        Some(version) => {
            show_version(
                &client
                    .version(&reference.namespace, model, &version)
                    .await?,
                json,
            );
            if !json {
                let teacher = format!("{}/{model}:{version}", reference.namespace);
                super::distill::print_for_version(client, &teacher).await?;
                super::serving::print_for_model(
                    client,
                    &reference.namespace,
                    model,
                    Some(&version),
                )
                .await?;
            }
        }
        None => {
            show_model(&client.model(&reference.namespace, model).await?, json);
            if !json {
                super::serving::print_for_model(client, &reference.namespace, model, None).await?;
            }
        }
    }
    Ok(())
}

fn show_version(detail: &VersionDetail, json: bool) {
    if json {
        return print_json(detail);
    }
    let total: i64 = detail.files.iter().map(|f| f.size).sum();
    println!("{}/{}:{}", detail.namespace, detail.model, detail.version);
    println!("status:   {}", status_line(detail));
    if let Some(damage) = &detail.damage {
        println!(
            "DAMAGED:  {damage}; not served until repaired (push the same files again, then `kiln admin fsck --repair`)"
        );
    }
    println!("created:  {}", detail.created_at.to_rfc3339());
    println!("files:    {} ({})", detail.files.len(), human_bytes(total));
    let mut out = table(&["PATH", "SIZE", "DIGEST"]);
    for f in &detail.files {
        out.add_row(vec![
            Cell::new(&f.path),
            Cell::new(human_bytes(f.size)).set_alignment(CellAlignment::Right),
            Cell::new(f.digest),
        ]);
    }
    println!("\n{out}");
    for flag in &detail.flagged {
        println!(
            "flagged:  {} is stored only, never loaded by kiln: {}",
            flag.path, flag.reason
        );
    }
    super::lineage::print(detail);
    if !detail.pipeline.is_empty() {
        let mut jobs = table(&["JOB", "STATE", "TRIES", "MESSAGE"]);
        for job in &detail.pipeline {
            let what = match (&job.variant, &job.device) {
                (Some(variant), Some(device)) => format!("{} {variant} on {device}", job.kind),
                _ => job.kind.clone(),
            };
            jobs.add_row(vec![
                Cell::new(what),
                Cell::new(job.state.as_str()),
                Cell::new(format!("{}/{}", job.attempts, job.max_attempts)),
                Cell::new(job.message.as_deref().unwrap_or("")),
            ]);
        }
        println!("\npipeline:\n{jobs}");
    }
    if !detail.variants.is_empty() {
        let mut variants = table(&["VARIANT", "STATUS", "OPSET", "SIZE", "PROOF", "DIGEST"]);
        for v in &detail.variants {
            variants.add_row(vec![
                Cell::new(&v.name),
                Cell::new(v.status.as_str()),
                Cell::new(v.opset),
                Cell::new(human_bytes(v.size)).set_alignment(CellAlignment::Right),
                Cell::new(proof(v)),
                Cell::new(v.digest),
            ]);
        }
        println!("\nvariants:\n{variants}");
    }
    let measured: Vec<_> = detail
        .variants
        .iter()
        .flat_map(|v| v.benchmarks.iter().map(move |b| (v, b)))
        .collect();
    if !measured.is_empty() {
        // A decoder's generation columns only when some result has them.
        let generating = measured.iter().any(|(_, b)| b.generation.is_some());
        let mut header = vec![
            "VARIANT", "DEVICE", "ENGINE", "BATCH", "SEQ", "P50 MS", "P90 MS", "P99 MS", "ITEMS/S",
            "THREADS",
        ];
        if generating {
            header.extend(["FIRST TOKEN MS", "TOKENS/S"]);
        }
        let mut out = table(&header);
        for (v, b) in measured {
            let right = |text: String| Cell::new(text).set_alignment(CellAlignment::Right);
            let mut row = vec![
                Cell::new(&v.name),
                Cell::new(format!("{} ({})", b.device, b.device_name)),
                Cell::new(engine_label(b)),
                right(b.batch_size.to_string()),
                right(b.sequence_length.map_or("-".to_owned(), |l| l.to_string())),
                right(format!("{:.3}", b.p50_ms)),
                right(format!("{:.3}", b.p90_ms)),
                right(format!("{:.3}", b.p99_ms)),
                right(format!("{:.0}", b.throughput)),
                right(b.threads.map_or("-".to_owned(), |t| t.to_string())),
            ];
            if generating {
                let g = b.generation.as_ref();
                row.push(right(g.map_or("-".to_owned(), |g| {
                    format!("{:.3}", g.time_to_first_token_ms)
                })));
                row.push(right(g.map_or("-".to_owned(), |g| {
                    format!("{:.1}", g.tokens_per_second)
                })));
            }
            out.add_row(row);
        }
        println!("\nbenchmarks:\n{out}");
    }
}

/// The version's state in words: what kiln proved about it and what it could not.
fn status_line(detail: &VersionDetail) -> String {
    let status = detail.status.as_str();
    match detail.status {
        VersionStatus::Ready => {
            let not_proven: Vec<String> = detail
                .pipeline
                .iter()
                .filter(|j| matches!(j.state, JobState::Skipped | JobState::Failed))
                .map(|j| format!("{} {}", j.kind, j.state.as_str()))
                .collect();
            let running = detail
                .pipeline
                .iter()
                .any(|j| matches!(j.state, JobState::Queued | JobState::Running));
            let mut line = format!("{status} (stored, scanned and signable");
            if running {
                line.push_str("; the pipeline is still adding variants");
            }
            if !not_proven.is_empty() {
                line.push_str(&format!("; not proven: {}", not_proven.join(", ")));
            }
            line + ")"
        }
        VersionStatus::Failed => format!("{status} (a safety scan refused it; see the pipeline)"),
        VersionStatus::Pending | VersionStatus::Processing => {
            format!("{status} (the files are being scanned)")
        }
    }
}

/// What kiln proved about a variant, in a few words.
fn proof(variant: &VariantDetail) -> String {
    // JSON has no NaN: a validation whose outputs were NaN (fp16 overflow) says null.
    let rel_l2 = variant
        .validation
        .as_ref()
        .and_then(|v| v.get("rel_l2_error"))
        .map(|e| match e.as_f64() {
            Some(e) => format!("rel L2 {e:.1e}"),
            None => "rel L2 NaN".to_owned(),
        });
    match (variant.origin, variant.status, rel_l2) {
        (VariantOrigin::Pushed, _, _) => "as pushed, not validated by kiln".to_owned(),
        (VariantOrigin::Converted, _, Some(e)) => {
            format!("converted; matches the checkpoint ({e})")
        }
        (VariantOrigin::Converted, _, None) => "converted; matches the checkpoint".to_owned(),
        (_, VariantStatus::Rejected, Some(e)) => format!("outside its tolerance ({e})"),
        (_, VariantStatus::Rejected, None) => "could not be validated".to_owned(),
        (_, _, Some(e)) => format!("validated against onnx ({e})"),
        (_, _, None) => "validated against onnx".to_owned(),
    }
}

/// `kiln runners [--json]`: the benchmark runners and their state.
/// `onnxruntime 1.32.0 CPUExecutionProvider`: the engine, its version and where it ran.
fn engine_label(b: &kiln_core::deployment::BenchmarkResult) -> String {
    [
        Some(b.engine.as_str()),
        b.engine_version.as_deref(),
        b.execution_provider.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" ")
}

pub async fn runners(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let runners: Vec<kiln_core::runners::RunnerView> = client.get_all("/runners").await?;
    if json {
        print_json(&runners);
        return Ok(());
    }
    if runners.is_empty() {
        println!("no runners are registered: start kiln-runner, or the server's embedded runner");
        return Ok(());
    }
    let mut out = table(&["NAME", "DEVICE", "STATE", "LAST HEARTBEAT", "ENGINES", "ID"]);
    for r in &runners {
        let state = serde_json::to_value(r.state).expect("state serialises");
        out.add_row(vec![
            Cell::new(&r.name),
            Cell::new(format!("{} ({})", r.device, r.device_name)),
            Cell::new(state.as_str().unwrap_or("?")),
            Cell::new(r.last_heartbeat_at.format("%Y-%m-%d %H:%M:%S")),
            Cell::new(
                r.engines
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {} ({})",
                            e.name,
                            e.version,
                            e.execution_providers.join(", ")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            Cell::new(&r.id),
        ]);
    }
    println!("{out}");
    Ok(())
}

fn show_model(model: &ModelDetail, json: bool) {
    if json {
        return print_json(model);
    }
    println!("{}/{}", model.namespace, model.name);
    if !model.description.is_empty() {
        println!("{}", model.description);
    }
    if !model.tags.is_empty() {
        println!("tags: {}", model.tags.join(", "));
    }
    println!();
    versions_table(model, false);
}
