//! Deleting what was pushed: a version, or a model with all its versions. Both are refused while an alias
//! names what would go (a deployment may be following it), both are audited with what went, and both leave
//! the blobs: other versions may hold the same bytes, and reclaiming unreferenced ones is garbage
//! collection's job. Blobs pushed through /v2/ stay linked to their repository (OCI clients delete them
//! with `DELETE /v2/.../blobs/DIGEST`) until the model goes.

use kiln_core::{ErrorCode, ModelName, NamespaceName, VersionName};
use serde_json::json;

use super::{RegistryService, find_model, find_version};
use crate::db::repos::audit::{self, Actor};
use crate::db::repos::{models, oci_blob_links, versions, webhooks};
use crate::error::Error;
use kiln_core::api::WebhookEventType;

impl RegistryService {
    pub async fn delete_version(
        &self,
        ns: NamespaceName,
        model: ModelName,
        version: VersionName,
        actor: Actor,
    ) -> Result<(), Error> {
        self.db
            .run(move |conn| {
                crate::services::transaction_retried(conn, |conn| {
                    let (row, files) = find_version(conn, &ns, &model, &version)?;
                    let aliased = crate::db::repos::aliases::pointing_at(conn, &row.id)?;
                    if let Some(alias) = aliased.first() {
                        return Err(Error::conflict(
                            ErrorCode::VersionAliased,
                            format!(
                                "{ns}/{model}@{alias} points at {version}; move it first (kiln alias set {ns}/{model} {alias} VERSION)"
                            ),
                        ));
                    }
                    webhooks::record_version_event(
                        conn,
                        WebhookEventType::VersionDeleted.as_str(),
                        &row.id,
                        json!({ "by": actor.name }),
                    )?;
                    versions::delete(conn, &row.id)?;
                    let (_, model_row) = find_model(conn, &ns, &model)?;
                    models::touch(conn, &model_row.id)?;
                    audit::record(
                        conn,
                        &actor,
                        "version.delete",
                        &format!("{ns}/{model}:{version}"),
                        json!({ "files": files.len(), "bytes": files.iter().map(|f| f.size).sum::<i64>() }),
                    )
                    .map_err(Error::from)
                })
            })
            .await
            .inspect(|_| self.cache.forget_models())
    }

    /// Deletes a model with every version. Refused while an alias names one of them (a deployment may
    /// follow it) unless `force`, which deletes the aliases too. Audited with what went.
    pub async fn delete_model(
        &self,
        ns: NamespaceName,
        model: ModelName,
        force: bool,
        actor: Actor,
    ) -> Result<(), Error> {
        self.db
            .run(move |conn| {
                crate::services::transaction_retried(conn, |conn| {
                    let (_, model_row) = find_model(conn, &ns, &model)?;
                    let aliases = crate::db::repos::aliases::list(conn, &model_row.id, None, i64::MAX)?;
                    if !force && let Some((alias, version)) = aliases.first() {
                        return Err(Error::conflict(
                            ErrorCode::ModelAliased,
                            format!(
                                "{ns}/{model}@{} points at {version}, and a deployment may follow it; delete with force (kiln rm {ns}/{model} --force) to delete the aliases too",
                                alias.name
                            ),
                        ));
                    }
                    let versions = versions::names(conn, &model_row.id)?;
                    for version in &versions {
                        if let Some(row) = versions::find(conn, &model_row.id, version)? {
                            webhooks::record_version_event(
                                conn,
                                WebhookEventType::VersionDeleted.as_str(),
                                &row.id,
                                json!({ "by": actor.name, "model_deleted": true }),
                            )?;
                        }
                    }
                    models::delete(conn, &model_row.id)?;
                    // Blobs pushed into the repository through /v2/ go with it.
                    oci_blob_links::unlink_all(conn, ns.as_str(), model.as_str())?;
                    audit::record(
                        conn,
                        &actor,
                        "model.delete",
                        &format!("{ns}/{model}"),
                        json!({
                            "versions": versions,
                            "aliases": aliases.iter().map(|(a, v)| json!({ "alias": a.name, "version": v })).collect::<Vec<_>>(),
                            "force": force,
                        }),
                    )
                    .map_err(Error::from)
                })
            })
            .await
            .inspect(|_| self.cache.forget_models())
    }
}
