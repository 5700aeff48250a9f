//! `kiln delete NS/MODEL:VERSION --yes`, or `kiln delete NS/MODEL --yes [--force]` for a whole model.

use kiln_core::ModelRef;

use crate::client::ApiClient;
use crate::error::CliError;

pub async fn run(
    client: &ApiClient,
    reference: ModelRef,
    yes: bool,
    force: bool,
    json: bool,
) -> Result<(), CliError> {
    if !yes {
        return Err(CliError::Usage(format!(
            "deleting {reference} cannot be undone; run again with --yes to confirm"
        )));
    }
    let kind = if let Some((ns, model, version)) = reference.require_version() {
        if force {
            return Err(CliError::Usage(
                "--force is for deleting a whole model; a version an alias names stays until the alias moves (kiln alias set)".to_owned(),
            ));
        }
        client.delete_version(ns, model, version).await?;
        "version"
    } else if let Some((ns, model)) = reference.require_model() {
        client.delete_model(ns, model, force).await?;
        "model"
    } else {
        return Err(CliError::Usage(format!(
            "delete needs NAMESPACE/MODEL:VERSION or NAMESPACE/MODEL (got {reference})"
        )));
    };
    if json {
        let deleted = serde_json::json!({ "deleted": reference.to_string(), "kind": kind });
        super::browse::print_json(&deleted);
    } else {
        println!("deleted {reference}");
    }
    Ok(())
}
