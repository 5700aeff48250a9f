//! Lineage in the CLI: `kiln push --lineage FILE` reads and checks the file before a byte is uploaded, and
//! `kiln show` prints where a version came from and what was derived from it.

use std::io::Read;
use std::path::Path;

use kiln_core::api::{LineageLink, LineageRequest, VersionDetail, VersionStatus};

use crate::error::CliError;

const FORM: &str = "the file holds the API's lineage object, e.g. {\"parents\": [{\"reference\": \"acme/teacher:1.0\", \"role\": \"teacher\"}], \
     \"datasets\": [{\"reference\": \"acme/corpus:1\"}, {\"uri\": \"s3://bucket/data\", \"sha256\": \"sha256:...\"}], \
     \"training_run\": \"https://ci.example/runs/42\", \"producer\": {\"name\": \"torchrun\", \"version\": \"2.5.1\"}, \
     \"hyperparameters\": {\"lr\": 0.0003}} (docs/cli.md, \"Lineage\")";

/// The lineage in `path` (`-`: stdin), checked against the bounds the server holds it to, so that a
/// mistake is reported before anything is hashed or uploaded.
pub fn read_file(path: &Path) -> Result<LineageRequest, CliError> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(CliError::io("stdin"))?;
        text
    } else {
        std::fs::read_to_string(path).map_err(CliError::io(path))?
    };
    let shown = if path == Path::new("-") {
        "the lineage on stdin".to_owned()
    } else {
        path.display().to_string()
    };
    let lineage: LineageRequest = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{shown}: {e}\n  {FORM}")))?;
    lineage
        .check()
        .map_err(|problem| CliError::Usage(format!("{shown}: {problem}\n  {FORM}")))?;
    Ok(lineage)
}

fn status_note(status: Option<VersionStatus>) -> &'static str {
    match status {
        Some(status) => status.as_str(),
        None => "deleted since",
    }
}

/// `sha256:0123456789ab`: enough of a digest to tell files apart on a terminal.
fn short(digest: &kiln_core::Sha256Digest) -> String {
    digest.to_string().chars().take(19).collect()
}

/// The Lineage and Derived sections of `kiln show`, when the version has either.
pub fn print(detail: &VersionDetail) {
    if let Some(lineage) = &detail.lineage {
        println!("\nlineage:");
        for parent in &lineage.parents {
            println!(
                "  parent   {} ({}, {})",
                parent.reference,
                parent.role,
                status_note(parent.status)
            );
        }
        for dataset in &lineage.datasets {
            match (&dataset.reference, &dataset.uri) {
                (Some(reference), _) => {
                    println!(
                        "  dataset  {reference} ({}, {} file(s))",
                        status_note(dataset.status),
                        dataset.files.len()
                    );
                    for file in &dataset.files {
                        println!("             {} {}", short(&file.digest), file.path);
                    }
                }
                (None, Some(uri)) => match &dataset.sha256 {
                    Some(digest) => println!("  dataset  {uri} ({})", short(digest)),
                    None => println!("  dataset  {uri}"),
                },
                (None, None) => {}
            }
        }
        if let Some(run) = &lineage.training_run {
            println!("  run      {run}");
        }
        if let Some(producer) = &lineage.producer {
            println!("  producer {} {}", producer.name, producer.version);
        }
        for (name, value) in lineage.hyperparameters.iter().flatten() {
            match value {
                serde_json::Value::String(text) => println!("  hyper    {name} = {text}"),
                other => println!("  hyper    {name} = {other}"),
            }
        }
    }
    if !detail.derived.is_empty() {
        println!("\nderived:");
        for derived in &detail.derived {
            match derived.link {
                LineageLink::Parent => {
                    println!("  {} (as its {})", derived.reference, derived.role)
                }
                LineageLink::Dataset => println!("  {} (as a dataset)", derived.reference),
            }
        }
        let more = detail.derived_count - detail.derived.len() as i64;
        if more > 0 {
            println!("  and {more} more");
        }
    }
}
