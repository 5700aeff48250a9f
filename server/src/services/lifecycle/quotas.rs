//! Quotas: the most a namespace may hold, checked when a version is committed and, by the CLI, before
//! any byte of a push is uploaded.

use kiln_core::api::{Quota, QuotaCheck, QuotaCheckRequest};
use kiln_core::{ErrorCode, ModelName, NamespaceName};
use serde_json::json;

use super::LifecycleService;
use crate::db::DbConnection;
use crate::db::repos::audit::{self, Actor};
use crate::db::repos::{models, namespaces, quotas, versions};
use crate::db::views::usage;
use crate::error::Error;
use crate::services::transaction_retried;

use crate::services::registry::MAX_FILES_PER_VERSION as MAX_FILES;

/// Refuses a push that would take the namespace past its quota: `files` (digest, size) are the version's,
/// of which those the namespace holds already add nothing. Without a quota, nothing is computed.
pub fn check_quota(
    conn: &mut DbConnection,
    namespace_id: &str,
    namespace: &str,
    files: &[(String, i64)],
) -> Result<(), Error> {
    let (max_bytes, max_versions) = quotas::find(conn, namespace_id)?;
    if max_bytes.is_none() && max_versions.is_none() {
        return Ok(());
    }
    quotas::lock(conn, namespace_id)?;
    let quota = Quota {
        max_bytes,
        max_versions,
    };
    enforce(namespace, quota, measure(conn, namespace_id, files)?).map(|_| ())
}

/// What the namespace holds now, and the bytes `files` would add to it.
struct Measured {
    bytes: i64,
    versions: i64,
    added_bytes: i64,
}

fn measure(
    conn: &mut DbConnection,
    namespace_id: &str,
    files: &[(String, i64)],
) -> Result<Measured, Error> {
    let now = usage::namespace(conn, namespace_id)?;
    let digests: Vec<String> = files.iter().map(|(d, _)| d.clone()).collect();
    let held: std::collections::HashSet<String> =
        usage::held_in_namespace(conn, namespace_id, &digests)?
            .into_iter()
            .collect();
    let added: std::collections::BTreeMap<&str, i64> = files
        .iter()
        .filter(|(digest, _)| !held.contains(digest))
        .map(|(digest, size)| (digest.as_str(), *size))
        .collect();
    Ok(Measured {
        bytes: now.bytes,
        versions: now.versions,
        added_bytes: added
            .values()
            .fold(0i64, |sum, size| sum.saturating_add(*size)),
    })
}

fn enforce(namespace: &str, quota: Quota, now: Measured) -> Result<QuotaCheck, Error> {
    let details = || {
        json!({
            "quota": { "max_bytes": quota.max_bytes, "max_versions": quota.max_versions },
            "usage": { "bytes": now.bytes, "versions": now.versions },
            "added_bytes": now.added_bytes,
        })
    };
    let raise = format!(
        "delete versions (kiln rm) or ask an administrator to raise it (kiln admin quota {namespace} ...)"
    );
    let after = now.bytes.saturating_add(now.added_bytes);
    if let Some(max) = quota.max_bytes
        && after > max
    {
        return Err(Error::QuotaExceeded {
            message: format!(
                "namespace {namespace} holds {} of its {max}-byte quota and this push adds {}; {raise}",
                now.bytes, now.added_bytes
            ),
            details: details(),
        });
    }
    if let Some(max) = quota.max_versions
        && now.versions + 1 > max
    {
        return Err(Error::QuotaExceeded {
            message: format!(
                "namespace {namespace} holds {} of its {max}-version quota; {raise}",
                now.versions
            ),
            details: details(),
        });
    }
    Ok(QuotaCheck {
        quota,
        bytes: Some(after),
        versions: Some(now.versions + 1),
        added_bytes: Some(now.added_bytes),
    })
}

impl LifecycleService {
    /// What `kiln push` asks before uploading: would this version fit the namespace's quota?
    pub async fn check_push(
        &self,
        ns: NamespaceName,
        model: ModelName,
        request: QuotaCheckRequest,
    ) -> Result<QuotaCheck, Error> {
        let files: Vec<(String, i64)> = request
            .files
            .iter()
            .map(|f| (f.digest.to_string(), f.size))
            .collect();
        if let Some(f) = request
            .files
            .iter()
            .find(|f| !(0..=crate::services::uploads::MAX_BLOB_SIZE).contains(&f.size))
        {
            return Err(Error::bad_request(
                ErrorCode::InvalidSize,
                format!(
                    "{}: a size must be between 0 and {} bytes",
                    f.digest,
                    crate::services::uploads::MAX_BLOB_SIZE
                ),
            ));
        }
        if request.files.len() > MAX_FILES {
            return Err(Error::bad_request(
                ErrorCode::TooManyFiles,
                format!("check at most {MAX_FILES} files at once"),
            ));
        }
        self.db
            .read(move |conn| {
                // Every push asks: without a quota (or a namespace yet, which a push may create) nothing
                // is measured, as nothing could refuse it.
                let unmeasured = |quota| QuotaCheck {
                    quota,
                    bytes: None,
                    versions: None,
                    added_bytes: None,
                };
                let Some(namespace) = namespaces::find(conn, ns.as_str())? else {
                    return Ok(unmeasured(Quota::default()));
                };
                let (max_bytes, max_versions) = quotas::find(conn, &namespace.id)?;
                let quota = Quota {
                    max_bytes,
                    max_versions,
                };
                if max_bytes.is_none() && max_versions.is_none() {
                    return Ok(unmeasured(quota));
                }
                if let Some(version) = &request.version
                    && let Some((_, model_row)) = models::find(conn, ns.as_str(), model.as_str())?
                    && versions::find(conn, &model_row.id, version.as_str())?.is_some()
                {
                    // The same version again adds nothing (or is refused as a conflict).
                    let now = usage::namespace(conn, &namespace.id)?;
                    return Ok(QuotaCheck {
                        quota,
                        bytes: Some(now.bytes),
                        versions: Some(now.versions),
                        added_bytes: Some(0),
                    });
                }
                enforce(ns.as_str(), quota, measure(conn, &namespace.id, &files)?)
            })
            .await
    }

    /// Sets a namespace's quota (administrators; audited). Lowering it below the usage refuses new pushes
    /// only: nothing is deleted.
    pub async fn set_quota(
        &self,
        ns: NamespaceName,
        quota: Quota,
        actor: Actor,
    ) -> Result<Quota, Error> {
        if quota.max_bytes.is_some_and(|b| b < 0) || quota.max_versions.is_some_and(|v| v < 0) {
            return Err(Error::bad_request(
                ErrorCode::InvalidQuota,
                "a quota's limits cannot be negative (leave one out for no limit)",
            ));
        }
        self.db
            .run(move |conn| {
                transaction_retried(conn, |conn| {
                    let namespace = namespaces::find(conn, ns.as_str())?
                        .ok_or_else(|| Error::not_found(format!("namespace {ns}")))?;
                    quotas::set(
                        conn,
                        &namespace.id,
                        quota.max_bytes,
                        quota.max_versions,
                        &actor.name,
                    )?;
                    audit::record(
                        conn,
                        &actor,
                        "namespace.quota",
                        ns.as_str(),
                        serde_json::to_value(&quota)?,
                    )?;
                    Ok(quota.clone())
                })
            })
            .await
    }
}
