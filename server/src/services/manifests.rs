//! Reading published manifests.

use kiln_core::api::ManifestResponse;
use kiln_core::{ModelName, NamespaceName, VersionName};

use crate::db::Database;
use crate::db::repos::{manifests, models, versions};
use crate::error::Error;

#[derive(Clone)]
pub struct ManifestService {
    db: Database,
}

impl ManifestService {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The newest manifest of a version; 404 while its pipeline has not made it ready.
    pub async fn for_version(
        &self,
        ns: NamespaceName,
        model: ModelName,
        version: VersionName,
    ) -> Result<ManifestResponse, Error> {
        let what =
            format!("manifest of {ns}/{model}:{version} (published when its pipeline is ready)");
        let row = self
            .db
            .run(move |conn| {
                let Some((_, model_row)) = models::find(conn, ns.as_str(), model.as_str())? else {
                    return Ok(None);
                };
                let Some(version_row) = versions::find(conn, &model_row.id, version.as_str())?
                else {
                    return Ok(None);
                };
                Ok(manifests::latest_for_version(conn, &version_row.id)?)
            })
            .await?
            .ok_or_else(|| Error::not_found(what))?;
        Ok(ManifestResponse {
            sequence: row.sequence,
            kid: row.kid,
            payload: serde_json::from_str(&row.payload)
                .map_err(|e| Error::Internal(e.to_string()))?,
            jws: row.jws,
        })
    }
}
