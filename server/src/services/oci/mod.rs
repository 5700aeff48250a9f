//! The registry as an OCI distribution registry (pull): repository `namespace/model`; tags are version
//! names (a `+`, which OCI tags lack, is written `_`; kiln names never hold `_`) and alias names (a
//! version's name wins over an alias of the same name: versions never move); each ready version is a
//! ModelPack artifact whose layers are its files as stored. Manifests and configs are kept by digest once
//! served (`oci_documents`), so a digest a client pinned answers the same bytes later.

pub mod modelpack;

use kiln_core::{AliasName, ModelName, NamespaceName, Sha256Digest};

use crate::db::records::{ModelRow, VersionRow};
use crate::db::repos::oci_documents::{self, OciDocument};
use crate::db::repos::{aliases, models, versions};
use crate::db::{Database, DbConnection};
use crate::error::Error;
use crate::services::downloads::LocatedFile;
use modelpack::{CONFIG_MEDIA_TYPE, LayerFile, MANIFEST_MEDIA_TYPE};

/// A manifest reference: a tag or a digest.
pub enum Reference {
    Tag(String),
    Digest(String),
}

impl Reference {
    pub fn parse(text: &str) -> Self {
        if text.starts_with("sha256:") {
            Reference::Digest(text.to_owned())
        } else {
            Reference::Tag(text.to_owned())
        }
    }
}

/// A manifest as served: its digest, media type and exact bytes.
pub struct ServedManifest {
    pub digest: String,
    pub media_type: String,
    pub body: String,
}

/// Where a blob's bytes are.
pub enum Blob {
    /// A file of some version of the model, in the blob store.
    File(LocatedFile),
    /// A document kiln wrote (a config), with its media type.
    Document(OciDocument),
}

/// The version a tag names, as OCI writes version names.
pub fn tag_of_version(version: &str) -> String {
    version.replace('+', "_")
}

fn version_of_tag(tag: &str) -> String {
    tag.replace('_', "+")
}

#[derive(Clone)]
pub struct OciService {
    db: Database,
}

fn model_row(
    conn: &mut DbConnection,
    ns: &NamespaceName,
    model: &ModelName,
) -> Result<ModelRow, Error> {
    models::find(conn, ns.as_str(), model.as_str())?
        .map(|(_, row)| row)
        .ok_or_else(|| Error::not_found(format!("repository {ns}/{model}")))
}

/// The ready version a tag names: a version of that name, else the version an alias of that name
/// points at.
fn tagged_version(
    conn: &mut DbConnection,
    model: &ModelRow,
    tag: &str,
) -> Result<Option<VersionRow>, Error> {
    if let Some(row) = versions::find(conn, &model.id, &version_of_tag(tag))? {
        return Ok(Some(row).filter(|r| r.status == "ready"));
    }
    let Ok(alias) = tag.parse::<AliasName>() else {
        return Ok(None);
    };
    match aliases::find(conn, &model.id, alias.as_str())? {
        Some(alias) => Ok(Some(versions::by_id(conn, &alias.version_id)?)),
        None => Ok(None),
    }
}

/// Writes (and keeps) the ModelPack manifest and config of a version.
fn manifest_of(
    conn: &mut DbConnection,
    ns: &NamespaceName,
    model: &ModelRow,
    version: &VersionRow,
) -> Result<ServedManifest, Error> {
    let files = versions::files(conn, &version.id)?;
    let layers: Vec<LayerFile> = files
        .iter()
        .map(|f| LayerFile {
            path: &f.path,
            digest: &f.digest,
            size: f.size,
        })
        .collect();
    let name = format!("{ns}/{}", model.name);
    let created = version.created_at.and_utc();
    let config = modelpack::config_json(&name, &version.version, created, &layers);
    let config_digest = Sha256Digest::of(config.as_bytes()).to_string();
    let body = modelpack::manifest_json(
        &name,
        &version.version,
        created,
        &config_digest,
        config.len() as i64,
        &layers,
    );
    let digest = Sha256Digest::of(body.as_bytes()).to_string();
    oci_documents::remember(conn, &model.id, &config_digest, CONFIG_MEDIA_TYPE, &config)?;
    oci_documents::remember(conn, &model.id, &digest, MANIFEST_MEDIA_TYPE, &body)?;
    Ok(ServedManifest {
        digest,
        media_type: MANIFEST_MEDIA_TYPE.to_owned(),
        body,
    })
}

impl OciService {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// The repository's tags in lexical order: after `last` when given, at most `n` when given.
    pub async fn tags(
        &self,
        ns: NamespaceName,
        model: ModelName,
        n: Option<usize>,
        last: Option<String>,
    ) -> Result<Vec<String>, Error> {
        self.db
            .run(move |conn| {
                let row = model_row(conn, &ns, &model)?;
                let mut tags: Vec<String> = versions::ready_names(conn, &row.id)?
                    .iter()
                    .map(|v| tag_of_version(v))
                    .collect();
                tags.extend(
                    aliases::list(conn, &row.id, None, i64::MAX)?
                        .into_iter()
                        .map(|(alias, _)| alias.name),
                );
                tags.sort();
                tags.dedup();
                Ok(tags
                    .into_iter()
                    .filter(|t| last.as_ref().is_none_or(|l| t > l))
                    .take(n.unwrap_or(usize::MAX))
                    .collect())
            })
            .await
    }

    /// The manifest a tag or digest names; `Ok(None)` when the repository has none such.
    pub async fn manifest(
        &self,
        ns: NamespaceName,
        model: ModelName,
        reference: Reference,
    ) -> Result<Option<ServedManifest>, Error> {
        self.db
            .run(move |conn| {
                let row = model_row(conn, &ns, &model)?;
                match reference {
                    Reference::Tag(tag) => match tagged_version(conn, &row, &tag)? {
                        Some(version) => Ok(Some(manifest_of(conn, &ns, &row, &version)?)),
                        None => Ok(None),
                    },
                    Reference::Digest(digest) => Ok(oci_documents::find(conn, &row.id, &digest)?
                        .filter(|d| d.media_type == MANIFEST_MEDIA_TYPE)
                        .map(|d| ServedManifest {
                            digest,
                            media_type: d.media_type,
                            body: d.body,
                        })),
                }
            })
            .await
    }

    /// A blob of the repository: a file of one of its versions, or a config kiln wrote for it; `Ok(None)`
    /// when it has none of that digest (another model's blobs are not this repository's).
    pub async fn blob(
        &self,
        ns: NamespaceName,
        model: ModelName,
        digest: Sha256Digest,
    ) -> Result<Option<Blob>, Error> {
        self.db
            .run(move |conn| {
                let row = model_row(conn, &ns, &model)?;
                let text = digest.to_string();
                if let Some(size) = versions::file_size_by_digest(conn, &row.id, &text)? {
                    return Ok(Some(Blob::File(LocatedFile {
                        digest,
                        size,
                        public: row.visibility == "public",
                    })));
                }
                Ok(oci_documents::find(conn, &row.id, &text)?.map(Blob::Document))
            })
            .await
    }
}
