//! `kiln show` lists where a model (or the version shown) is being served: the `kiln-runner serve`
//! processes that reported in the last 90 s.

use comfy_table::Cell;
use kiln_core::api::ServingView;
use kiln_core::{ModelName, NamespaceName, VersionName};

use super::browse::table;
use crate::client::ApiClient;
use crate::error::CliError;

/// Prints the model's live serving processes (those serving `version`, when given); nothing when none.
pub async fn print_for_model(
    client: &ApiClient,
    ns: &NamespaceName,
    model: &ModelName,
    version: Option<&VersionName>,
) -> Result<(), CliError> {
    let listed: Vec<ServingView> = client
        .get_json(&format!("/models/{ns}/{model}/servings"))
        .await?;
    let shown: Vec<&ServingView> = listed
        .iter()
        .filter(|s| version.is_none_or(|v| &s.report.version == v))
        .collect();
    if shown.is_empty() {
        return Ok(());
    }
    let now = chrono::Utc::now();
    let mut out = table(&[
        "SERVED BY",
        "FOLLOWS",
        "VERSION",
        "VARIANT",
        "ENGINE",
        "ENDPOINTS",
        "SEEN",
    ]);
    for s in shown {
        let r = &s.report;
        out.add_row(vec![
            Cell::new(&r.name),
            Cell::new(
                r.alias
                    .as_ref()
                    .map_or_else(|| "(fixed version)".to_owned(), |a| format!("@{a}")),
            ),
            Cell::new(format!("{} (manifest {})", r.version, r.sequence)),
            Cell::new(&r.variant),
            Cell::new(format!("{} on {}", r.engine, r.device)),
            Cell::new(r.endpoints.join("\n")),
            Cell::new(format!(
                "{} s ago",
                (now - s.last_seen_at).num_seconds().max(0)
            )),
        ]);
    }
    println!("\nServed at:\n{out}");
    Ok(())
}
