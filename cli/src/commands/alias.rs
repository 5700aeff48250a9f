//! `kiln alias set|ls|history`: movable names for versions; each move publishes a new signed manifest.

use comfy_table::{Cell, CellAlignment};
use kiln_core::deployment::{AliasEvent, AliasView, SetAliasRequest};
use kiln_core::{AliasName, ModelRef, VersionName};

use super::browse::{date, print_json, table};
use crate::client::ApiClient;
use crate::error::CliError;

fn model_path(reference: &ModelRef) -> Result<String, CliError> {
    let (ns, model) = reference.require_model().ok_or_else(|| {
        CliError::Usage(format!(
            "this needs NAMESPACE/MODEL, e.g. acme/sentiment (got {reference})"
        ))
    })?;
    Ok(format!("/models/{ns}/{model}/aliases"))
}

/// `kiln alias set NS/MODEL ALIAS VERSION`
pub async fn set(
    client: &ApiClient,
    reference: ModelRef,
    alias: AliasName,
    version: VersionName,
    json: bool,
) -> Result<(), CliError> {
    let path = format!("{}/{alias}", model_path(&reference)?);
    let view: AliasView = client.put_json(&path, &SetAliasRequest { version }).await?;
    if json {
        print_json(&view);
        return Ok(());
    }
    println!(
        "{reference}@{} → {} (manifest sequence {})",
        view.name, view.version, view.sequence
    );
    Ok(())
}

/// `kiln alias ls NS/MODEL`
pub async fn ls(client: &ApiClient, reference: ModelRef, json: bool) -> Result<(), CliError> {
    let aliases: Vec<AliasView> = client.get_all(&model_path(&reference)?).await?;
    if json {
        print_json(&aliases);
        return Ok(());
    }
    if aliases.is_empty() {
        println!(
            "{reference} has no aliases; create one with: kiln alias set {reference} production VERSION"
        );
        return Ok(());
    }
    let mut out = table(&["ALIAS", "VERSION", "SEQUENCE", "UPDATED", "BY"]);
    for a in &aliases {
        out.add_row(vec![
            Cell::new(&a.name),
            Cell::new(&a.version),
            Cell::new(a.sequence).set_alignment(CellAlignment::Right),
            Cell::new(date(&a.updated_at)),
            Cell::new(&a.updated_by),
        ]);
    }
    println!("{out}");
    Ok(())
}

/// `kiln alias history NS/MODEL ALIAS`
pub async fn history(
    client: &ApiClient,
    reference: ModelRef,
    alias: AliasName,
    json: bool,
) -> Result<(), CliError> {
    let path = format!("{}/{alias}/history", model_path(&reference)?);
    let events: Vec<AliasEvent> = client.get_all(&path).await?;
    if json {
        print_json(&events);
        return Ok(());
    }
    let mut out = table(&["SEQUENCE", "WHEN", "WHO", "FROM", "TO"]);
    for e in &events {
        out.add_row(vec![
            Cell::new(e.sequence).set_alignment(CellAlignment::Right),
            Cell::new(e.at.format("%Y-%m-%d %H:%M:%S")),
            Cell::new(&e.actor),
            Cell::new(e.from.as_ref().map_or("-".to_owned(), ToString::to_string)),
            Cell::new(&e.to),
        ]);
    }
    println!("{out}");
    Ok(())
}
