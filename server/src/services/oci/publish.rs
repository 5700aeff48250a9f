//! Pushing manifests through `/v2/`. A manifest pushed under a tag becomes a kiln version named by the
//! tag (the reverse of the tag rule): its layers are the version's files, named by the layer's
//! `org.cncf.model.filepath` (or the older `org.cnai.model.filepath`, or oras's
//! `org.opencontainers.image.title`) annotation, and otherwise `layers/<hex>` with the layer format's
//! extension; it then goes through the pipeline like a `kiln push`. The manifest's bytes are kept, so the
//! tag answers exactly what was pushed. A manifest pushed by digest (a referrer such as a signature or an
//! SBOM, an index, an untagged image) is kept as a document of the repository. Versions never change:
//! a tag that names a version answers 409 for different bytes.

use std::collections::BTreeMap;

use bytes::Bytes;
use kiln_core::api::{CreateVersionRequest, FileEntry};
use kiln_core::{ErrorCode, FilePath, ModelName, NamespaceName, Sha256Digest, VersionName};
use serde::Deserialize;
use serde_json::json;

use super::modelpack::{FILEPATH_ANNOTATION, MANIFEST_MEDIA_TYPE, TITLE_ANNOTATION, sha256_hex};
use super::uploads::Pusher;
use super::{OciService, Reference, version_of_tag};
use crate::db::repos::audit::Actor;
use crate::db::repos::oci_documents::{self, OciDocument};
use crate::db::repos::{aliases, blobs, versions};
use crate::error::Error;

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// What distribution accepts for one manifest.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// The annotation older ModelPack tools (the `vnd.cnai` names) write a layer's path to.
const CNAI_FILEPATH_ANNOTATION: &str = "org.cnai.model.filepath";

/// Whether a media type is one of the manifests the endpoint keeps.
pub fn is_manifest_type(media_type: &str) -> bool {
    [
        MANIFEST_MEDIA_TYPE,
        INDEX_MEDIA_TYPE,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ]
    .contains(&media_type)
}

fn is_index(media_type: &str) -> bool {
    media_type == INDEX_MEDIA_TYPE || media_type == DOCKER_MANIFEST_LIST
}

#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: String,
    digest: String,
    size: i64,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
}

/// The fields of a pushed manifest kiln reads; the bytes are kept whole, unknown fields included.
#[derive(Debug, Deserialize)]
struct PushedManifest {
    #[serde(rename = "schemaVersion")]
    schema_version: i64,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(rename = "artifactType", default)]
    artifact_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    #[serde(default)]
    subject: Option<Descriptor>,
}

/// A manifest as a client sent it: its bytes and the `Content-Type` they came with.
pub struct ManifestUpload {
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// What a manifest push stored.
pub struct Published {
    pub digest: String,
    /// The `subject` it refers to, for the `OCI-Subject` answer.
    pub subject: Option<String>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::bad_request(ErrorCode::InvalidJson, message)
}

/// The manifest's media type: its `mediaType`, else the request's `Content-Type`; the two must agree.
fn media_type_of(manifest: &PushedManifest, content_type: Option<&str>) -> Result<String, Error> {
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| !c.is_empty());
    let media_type = match (&manifest.media_type, declared) {
        (Some(inner), Some(outer)) if inner != outer => {
            return Err(invalid(format!(
                "the manifest says its mediaType is {inner} but Content-Type says {outer}"
            )));
        }
        (Some(inner), _) => inner.clone(),
        (None, Some(outer)) => outer.to_owned(),
        (None, None) => MANIFEST_MEDIA_TYPE.to_owned(),
    };
    if !is_manifest_type(&media_type) {
        return Err(Error::bad_request(
            ErrorCode::InvalidContentType,
            format!(
                "{media_type} is not a manifest kiln keeps: push an OCI image manifest or index (or a Docker v2 one)"
            ),
        ));
    }
    if manifest.schema_version != 2 {
        return Err(invalid("a manifest has schemaVersion 2"));
    }
    Ok(media_type)
}

/// The version file a layer becomes.
fn file_of(layer: &Descriptor) -> Result<FileEntry, Error> {
    let digest: Sha256Digest = layer.digest.parse().map_err(|_| {
        Error::bad_request(
            ErrorCode::InvalidDigest,
            format!(
                "layer digest {} is not sha256: and 64 hex digits",
                layer.digest
            ),
        )
    })?;
    let named = layer.annotations.as_ref().and_then(|a| {
        [
            FILEPATH_ANNOTATION,
            CNAI_FILEPATH_ANNOTATION,
            TITLE_ANNOTATION,
        ]
        .iter()
        .find_map(|key| a.get(*key))
    });
    let path = match named {
        Some(path) => path.clone(),
        None => {
            let extension = if layer.media_type.ends_with("+gzip") {
                ".tar.gz"
            } else if layer.media_type.ends_with("+zstd") {
                ".tar.zst"
            } else if layer.media_type.ends_with(".tar") {
                ".tar"
            } else {
                ""
            };
            format!("layers/{}{extension}", digest.hex())
        }
    };
    let path: FilePath = path.parse().map_err(|e: kiln_core::CoreError| {
        Error::bad_request(
            ErrorCode::InvalidPath,
            format!("layer {}: {e}", layer.digest),
        )
    })?;
    Ok(FileEntry {
        path,
        digest,
        size: layer.size,
    })
}

/// The version a tag names (a `_` is a `+`).
fn version_named(tag: &str) -> Result<VersionName, Error> {
    version_of_tag(tag).parse().map_err(|e| {
        Error::bad_request(
            ErrorCode::InvalidName,
            format!("tag {tag:?} does not name a kiln version: {e}"),
        )
    })
}

/// The files of the version a manifest's layers become (the same layer listed twice is one file).
fn files_of(manifest: &PushedManifest) -> Result<Vec<FileEntry>, Error> {
    let mut files: Vec<FileEntry> = Vec::new();
    for layer in &manifest.layers {
        let file = file_of(layer)?;
        if !files
            .iter()
            .any(|f| f.path == file.path && f.digest == file.digest)
        {
            files.push(file);
        }
    }
    Ok(files)
}

impl OciService {
    /// Stores a pushed manifest: under a tag, as a version; by digest, as a document of the repository.
    pub async fn put_manifest(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        reference: Reference,
        upload: ManifestUpload,
        pusher: &Pusher,
        actor: Actor,
    ) -> Result<Published, Error> {
        let ManifestUpload { content_type, body } = upload;
        let text = std::str::from_utf8(&body)
            .map_err(|_| invalid("a manifest is JSON in UTF-8"))?
            .to_owned();
        let manifest: PushedManifest = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("the manifest does not parse: {e}")))?;
        let media_type = media_type_of(&manifest, content_type.as_deref())?;
        let digest = sha256_hex(text.as_bytes());
        if let Reference::Digest(named) = &reference
            && *named != digest
        {
            return Err(Error::BadRequest {
                code: ErrorCode::DigestMismatch,
                message: format!("the manifest's bytes hash to {digest}, not {named}"),
                details: Some(json!({ "declared": named, "actual": digest })),
            });
        }
        let referenced: Vec<&Descriptor> = if is_index(&media_type) {
            manifest.manifests.iter().collect()
        } else {
            manifest.config.iter().chain(&manifest.layers).collect()
        };
        self.check_held(ns, model, &referenced, is_index(&media_type))
            .await?;
        if let Reference::Tag(tag) = &reference {
            if is_index(&media_type) {
                return Err(Error::bad_request(
                    ErrorCode::InvalidContentType,
                    "an index cannot be a kiln version: push one manifest under the tag (skopeo copy without --all), or push the index by digest",
                ));
            }
            version_named(tag)?;
            if manifest.layers.is_empty() {
                return Err(Error::bad_request(
                    ErrorCode::NoFiles,
                    "a manifest pushed under a tag becomes a kiln version, which needs at least one layer",
                ));
            }
            // Refused before anything is written (the model included).
            crate::services::registry::check_files(&files_of(&manifest)?)?;
        }
        let model_id = self
            .registry
            .ensure_model(ns.clone(), model.clone(), actor.clone())
            .await?;
        let subject = manifest.subject.as_ref().map(|s| s.digest.clone());
        let artifact_type = manifest
            .artifact_type
            .clone()
            .or_else(|| manifest.config.as_ref().map(|c| c.media_type.clone()));
        let document = OciDocument {
            model_id: model_id.clone(),
            digest: digest.clone(),
            media_type: media_type.clone(),
            body: text,
            version_id: None,
            subject: subject.clone(),
            artifact_type: subject.as_ref().and(artifact_type),
        };
        // A version first, then its bytes: a refused tag leaves nothing behind, and a push retried
        // after a crash in between finds its version and keeps the bytes then.
        if let Reference::Tag(tag) = reference {
            self.publish_version(
                ns, model, &model_id, &tag, &manifest, &digest, pusher, actor,
            )
            .await?;
        }
        self.db
            .run(move |conn| Ok(oci_documents::remember(conn, &document)?))
            .await?;
        Ok(Published { digest, subject })
    }

    /// Every blob (or, for an index, manifest) a manifest names must be in the repository already, with
    /// the size the manifest gives it.
    async fn check_held(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        referenced: &[&Descriptor],
        manifests: bool,
    ) -> Result<(), Error> {
        let mut missing = Vec::new();
        for descriptor in referenced {
            let digest: Sha256Digest = descriptor.digest.parse().map_err(|_| {
                Error::bad_request(
                    ErrorCode::InvalidDigest,
                    format!("{} is not sha256: and 64 hex digits", descriptor.digest),
                )
            })?;
            let size = match self.blob(ns.clone(), model.clone(), digest).await {
                Ok(Some(super::Blob::File(file))) if !manifests => Some(file.size),
                Ok(Some(super::Blob::Document(doc)))
                    if manifests == is_manifest_type(&doc.media_type) =>
                {
                    Some(doc.body.len() as i64)
                }
                Ok(_) | Err(Error::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            match size {
                None => missing.push(descriptor.digest.clone()),
                Some(size) if size != descriptor.size => {
                    return Err(invalid(format!(
                        "the manifest gives {} {} bytes but it has {size}",
                        descriptor.digest, descriptor.size
                    )));
                }
                Some(_) => {}
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::BadRequest {
            code: ErrorCode::MissingBlobs,
            message: format!(
                "the manifest names {} {} this repository does not hold; push them first",
                missing.len(),
                if manifests { "manifest(s)" } else { "blob(s)" }
            ),
            details: Some(json!({ "missing": missing })),
        })
    }

    /// Commits the version a tag names from a manifest's layers, and keeps which manifest it was.
    #[allow(clippy::too_many_arguments)]
    async fn publish_version(
        &self,
        ns: &NamespaceName,
        model: &ModelName,
        model_id: &str,
        tag: &str,
        manifest: &PushedManifest,
        digest: &str,
        pusher: &Pusher,
        actor: Actor,
    ) -> Result<(), Error> {
        let version = version_named(tag)?;
        let files = files_of(manifest)?;
        let (id, name, wanted, user) = (
            model_id.to_owned(),
            version.to_string(),
            digest.to_owned(),
            pusher.user_id.clone(),
        );
        let layer_digests: Vec<String> = files.iter().map(|f| f.digest.to_string()).collect();
        // Where the tag is taken: by an alias (moved only through kiln), or by a version pushed with
        // other bytes (versions never change).
        let existing = self
            .db
            .run(move |conn| {
                if aliases::find(conn, &id, &name)?.is_some() {
                    return Err(Error::conflict(
                        ErrorCode::VersionConflict,
                        format!(
                            "{name} is an alias; aliases move with `kiln alias set`, not by pushing a tag"
                        ),
                    ));
                }
                // The pusher may write this repository, so its blobs are theirs to commit (those usable now:
                // the version's commit refuses the others as missing).
                crate::services::transaction_retried(conn, |conn| {
                    blobs::lock(conn, &layer_digests, blobs::RowLock::Share)?;
                    for live in blobs::find_many(conn, &layer_digests)? {
                        blobs::grant(conn, &live.digest, &user)?;
                    }
                    Ok(())
                })?;
                match versions::find(conn, &id, &name)? {
                    Some(row) => Ok(Some((
                        row.id.clone(),
                        oci_documents::version_manifest(conn, &row.id)?,
                    ))),
                    None => Ok(None),
                }
            })
            .await?;
        match &existing {
            Some((_, Some(pushed))) if *pushed == wanted => return Ok(()),
            Some((_, Some(pushed))) => {
                return Err(Error::conflict(
                    ErrorCode::VersionConflict,
                    format!(
                        "tag {tag} is version {version} of {ns}/{model}, pushed with manifest {pushed}; versions never change, push under a new tag"
                    ),
                ));
            }
            Some((_, None)) => {
                return Err(Error::conflict(
                    ErrorCode::VersionConflict,
                    format!(
                        "tag {tag} is version {version} of {ns}/{model}, which kiln serves as its own ModelPack manifest; versions never change, push under a new tag"
                    ),
                ));
            }
            None => {}
        }
        self.registry
            .create_version(
                ns.clone(),
                model.clone(),
                CreateVersionRequest {
                    version: version.clone(),
                    files,
                    pipeline: None,
                    lineage: None,
                },
                actor,
                pusher.visible.clone(),
            )
            .await?;
        let (id, name) = (model_id.to_owned(), version.to_string());
        self.db
            .run(move |conn| {
                let row = versions::find(conn, &id, &name)?
                    .ok_or_else(|| Error::Internal(format!("version {name} vanished")))?;
                match oci_documents::set_version_manifest(conn, &id, &row.id, &wanted) {
                    Err(e) if crate::db::repos::is_unique_violation(&e) => {
                        match oci_documents::version_manifest(conn, &row.id)? {
                            Some(current) if current == wanted => Ok(()),
                            _ => Err(Error::conflict(
                                ErrorCode::VersionConflict,
                                format!("version {name} was pushed with other bytes meanwhile"),
                            )),
                        }
                    }
                    other => Ok(other?),
                }
            })
            .await
    }
}
