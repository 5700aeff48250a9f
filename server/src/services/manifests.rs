//! Reading published manifests: the newest, or any earlier one by sequence, of a version or an alias.

use std::sync::Arc;

use kiln_core::api::ManifestResponse;
use kiln_core::{AliasName, ModelName, NamespaceName, VersionName};

use crate::db::records::ManifestRow;
use crate::db::repos::{manifests, models, versions};
use crate::db::{Database, DbConnection};
use crate::error::Error;
use crate::manifest::ManifestSigner;

#[derive(Clone)]
pub struct ManifestService {
    db: Database,
    signer: Arc<ManifestSigner>,
    cache: crate::services::read_cache::ReadCache,
}

/// What a manifest is looked up by.
pub enum Subject {
    Version(VersionName),
    Alias(AliasName),
}

fn response(row: ManifestRow) -> Result<ManifestResponse, Error> {
    Ok(ManifestResponse {
        sequence: row.sequence,
        kid: row.kid,
        payload: serde_json::from_str(&row.payload)?,
        jws: row.jws,
    })
}

fn lookup(
    conn: &mut DbConnection,
    ns: &NamespaceName,
    model: &ModelName,
    subject: &Subject,
    sequence: Option<i64>,
) -> Result<Option<ManifestRow>, Error> {
    match subject {
        Subject::Version(version) => {
            let Some((_, model_row)) = models::find(conn, ns.as_str(), model.as_str())? else {
                return Ok(None);
            };
            let Some(version_row) = versions::find(conn, &model_row.id, version.as_str())? else {
                return Ok(None);
            };
            if let Some(damage) = versions::damage(conn, &version_row.id)? {
                return Err(super::downloads::damaged(ns, model, version, &damage));
            }
            Ok(match sequence {
                None => manifests::latest_for_version(conn, &version_row.id)?,
                Some(n) => manifests::by_sequence(conn, Some(&version_row.id), None, n)?,
            })
        }
        Subject::Alias(alias) => {
            let row = super::aliases::resolve(conn, ns, model, alias)?;
            if let Some(damage) = versions::damage(conn, &row.version_id)? {
                return Err(super::downloads::damaged(ns, model, alias, &damage));
            }
            Ok(match sequence {
                None => manifests::latest_for_alias(conn, &row.id)?,
                Some(n) => manifests::by_sequence(conn, None, Some(&row.id), n)?,
            })
        }
    }
}

impl ManifestService {
    pub fn new(
        db: Database,
        signer: Arc<ManifestSigner>,
        cache: crate::services::read_cache::ReadCache,
    ) -> Self {
        Self { db, signer, cache }
    }

    /// The public keys manifests are signed with, as `/.well-known/jwks.json` serves them.
    pub fn jwks(&self) -> serde_json::Value {
        self.signer.jwks()
    }

    /// How long a published manifest is valid.
    pub fn validity(&self) -> chrono::Duration {
        self.signer.validity()
    }

    /// Re-issues manifests that expire within a third of their validity from `now` (see
    /// [`crate::manifest::refresh`]); returns how many.
    pub async fn refresh_expiring(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, Error> {
        let signer = self.signer.clone();
        self.db
            .run(move |conn| crate::manifest::refresh::refresh_expiring(conn, &signer, now))
            .await
    }

    /// The newest manifest (or the one with `sequence`) of a version or an alias. A version has none
    /// until its pipeline makes it ready.
    pub async fn get(
        &self,
        ns: NamespaceName,
        model: ModelName,
        subject: Subject,
        sequence: Option<i64>,
    ) -> Result<ManifestResponse, Error> {
        let what = match (&subject, sequence) {
            (Subject::Version(v), None) => {
                format!("manifest of {ns}/{model}:{v} (published when its pipeline is ready)")
            }
            (Subject::Version(v), Some(n)) => format!("manifest {n} of {ns}/{model}:{v}"),
            (Subject::Alias(a), None) => format!("manifest of {ns}/{model}@{a}"),
            (Subject::Alias(a), Some(n)) => format!("manifest {n} of {ns}/{model}@{a}"),
        };
        // The newest manifest of a subject is what fleets poll; one by sequence never changes, but is
        // rarely asked for twice.
        let key = (sequence.is_none()).then(|| {
            let subject = match &subject {
                Subject::Version(v) => format!("v:{v}"),
                Subject::Alias(a) => format!("a:{a}"),
            };
            (ns.to_string(), model.to_string(), subject)
        });
        if let Some(found) = key.as_ref().and_then(|k| self.cache.manifest(k)) {
            return Ok(found);
        }
        let start = self.cache.start();
        let row = self
            .db
            .read(move |conn| lookup(conn, &ns, &model, &subject, sequence))
            .await?
            .ok_or_else(|| Error::not_found(what))?;
        let manifest = response(row)?;
        if let Some(key) = key {
            self.cache.keep_manifest(start, key, &manifest);
        }
        Ok(manifest)
    }
}
