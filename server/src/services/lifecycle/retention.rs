//! Retention rules: which versions a namespace or a model keeps. Applied by the scheduled collection
//! (before its sweep) and on demand, with a dry run that lists what would go; every deletion goes through
//! the registry's own (refused while an alias names the version, audited).

use std::collections::{HashMap, HashSet};

use chrono::NaiveDateTime;
use kiln_core::api::{
    ModelRetentionRule, RetentionOutcome, RetentionRule, RetentionRules, RetiredVersion,
    VersionStatus,
};
use kiln_core::{ErrorCode, ModelName, NamespaceName, VersionName};
use serde_json::json;

use super::{LifecycleService, scheduler};
use crate::db::repos::audit::{self, Actor};
use crate::db::repos::retention_rules::{self, RuleRow, WHOLE_NAMESPACE};
use crate::db::repos::{aliases, models, namespaces, versions};
use crate::db::{DbConnection, now};
use crate::error::Error;
use crate::services::transaction_retried;

fn to_row(rule: &RetentionRule) -> RuleRow {
    (rule.keep_last, rule.keep_days, rule.keep_aliased_days)
}

fn from_row((keep_last, keep_days, keep_aliased_days): RuleRow) -> RetentionRule {
    RetentionRule {
        keep_last,
        keep_days,
        keep_aliased_days,
    }
}

fn validate(rule: &RetentionRule) -> Result<(), Error> {
    let bad = |message: &str| Err(Error::bad_request(ErrorCode::InvalidRetention, message));
    if rule.keep_last.is_some_and(|n| n < 1) {
        return bad("keep_last must be at least 1 (leave it out to keep versions by age only)");
    }
    if rule.keep_days.is_some_and(|d| !(0..=36_500).contains(&d))
        || rule
            .keep_aliased_days
            .is_some_and(|d| !(0..=36_500).contains(&d))
    {
        return bad("days must be between 0 and 36500");
    }
    Ok(())
}

/// What a rule decides for one model's versions (newest first): the ones it deletes.
fn retire(
    rule: &RetentionRule,
    newest_first: &[(String, String, NaiveDateTime, String)],
    aliased_now: &HashSet<String>,
    named_recently: &HashSet<String>,
    at: NaiveDateTime,
) -> Vec<usize> {
    if rule.keep_last.is_none() && rule.keep_days.is_none() {
        return Vec::new();
    }
    let young_after = rule.keep_days.map(|d| at - chrono::Duration::days(d));
    // keep_last counts ready versions: a push still processing (or one that failed) does not push a
    // ready version out. A failed version newer than the last one kept stays, to be looked at.
    let mut ready_seen = 0i64;
    let mut going = Vec::new();
    for (i, (id, name, created, status)) in newest_first.iter().enumerate() {
        let status = VersionStatus::parse(status);
        let within_last = rule.keep_last.is_some_and(|n| ready_seen < n);
        if status == Some(VersionStatus::Ready) {
            ready_seen += 1;
        }
        let kept = within_last
            || young_after.is_some_and(|after| *created > after)
            || aliased_now.contains(id)
            || named_recently.contains(name)
            // The pipeline is still working on it.
            || matches!(
                status,
                Some(VersionStatus::Pending | VersionStatus::Processing)
            );
        if !kept {
            going.push(i);
        }
    }
    going
}

/// The versions the namespace's rules delete now, oldest first, and how many they keep.
fn plan(
    conn: &mut DbConnection,
    namespace_id: &str,
    at: NaiveDateTime,
) -> Result<(Vec<RetiredVersion>, i64), Error> {
    let rules: HashMap<String, RetentionRule> = retention_rules::for_namespace(conn, namespace_id)?
        .into_iter()
        .map(|(model, row)| (model, from_row(row)))
        .collect();
    let mut retired = Vec::new();
    let mut kept = 0;
    for (model_id, model_name) in models::in_namespace(conn, namespace_id)? {
        let listed = versions::newest_first(conn, &model_id)?;
        let Some(rule) = rules.get(&model_id).or(rules.get(WHOLE_NAMESPACE)) else {
            kept += listed.len() as i64;
            continue;
        };
        let aliased_now: HashSet<String> = aliases::aliased_version_ids(conn, &model_id)?
            .into_iter()
            .collect();
        let named_recently: HashSet<String> = match rule.keep_aliased_days {
            Some(days) => aliases::named_since(conn, &model_id, at - chrono::Duration::days(days))?
                .into_iter()
                .collect(),
            None => HashSet::new(),
        };
        let going = retire(rule, &listed, &aliased_now, &named_recently, at);
        kept += (listed.len() - going.len()) as i64;
        for i in going {
            let (_, version, created_at, _) = &listed[i];
            retired.push(RetiredVersion {
                model: model_name.parse()?,
                version: version.parse()?,
                created_at: created_at.and_utc(),
            });
        }
    }
    retired.sort_by_key(|v| v.created_at);
    Ok((retired, kept))
}

impl LifecycleService {
    pub async fn retention_rules(&self, ns: NamespaceName) -> Result<RetentionRules, Error> {
        self.db
            .read(move |conn| {
                let namespace = namespaces::find(conn, ns.as_str())?
                    .ok_or_else(|| Error::not_found(format!("namespace {ns}")))?;
                let names: HashMap<String, String> = models::in_namespace(conn, &namespace.id)?
                    .into_iter()
                    .collect();
                let mut rule = None;
                let mut per_model = Vec::new();
                for (model_id, row) in retention_rules::for_namespace(conn, &namespace.id)? {
                    if model_id == WHOLE_NAMESPACE {
                        rule = Some(from_row(row));
                    } else if let Some(name) = names.get(&model_id) {
                        per_model.push(ModelRetentionRule {
                            model: name.parse()?,
                            rule: from_row(row),
                        });
                    }
                }
                per_model.sort_by(|a, b| a.model.as_str().cmp(b.model.as_str()));
                Ok(RetentionRules {
                    namespace: ns,
                    rule,
                    models: per_model,
                })
            })
            .await
    }

    /// Sets the namespace's rule, or one model's (namespace admins; audited).
    pub async fn set_retention(
        &self,
        ns: NamespaceName,
        model: Option<ModelName>,
        rule: RetentionRule,
        actor: Actor,
    ) -> Result<RetentionRules, Error> {
        validate(&rule)?;
        let namespace = ns.clone();
        self.db
            .run(move |conn| {
                transaction_retried(conn, |conn| {
                    let (namespace_id, model_id, target) = scope(conn, &ns, model.as_ref())?;
                    retention_rules::set(
                        conn,
                        &namespace_id,
                        &model_id,
                        to_row(&rule),
                        &actor.name,
                    )?;
                    audit::record(
                        conn,
                        &actor,
                        "retention.set",
                        &target,
                        serde_json::to_value(&rule)?,
                    )?;
                    Ok(())
                })
            })
            .await?;
        self.retention_rules(namespace).await
    }

    /// Removes the namespace's rule, or one model's (which then follows the namespace's).
    pub async fn remove_retention(
        &self,
        ns: NamespaceName,
        model: Option<ModelName>,
        actor: Actor,
    ) -> Result<(), Error> {
        self.db
            .run(move |conn| {
                transaction_retried(conn, |conn| {
                    let (namespace_id, model_id, target) = scope(conn, &ns, model.as_ref())?;
                    // Idempotent: without a rule there is nothing to remove, and nothing to record.
                    if retention_rules::delete(conn, &namespace_id, &model_id)? {
                        audit::record(conn, &actor, "retention.remove", &target, json!({}))?;
                    }
                    Ok(())
                })
            })
            .await
    }

    /// Applies the namespace's rules now; a dry run lists what they would delete.
    pub async fn apply_retention(
        &self,
        ns: NamespaceName,
        dry_run: bool,
        actor: Actor,
    ) -> Result<RetentionOutcome, Error> {
        let name = ns.clone();
        let (planned, kept) = self
            .db
            .read(move |conn| {
                let namespace = namespaces::find(conn, name.as_str())?
                    .ok_or_else(|| Error::not_found(format!("namespace {name}")))?;
                plan(conn, &namespace.id, now())
            })
            .await?;
        if dry_run {
            return Ok(RetentionOutcome {
                dry_run,
                deleted: planned,
                kept,
            });
        }
        let retiree = Actor {
            name: format!("retention rule (applied by {})", actor.name),
            ..actor
        };
        let mut deleted = Vec::with_capacity(planned.len());
        let mut kept = kept;
        for version in planned {
            match self.retire_one(&ns, &version, &retiree).await? {
                true => deleted.push(version),
                false => kept += 1,
            }
        }
        Ok(RetentionOutcome {
            dry_run,
            deleted,
            kept,
        })
    }

    /// Deletes one version a rule retired; false when it must stay after all (an alias moved onto it, or
    /// it went meanwhile).
    async fn retire_one(
        &self,
        ns: &NamespaceName,
        version: &RetiredVersion,
        actor: &Actor,
    ) -> Result<bool, Error> {
        let name: VersionName = version.version.clone();
        match self
            .registry
            .delete_version(ns.clone(), version.model.clone(), name, actor.clone())
            .await
        {
            Ok(()) => Ok(true),
            Err(Error::Conflict { .. } | Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The scheduled run's first step: every namespace's rules, holding the collection's lease (renewed
    /// between namespaces). Returns the versions deleted.
    pub(super) async fn apply_all_retention_rules(&self, holder: &str) -> Result<u64, Error> {
        let mut renewed = std::time::Instant::now();
        let names = self
            .db
            .read(|conn| Ok(retention_rules::namespaces_with_rules(conn)?))
            .await?;
        let mut retired = 0;
        for name in names {
            self.keep_lease(holder, &mut renewed).await?;
            let ns: NamespaceName = name.parse()?;
            retired += self
                .apply_retention(ns, false, scheduler())
                .await?
                .deleted
                .len() as u64;
        }
        Ok(retired)
    }
}

/// The rule's place: (namespace id, model id or `WHOLE_NAMESPACE`, what the audit log names).
fn scope(
    conn: &mut DbConnection,
    ns: &NamespaceName,
    model: Option<&ModelName>,
) -> Result<(String, String, String), Error> {
    match model {
        None => {
            let namespace = namespaces::find(conn, ns.as_str())?
                .ok_or_else(|| Error::not_found(format!("namespace {ns}")))?;
            Ok((namespace.id, WHOLE_NAMESPACE.to_owned(), ns.to_string()))
        }
        Some(model) => {
            let (namespace, row) = models::find(conn, ns.as_str(), model.as_str())?
                .ok_or_else(|| Error::not_found(format!("model {ns}/{model}")))?;
            Ok((namespace.id, row.id, format!("{ns}/{model}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_700_000_000 + n * 86_400, 0)
            .unwrap()
            .naive_utc()
    }

    /// Versions "v9" (newest, day 9) down to "v0" (day 0), all ready.
    fn ten() -> Vec<(String, String, NaiveDateTime, String)> {
        (0..10)
            .rev()
            .map(|n| {
                (
                    format!("id{n}"),
                    format!("v{n}"),
                    day(n),
                    "ready".to_owned(),
                )
            })
            .collect()
    }

    fn names(listed: &[(String, String, NaiveDateTime, String)], going: &[usize]) -> Vec<String> {
        going.iter().map(|&i| listed[i].1.clone()).collect()
    }

    #[test]
    fn keep_last_keeps_the_newest_and_what_aliases_name() {
        let listed = ten();
        let rule = RetentionRule {
            keep_last: Some(3),
            ..Default::default()
        };
        let aliased: HashSet<String> = ["id1".to_owned()].into();
        let going = retire(&rule, &listed, &aliased, &HashSet::new(), day(10));
        assert_eq!(names(&listed, &going), ["v6", "v5", "v4", "v3", "v2", "v0"]);
    }

    #[test]
    fn any_field_that_keeps_a_version_keeps_it() {
        let listed = ten();
        let rule = RetentionRule {
            keep_last: Some(2),
            keep_days: Some(5),
            keep_aliased_days: Some(30),
        };
        let recent: HashSet<String> = ["v2".to_owned()].into();
        let going = retire(&rule, &listed, &HashSet::new(), &recent, day(10));
        // Days 6-9 are younger than 5 days at day 10 (day 5 is exactly 5 days old: not younger).
        assert_eq!(names(&listed, &going), ["v5", "v4", "v3", "v1", "v0"]);
    }

    #[test]
    fn keep_last_counts_ready_versions_only() {
        let mut listed = ten();
        // The newest is still processing and the next one failed: the last 2 ready are v7 and v6.
        listed[0].3 = "processing".to_owned();
        listed[1].3 = "failed".to_owned();
        listed[5].3 = "failed".to_owned();
        let rule = RetentionRule {
            keep_last: Some(2),
            ..Default::default()
        };
        let going = retire(&rule, &listed, &HashSet::new(), &HashSet::new(), day(10));
        assert_eq!(names(&listed, &going), ["v5", "v4", "v3", "v2", "v1", "v0"]);
    }

    #[test]
    fn a_rule_without_count_or_age_keeps_everything_and_busy_versions_stay() {
        let mut listed = ten();
        let only_aliases = RetentionRule {
            keep_aliased_days: Some(1),
            ..Default::default()
        };
        assert!(
            retire(
                &only_aliases,
                &listed,
                &HashSet::new(),
                &HashSet::new(),
                day(10)
            )
            .is_empty()
        );
        listed[9].3 = "processing".to_owned();
        let rule = RetentionRule {
            keep_last: Some(9),
            ..Default::default()
        };
        assert!(retire(&rule, &listed, &HashSet::new(), &HashSet::new(), day(10)).is_empty());
    }
}
