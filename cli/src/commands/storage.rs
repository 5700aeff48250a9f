//! `kiln admin gc`, `kiln admin fsck`, `kiln admin quota`, `kiln usage` and `kiln retention ...`.

use clap::Subcommand;
use kiln_core::api::{
    CollectionReport, CollectionRequest, NamespaceSummary, NamespaceUsage, Quota, RetentionOutcome,
    RetentionRule, RetentionRules, RetentionRun, StoreCheckReport, StoreCheckRequest,
};
use kiln_core::{ModelRef, NamespaceName};

use super::browse::{print_json, table};
use crate::client::ApiClient;
use crate::error::CliError;
use crate::progress::{human_bytes, note};

#[derive(Subcommand)]
pub enum RetentionCommand {
    /// A namespace's rule and its models' rules
    Show { namespace: NamespaceName },
    /// Set the rule of NAMESPACE (every model) or NAMESPACE/MODEL (replaces the namespace's); a version
    /// is kept when any given option keeps it, and always while an alias names it
    Set {
        /// NAMESPACE or NAMESPACE/MODEL
        #[arg(value_parser = crate::parse_ref)]
        target: ModelRef,
        /// Keep the newest N versions
        #[arg(long)]
        keep_last: Option<i64>,
        /// Keep versions created within the last D days
        #[arg(long)]
        keep_days: Option<i64>,
        /// Keep versions an alias named at any time in the last D days
        #[arg(long)]
        keep_aliased_days: Option<i64>,
    },
    /// Remove the rule of NAMESPACE or NAMESPACE/MODEL
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(value_parser = crate::parse_ref)]
        target: ModelRef,
    },
    /// Delete now what the namespace's rules do not keep (or list it, with --dry-run)
    Apply {
        namespace: NamespaceName,
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Delete blobs nothing references any more and abort abandoned uploads (or report them, with
    /// --dry-run)
    Gc {
        #[arg(long)]
        dry_run: bool,
        /// Keep unreferenced blobs younger than this many seconds instead of the server's grace period
        /// (a push in flight is only protected that long)
        #[arg(long)]
        grace_seconds: Option<u64>,
    },
    /// Compare the store with the database: missing or wrong blobs, objects nothing records
    Fsck {
        /// Read every blob and check its digest
        #[arg(long)]
        verify: bool,
        /// Remove orphans past the grace period; mark versions with missing blobs damaged (not served)
        #[arg(long)]
        repair: bool,
    },
    /// Show a namespace's quota, or set it (a limit left out is lifted)
    Quota {
        namespace: NamespaceName,
        /// The most its versions may hold, e.g. 500GiB (distinct blobs, variants included)
        #[arg(long, value_parser = parse_size)]
        max_bytes: Option<i64>,
        /// The most versions it may hold
        #[arg(long)]
        max_versions: Option<i64>,
        /// Lift both limits
        #[arg(long, conflicts_with_all = ["max_bytes", "max_versions"])]
        unlimited: bool,
    },
}

pub async fn run_retention(
    client: &ApiClient,
    command: RetentionCommand,
    json: bool,
) -> Result<(), CliError> {
    match command {
        RetentionCommand::Show { namespace } => show_retention(client, namespace, json).await,
        RetentionCommand::Set {
            target,
            keep_last,
            keep_days,
            keep_aliased_days,
        } => {
            let rule = kiln_core::api::RetentionRule {
                keep_last,
                keep_days,
                keep_aliased_days,
            };
            set_retention(client, target, rule, json).await
        }
        RetentionCommand::Rm { target } => remove_retention(client, target, json).await,
        RetentionCommand::Apply { namespace, dry_run } => {
            apply_retention(client, namespace, dry_run, json).await
        }
    }
}

pub async fn run_admin(
    client: &ApiClient,
    command: AdminCommand,
    json: bool,
) -> Result<(), CliError> {
    match command {
        AdminCommand::Gc {
            dry_run,
            grace_seconds,
        } => collect(client, dry_run, grace_seconds, json).await,
        AdminCommand::Fsck { verify, repair } => {
            let request = kiln_core::api::StoreCheckRequest { verify, repair };
            check_store(client, request, json).await
        }
        AdminCommand::Quota {
            namespace,
            max_bytes,
            max_versions,
            unlimited,
        } => {
            let quota = (unlimited || max_bytes.is_some() || max_versions.is_some()).then_some(
                kiln_core::api::Quota {
                    max_bytes,
                    max_versions,
                },
            );
            set_quota(client, namespace, quota, json).await
        }
    }
}

/// `10GiB`, `500MB`, `2.5G`, `1048576`: a byte count for a quota.
pub fn parse_size(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 500MiB, 10GB, 1073741824)"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024f64.powi(2),
        "gi" | "gib" => 1024f64.powi(3),
        "ti" | "tib" => 1024f64.powi(4),
        other => {
            return Err(format!(
                "unknown unit {other:?}: use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ));
        }
    };
    let bytes = number * factor;
    if !(0.0..9.2e18).contains(&bytes) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(bytes.round() as i64)
}

pub async fn collect(
    client: &ApiClient,
    dry_run: bool,
    grace_seconds: Option<u64>,
    json: bool,
) -> Result<(), CliError> {
    let report: CollectionReport = client
        .post_json(
            "/admin/gc",
            &CollectionRequest {
                dry_run,
                grace_seconds,
            },
        )
        .await?;
    if json {
        print_json(&report);
        return Ok(());
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    println!(
        "{verb} {} blob(s), {} (of {} looked at; grace {} s) in {:.1} s",
        report.blobs_deleted,
        human_bytes(report.bytes_freed as i64),
        report.blobs_scanned,
        report.grace_seconds,
        report.duration_ms as f64 / 1000.0,
    );
    if !dry_run {
        println!(
            "aborted {} abandoned upload(s); pruned {} OCI layer(s); finished {} deletion(s) an earlier run left",
            report.uploads_aborted, report.tar_layers_pruned, report.deletions_resumed
        );
    }
    Ok(())
}

pub async fn check_store(
    client: &ApiClient,
    request: StoreCheckRequest,
    json: bool,
) -> Result<(), CliError> {
    let report: StoreCheckReport = client.post_json("/admin/fsck", &request).await?;
    if json {
        print_json(&report);
        return Ok(());
    }
    println!(
        "checked {} blob(s) against {} object(s){} in {:.1} s: {} problem(s), {} orphan(s)",
        report.blobs_checked,
        report.objects_listed,
        if report.verify {
            ", every digest read"
        } else {
            ""
        },
        report.duration_ms as f64 / 1000.0,
        report.problem_count,
        report.orphan_count,
    );
    for problem in &report.problems {
        println!(
            "{:<13} {} ({} recorded{}) held by {}",
            problem.problem,
            problem.digest,
            human_bytes(problem.recorded_size),
            problem
                .stored_size
                .map(|s| format!(", {} stored", human_bytes(s as i64)))
                .unwrap_or_default(),
            if problem.versions.is_empty() {
                "nothing".to_owned()
            } else {
                problem.versions.join(", ")
            },
        );
    }
    for orphan in &report.orphans {
        println!(
            "orphan        {} ({}, {}){}",
            orphan.key,
            human_bytes(orphan.size as i64),
            orphan.last_modified.to_rfc3339(),
            if orphan.removed { " removed" } else { "" },
        );
    }
    for version in &report.versions_damaged {
        println!("damaged       {version} (not served until repaired)");
    }
    for version in &report.versions_restored {
        println!("restored      {version}");
    }
    if !report.repair && report.problem_count + report.orphan_count > 0 {
        note(
            "run `kiln admin fsck --repair` to remove orphans past the grace period and mark damaged versions",
        );
    }
    Ok(())
}

pub async fn set_quota(
    client: &ApiClient,
    namespace: NamespaceName,
    quota: Option<Quota>,
    json: bool,
) -> Result<(), CliError> {
    let quota = match quota {
        Some(quota) => {
            client
                .put_json::<_, Quota>(&format!("/namespaces/{namespace}/quota"), &quota)
                .await?
        }
        None => {
            client
                .get_json::<NamespaceUsage>(&format!("/namespaces/{namespace}/usage"))
                .await?
                .quota
        }
    };
    if json {
        print_json(&quota);
        return Ok(());
    }
    println!("{namespace}: {}", quota_line(&quota));
    Ok(())
}

fn quota_line(quota: &Quota) -> String {
    let bytes = quota.max_bytes.map_or("no byte limit".to_owned(), |b| {
        format!("at most {}", human_bytes(b))
    });
    let versions = quota
        .max_versions
        .map_or("no version limit".to_owned(), |v| {
            format!("at most {v} versions")
        });
    format!("{bytes}, {versions}")
}

pub async fn usage(
    client: &ApiClient,
    namespace: Option<NamespaceName>,
    json: bool,
) -> Result<(), CliError> {
    let Some(namespace) = namespace else {
        return usage_of_all(client, json).await;
    };
    let usage: NamespaceUsage = client
        .get_json(&format!("/namespaces/{namespace}/usage"))
        .await?;
    if json {
        print_json(&usage);
        return Ok(());
    }
    println!(
        "{}: {} in {} version(s); {} unique, {} shared with other namespaces; quota: {}",
        usage.namespace,
        human_bytes(usage.bytes),
        usage.versions,
        human_bytes(usage.unique_bytes),
        human_bytes(usage.shared_bytes),
        quota_line(&usage.quota),
    );
    let mut out = table(&[
        "MODEL",
        "VERSIONS",
        "SIZE",
        "UNIQUE (freed by deleting it)",
        "SHARED",
    ]);
    for m in &usage.models {
        out.add_row(vec![
            m.model.to_string(),
            m.versions.to_string(),
            human_bytes(m.bytes),
            human_bytes(m.unique_bytes),
            human_bytes(m.shared_bytes),
        ]);
    }
    println!("\n{out}");
    Ok(())
}

/// Every namespace the caller is a member of (the others answer 403 and are left out).
async fn usage_of_all(client: &ApiClient, json: bool) -> Result<(), CliError> {
    let namespaces: Vec<NamespaceSummary> = client.get_all("/namespaces").await?;
    let mut all = Vec::new();
    for ns in namespaces {
        match client
            .get_json::<NamespaceUsage>(&format!("/namespaces/{}/usage", ns.name))
            .await
        {
            Ok(usage) => all.push(usage),
            Err(CliError::Api { status, .. }) if status == 403 || status == 404 => {}
            Err(e) => return Err(e),
        }
    }
    if json {
        print_json(&all);
        return Ok(());
    }
    let mut out = table(&["NAMESPACE", "VERSIONS", "SIZE", "UNIQUE", "SHARED", "QUOTA"]);
    for usage in &all {
        out.add_row(vec![
            usage.namespace.to_string(),
            usage.versions.to_string(),
            human_bytes(usage.bytes),
            human_bytes(usage.unique_bytes),
            human_bytes(usage.shared_bytes),
            quota_line(&usage.quota),
        ]);
    }
    println!("{out}");
    Ok(())
}

fn rule_line(rule: &RetentionRule) -> String {
    let mut parts = Vec::new();
    if let Some(n) = rule.keep_last {
        parts.push(format!("the last {n}"));
    }
    if let Some(d) = rule.keep_days {
        parts.push(format!("those newer than {d} days"));
    }
    if let Some(d) = rule.keep_aliased_days {
        parts.push(format!("those an alias named in the last {d} days"));
    }
    if rule.keep_last.is_none() && rule.keep_days.is_none() {
        return "keeps every version".to_owned();
    }
    format!("keeps {} (and what aliases name now)", parts.join(", "))
}

fn print_rules(rules: &RetentionRules) {
    match &rules.rule {
        Some(rule) => println!("{}: {}", rules.namespace, rule_line(rule)),
        None => println!("{}: no rule (every version is kept)", rules.namespace),
    }
    for model in &rules.models {
        println!(
            "{}/{}: {}",
            rules.namespace,
            model.model,
            rule_line(&model.rule)
        );
    }
}

fn retention_path(target: &ModelRef) -> Result<String, CliError> {
    if target.version.is_some() || target.alias.is_some() {
        return Err(CliError::Usage(format!(
            "retention rules belong to NAMESPACE or NAMESPACE/MODEL, not to a version ({target})"
        )));
    }
    Ok(match &target.model {
        Some(model) => format!("/models/{}/{model}/retention", target.namespace),
        None => format!("/namespaces/{}/retention", target.namespace),
    })
}

pub async fn show_retention(
    client: &ApiClient,
    namespace: NamespaceName,
    json: bool,
) -> Result<(), CliError> {
    let rules: RetentionRules = client
        .get_json(&format!("/namespaces/{namespace}/retention"))
        .await?;
    if json {
        print_json(&rules);
    } else {
        print_rules(&rules);
    }
    Ok(())
}

pub async fn set_retention(
    client: &ApiClient,
    target: ModelRef,
    rule: RetentionRule,
    json: bool,
) -> Result<(), CliError> {
    let rules: RetentionRules = client.put_json(&retention_path(&target)?, &rule).await?;
    if json {
        print_json(&rules);
    } else {
        print_rules(&rules);
        note(format!(
            "applied by the scheduled collection; see what it would delete now with `kiln retention apply {} --dry-run`",
            rules.namespace
        ));
    }
    Ok(())
}

pub async fn remove_retention(
    client: &ApiClient,
    target: ModelRef,
    json: bool,
) -> Result<(), CliError> {
    client.delete(&retention_path(&target)?).await?;
    if json {
        print_json(&serde_json::json!({ "removed": target.to_string() }));
    } else {
        println!("removed the retention rule of {target}");
    }
    Ok(())
}

pub async fn apply_retention(
    client: &ApiClient,
    namespace: NamespaceName,
    dry_run: bool,
    json: bool,
) -> Result<(), CliError> {
    let outcome: RetentionOutcome = client
        .post_json(
            &format!("/namespaces/{namespace}/retention/apply"),
            &RetentionRun { dry_run },
        )
        .await?;
    if json {
        print_json(&outcome);
        return Ok(());
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    for v in &outcome.deleted {
        println!(
            "{verb} {namespace}/{}:{} (created {})",
            v.model,
            v.version,
            v.created_at.to_rfc3339()
        );
    }
    println!(
        "{verb} {} version(s), kept {}{}",
        outcome.deleted.len(),
        outcome.kept,
        if dry_run {
            ""
        } else {
            "; their blobs go at the next collection (kiln admin gc)"
        }
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("10GB"), Ok(10_000_000_000));
        assert_eq!(parse_size("2.5 GiB"), Ok(2_684_354_560));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999TB").is_err());
    }
}
