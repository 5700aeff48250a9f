//! `kiln delete NS/MODEL:VERSION --yes`

use kiln_core::ModelRef;

use crate::client::ApiClient;
use crate::error::CliError;

pub async fn run(client: &ApiClient, reference: ModelRef, yes: bool) -> Result<(), CliError> {
    let (ns, model, version) = reference.require_version().ok_or_else(|| {
        CliError::Usage(format!(
            "delete needs NAMESPACE/MODEL:VERSION (got {reference})"
        ))
    })?;
    if !yes {
        return Err(CliError::Usage(format!(
            "deleting {reference} cannot be undone; run again with --yes to confirm"
        )));
    }
    client.delete_version(ns, model, version).await?;
    println!("deleted {reference}");
    Ok(())
}
