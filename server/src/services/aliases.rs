//! Aliases: moving one (each move signs a new manifest for it with the next sequence, in the same
//! transaction), listing them, and their history.

use kiln_core::ErrorCode;
use std::sync::Arc;

use diesel::Connection;
use kiln_core::deployment::{AliasEvent, AliasView};
use kiln_core::{AliasName, ModelName, NamespaceName, VersionName};
use serde_json::json;

use crate::db::records::{AliasEventRow, AliasRow};
use crate::db::repos::audit::{self, Actor};
use crate::db::repos::{aliases, is_unique_violation, models, versions};
use crate::db::{Database, DbConnection, new_id};
use crate::error::Error;
use crate::manifest::ManifestSigner;
use crate::services::paging::{PageRequest, Paged, parse_number_key};

#[derive(Clone)]
pub struct AliasService {
    db: Database,
    signer: Arc<ManifestSigner>,
    cache: crate::services::read_cache::ReadCache,
}

/// The id of `ns/model`, or a 404 naming it.
pub(crate) fn model_id(
    conn: &mut DbConnection,
    ns: &NamespaceName,
    model: &ModelName,
) -> Result<String, Error> {
    Ok(models::find(conn, ns.as_str(), model.as_str())?
        .ok_or_else(|| Error::not_found(format!("model {ns}/{model}")))?
        .1
        .id)
}

/// The alias row of `ns/model@alias`, or a 404 that says how to create it.
pub fn resolve(
    conn: &mut DbConnection,
    ns: &NamespaceName,
    model: &ModelName,
    alias: &AliasName,
) -> Result<AliasRow, Error> {
    let model_id = model_id(conn, ns, model)?;
    aliases::find(conn, &model_id, alias.as_str())?.ok_or_else(|| {
        Error::not_found(format!(
            "alias {ns}/{model}@{alias} (create it with: kiln alias set {ns}/{model} {alias} VERSION)"
        ))
    })
}

fn view(row: AliasRow, version: String) -> Result<AliasView, Error> {
    Ok(AliasView {
        name: row.name.parse()?,
        version: version.parse()?,
        sequence: row.sequence,
        updated_at: row.updated_at.and_utc(),
        updated_by: row.updated_by,
    })
}

impl AliasService {
    pub fn new(
        db: Database,
        signer: Arc<ManifestSigner>,
        cache: crate::services::read_cache::ReadCache,
    ) -> Self {
        Self { db, signer, cache }
    }

    /// Points `alias` at `version` (creating it), records who moved it from where, and publishes the
    /// alias's manifest with the next sequence. Only a ready version can be named: its variants are proven
    /// and its own manifest is published.
    pub async fn set(
        &self,
        ns: NamespaceName,
        model: ModelName,
        alias: AliasName,
        version: VersionName,
        actor: Actor,
    ) -> Result<AliasView, Error> {
        let signer = self.signer.clone();
        self.db
            .run(move |conn| {
                conn.transaction(|conn| {
                    let model_id = model_id(conn, &ns, &model)?;
                    let target =
                        versions::find(conn, &model_id, version.as_str())?.ok_or_else(|| {
                            Error::not_found(format!("version {ns}/{model}:{version}"))
                        })?;
                    if target.status != "ready" {
                        return Err(not_ready(&ns, &model, &alias, &version, &target.status));
                    }
                    crate::db::repos::versions::lock(conn, &target.id)?;
                    let now = crate::db::now();
                    let existing = aliases::find(conn, &model_id, alias.as_str())?;
                    let (row, from) = match existing {
                        Some(row) if row.version_id == target.id => {
                            // Already there: nothing moves, no new manifest.
                            return view(row, version.to_string());
                        }
                        Some(mut row) => {
                            let from = version_name(conn, &row.version_id)?;
                            // A re-issue (benchmarks in, expiry near) takes a sequence without moving the
                            // alias: read it again and retry; a move by someone else is a conflict.
                            let mut tries = 0;
                            while !aliases::advance(conn, &row, &target.id, &actor.name, now)? {
                                match aliases::find(conn, &model_id, alias.as_str())? {
                                    Some(again)
                                        if again.version_id == row.version_id && tries < 3 =>
                                    {
                                        row = again;
                                        tries += 1;
                                    }
                                    _ => return Err(moved_concurrently(&ns, &model, &alias)),
                                }
                            }
                            let moved = AliasRow {
                                version_id: target.id.clone(),
                                sequence: row.sequence + 1,
                                updated_at: now,
                                updated_by: actor.name.clone(),
                                ..row
                            };
                            (moved, Some(from))
                        }
                        None => {
                            let row = AliasRow {
                                id: new_id(),
                                model_id: model_id.clone(),
                                name: alias.to_string(),
                                version_id: target.id.clone(),
                                sequence: 1,
                                updated_at: now,
                                updated_by: actor.name.clone(),
                            };
                            aliases::insert(conn, &row).map_err(|e| {
                                if is_unique_violation(&e) {
                                    moved_concurrently(&ns, &model, &alias)
                                } else {
                                    e.into()
                                }
                            })?;
                            (row, None)
                        }
                    };
                    aliases::record_event(
                        conn,
                        &AliasEventRow {
                            id: new_id(),
                            alias_id: row.id.clone(),
                            from_version: from.clone(),
                            to_version: version.to_string(),
                            sequence: row.sequence,
                            actor: actor.name.clone(),
                            at: now,
                        },
                    )?;
                    crate::db::repos::webhooks::record_version_event(
                        conn,
                        kiln_core::api::WebhookEventType::AliasMoved.as_str(),
                        &row.version_id,
                        json!({ "alias": alias.as_str(), "from_version": from, "to_version": version.as_str(), "sequence": row.sequence, "by": actor.name }),
                    )?;
                    crate::manifest::publish_alias(conn, &signer, &row)?;
                    audit::record(
                        conn,
                        &actor,
                        "alias.set",
                        &format!("{ns}/{model}@{alias}"),
                        json!({ "from": from, "to": version.as_str(), "sequence": row.sequence }),
                    )?;
                    view(row, version.to_string())
                })
            })
            .await
            .inspect(|_| self.cache.forget_models())
    }

    /// One alias as it stands: the version it names, its manifest sequence, who moved it last.
    pub async fn get(
        &self,
        ns: NamespaceName,
        model: ModelName,
        alias: AliasName,
    ) -> Result<AliasView, Error> {
        self.db
            .run(move |conn| {
                let row = resolve(conn, &ns, &model, &alias)?;
                let version = version_name(conn, &row.version_id)?;
                view(row, version)
            })
            .await
    }

    /// A model's aliases by name, a page at a time.
    pub async fn list(
        &self,
        ns: NamespaceName,
        model: ModelName,
        page: PageRequest,
    ) -> Result<Paged<AliasView>, Error> {
        let after = page.after::<1>()?.map(|[name]| name);
        let limit = page.limit;
        let rows = self
            .db
            .run(move |conn| {
                let model_id = model_id(conn, &ns, &model)?;
                Ok(aliases::list(conn, &model_id, after.as_deref(), limit)?)
            })
            .await?;
        Paged::new(rows, &page, |(row, _)| vec![row.name.clone()])
            .try_map(|(row, version)| view(row, version))
    }

    /// The moves of an alias, newest first, a page at a time.
    pub async fn history(
        &self,
        ns: NamespaceName,
        model: ModelName,
        alias: AliasName,
        page: PageRequest,
    ) -> Result<Paged<AliasEvent>, Error> {
        let before = page
            .after::<1>()?
            .map(|[sequence]| parse_number_key(&sequence))
            .transpose()?;
        let limit = page.limit;
        let name = alias.clone();
        let events = self
            .db
            .run(move |conn| {
                let row = resolve(conn, &ns, &model, &name)?;
                Ok(aliases::history(conn, &row.id, before, limit)?)
            })
            .await?;
        Paged::new(events, &page, |e| vec![e.sequence.to_string()]).try_map(|e| {
            Ok(AliasEvent {
                alias: alias.clone(),
                from: e.from_version.map(|v| v.parse()).transpose()?,
                to: e.to_version.parse()?,
                sequence: e.sequence,
                actor: e.actor,
                at: e.at.and_utc(),
            })
        })
    }
}

fn version_name(conn: &mut DbConnection, version_id: &str) -> Result<String, Error> {
    Ok(versions::by_id(conn, version_id)?.version)
}

fn not_ready(
    ns: &NamespaceName,
    model: &ModelName,
    alias: &AliasName,
    version: &VersionName,
    status: &str,
) -> Error {
    let why = match status {
        "failed" => "its safety scan refused it, so kiln serves none of it".to_owned(),
        other => {
            format!("its files are still being scanned ({other}); set the alias when it is ready")
        }
    };
    Error::conflict(
        ErrorCode::VersionNotReady,
        format!(
            "cannot point {ns}/{model}@{alias} at {version}: {why} (kiln show {ns}/{model}:{version})"
        ),
    )
}

fn moved_concurrently(ns: &NamespaceName, model: &ModelName, alias: &AliasName) -> Error {
    Error::conflict(
        ErrorCode::AliasMoved,
        format!(
            "{ns}/{model}@{alias} was moved by someone else at the same moment; look at kiln alias ls {ns}/{model} and retry"
        ),
    )
}
