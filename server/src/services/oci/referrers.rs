//! The referrers API: the manifests whose `subject` is a given manifest. kiln attaches each version's
//! newest signed deployment manifest to every manifest served (or pushed) for it, the first time its
//! referrers are asked for; clients' own referrers (signatures, SBOMs) are kept as they were pushed.

use kiln_core::{ModelName, NamespaceName};

use super::modelpack::{
    self, EMPTY_CONFIG, EMPTY_MEDIA_TYPE, JWS_MEDIA_TYPE, MANIFEST_MEDIA_TYPE,
    SIGNATURE_ARTIFACT_TYPE,
};
use super::{OciService, document, model_row, publish, remember};
use crate::db::DbConnection;
use crate::db::records::{ModelRow, VersionRow};
use crate::db::repos::oci_documents::{self, OciDocument};
use crate::db::repos::{manifests, versions};
use crate::error::Error;

/// One entry of a referrers listing.
pub struct ReferrerEntry {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
    pub artifact_type: String,
    pub annotations: serde_json::Value,
}

/// Attaches the version's newest signed deployment manifest to a served manifest of it (once per JWS).
fn attach_signature(
    conn: &mut DbConnection,
    model: &ModelRow,
    version: &VersionRow,
    subject: &OciDocument,
) -> Result<(), Error> {
    let Some(signed) = manifests::latest_for_version(conn, &version.id)? else {
        return Ok(());
    };
    let jws_digest = remember(
        conn,
        document(model, version, JWS_MEDIA_TYPE, &signed.jws, None),
    )?;
    remember(
        conn,
        document(model, version, EMPTY_MEDIA_TYPE, EMPTY_CONFIG, None),
    )?;
    let payload: kiln_core::deployment::DeploymentManifest = serde_json::from_str(&signed.payload)?;
    let body = modelpack::signature_json(
        &subject.digest,
        subject.body.len() as i64,
        &jws_digest,
        signed.jws.len() as i64,
        &payload.subject(),
        signed.sequence,
        &signed.kid,
    );
    remember(
        conn,
        document(
            model,
            version,
            MANIFEST_MEDIA_TYPE,
            &body,
            Some((&subject.digest, SIGNATURE_ARTIFACT_TYPE)),
        ),
    )?;
    Ok(())
}

impl OciService {
    /// The manifests that refer to `subject` (the signed deployment manifest of its version, and what
    /// clients pushed with it as their subject, which need not exist), of `artifact_type` when given.
    pub async fn referrers(
        &self,
        ns: NamespaceName,
        model: ModelName,
        subject: String,
        artifact_type: Option<String>,
    ) -> Result<Vec<ReferrerEntry>, Error> {
        self.db
            .run(move |conn| {
                let row = model_row(conn, &ns, &model)?;
                // A version's manifest (kiln's, or the one pushed for it) has the version's signed
                // deployment manifest among its referrers.
                if let Some(document) = oci_documents::find(conn, &row.id, &subject)?
                    .filter(|d| publish::is_manifest_type(&d.media_type) && d.subject.is_none())
                {
                    let mut signed = oci_documents::versions_pushed_as(conn, &row.id, &subject)?;
                    signed.extend(document.version_id.clone());
                    for version_id in signed {
                        let version = versions::by_id(conn, &version_id)?;
                        attach_signature(conn, &row, &version, &document)?;
                    }
                }
                let entries = oci_documents::referrers(conn, &row.id, &subject)?
                    .into_iter()
                    .filter(|d| {
                        artifact_type
                            .as_ref()
                            .is_none_or(|kind| d.artifact_type.as_ref() == Some(kind))
                    })
                    .map(|d| {
                        let annotations = serde_json::from_str::<serde_json::Value>(&d.body)?
                            .get("annotations")
                            .cloned()
                            .unwrap_or_default();
                        Ok(ReferrerEntry {
                            media_type: d.media_type.clone(),
                            size: d.body.len(),
                            artifact_type: d.artifact_type.unwrap_or_default(),
                            digest: d.digest,
                            annotations,
                        })
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                Ok(entries)
            })
            .await
    }
}
