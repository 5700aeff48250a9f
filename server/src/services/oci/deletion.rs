//! Deleting through `/v2/` what kiln lets a writer delete: a version, by its tag or by the digest of
//! the manifest it was pushed with (refused while an alias names it, as in the REST API); a manifest
//! pushed by digest; a blob the repository holds only through a push. What only kiln may remove (an
//! alias's tag, a variant's tag, a file a version holds, a manifest kiln wrote) is refused as
//! unsupported, naming the way that works.

use kiln_core::{ErrorCode, ModelName, NamespaceName, Sha256Digest, VersionName};

use super::{OciService, Reference, model_row, tagged};
use crate::db::repos::audit::Actor;
use crate::db::repos::{oci_blob_links, oci_documents, variants, versions};
use crate::error::Error;

fn unsupported(message: impl Into<String>) -> Error {
    Error::bad_request(ErrorCode::Unsupported, message)
}

impl OciService {
    /// Deletes what a manifest reference names; false when the repository has no such manifest.
    pub async fn delete_manifest(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        reference: Reference,
        actor: Actor,
    ) -> Result<bool, Error> {
        let (namespace, name) = (ns.clone(), model.clone());
        let document_digest = match &reference {
            Reference::Digest(digest) => Some(digest.clone()),
            Reference::Tag(_) => None,
        };
        let doomed: Option<Vec<String>> = self
            .db
            .run(move |conn| {
                let row = model_row(conn, &namespace, &name)?;
                match reference {
                    Reference::Tag(tag) => match tagged(conn, &row, &tag)? {
                        None => Ok(None),
                        Some((_, Some(variant))) => Err(unsupported(format!(
                            "{tag} is the {variant} variant, which the pipeline made; delete its version instead"
                        ))),
                        Some((version, None)) if version.version.replace('+', "_") != tag => {
                            Err(unsupported(format!(
                                "{tag} is an alias of {namespace}/{name}; move or delete it with kiln (kiln alias set)"
                            )))
                        }
                        Some((version, None)) => Ok(Some(vec![version.version])),
                    },
                    Reference::Digest(digest) => {
                        let Some(document) = oci_documents::find(conn, &row.id, &digest)? else {
                            return Ok(None);
                        };
                        if let Some(version_id) = document.version_id {
                            let version = versions::by_id(conn, &version_id)?;
                            return Err(unsupported(format!(
                                "kiln wrote {digest} for version {} of {namespace}/{name}; delete the version by its tag",
                                version.version
                            )));
                        }
                        let mut names = Vec::new();
                        for id in oci_documents::versions_pushed_as(conn, &row.id, &digest)? {
                            names.push(versions::by_id(conn, &id)?.version);
                        }
                        Ok(Some(names))
                    }
                }
            })
            .await?;
        let Some(doomed) = doomed else {
            return Ok(false);
        };
        for version in doomed {
            let version: VersionName = version.parse()?;
            self.registry
                .delete_version(ns.clone(), model.clone(), version, actor.clone())
                .await?;
        }
        if let Some(digest) = document_digest {
            let (namespace, name) = (ns.clone(), model.clone());
            self.db
                .run(move |conn| {
                    let row = model_row(conn, &namespace, &name)?;
                    Ok(oci_documents::delete(conn, &row.id, &digest)?)
                })
                .await?;
        }
        Ok(true)
    }

    /// Unlinks a blob the repository holds only through a push; false when it holds no such blob.
    pub async fn delete_blob(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        digest: &Sha256Digest,
    ) -> Result<bool, Error> {
        let (namespace, name, text) = (ns.clone(), model.clone(), digest.to_string());
        self.db
            .run(move |conn| {
                if let Some((_, row)) =
                    crate::db::repos::models::find(conn, namespace.as_str(), name.as_str())?
                {
                    let held = versions::file_size_by_digest(conn, &row.id, &text)?.is_some()
                        || variants::file_size_by_digest(conn, &row.id, &text)?.is_some();
                    if held {
                        return Err(unsupported(format!(
                            "{text} is a file of a version of {namespace}/{name}; delete the version, and garbage collection frees the bytes"
                        )));
                    }
                    if oci_documents::find(conn, &row.id, &text)?.is_some_and(|d| d.version_id.is_some()) {
                        return Err(unsupported(format!(
                            "kiln wrote {text} for a version of {namespace}/{name}; it goes with the version"
                        )));
                    }
                }
                Ok(oci_blob_links::unlink(
                    conn,
                    namespace.as_str(),
                    name.as_str(),
                    &text,
                )?)
            })
            .await
    }
}
