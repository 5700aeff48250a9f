//! The registry as an OCI distribution registry (pull): repository `namespace/model`; tags are version
//! names (a `+`, which OCI tags lack, is written `_`; kiln names never hold `_`), alias names (a version's
//! name wins over an alias of the same name: versions never move), and `VERSION-VARIANT` for each
//! deployable variant of a ready version (`1.0.0-int8`). Each is a ModelPack artifact whose layers are the
//! files as stored; the version's signed deployment manifest is attached to it as a referrer. Manifests,
//! configs and signatures are kept by digest once served (`oci_documents`), so a digest a client pinned
//! answers the same bytes later.

mod deletion;
pub mod image;
pub mod modelpack;
pub mod publish;
mod referrers;
pub mod uploads;

pub use referrers::ReferrerEntry;

use kiln_core::{AliasName, ModelName, NamespaceName, Sha256Digest, variant_layout};

use crate::db::records::{ModelRow, VersionRow};
use crate::db::repos::oci_documents::{self, OciDocument};
use crate::db::repos::{aliases, models, oci_blob_links, oci_tar_layers, variants, versions};
use crate::db::{Database, DbConnection};
use crate::error::Error;
use crate::services::downloads::LocatedFile;
use crate::services::registry::RegistryService;
use crate::services::upload_claims::Claimant;
use crate::storage::BlobStore;
use modelpack::{CONFIG_MEDIA_TYPE, LayerFile, MANIFEST_MEDIA_TYPE, sha256_hex};

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
    /// A file of some version (or variant) of the model, in the blob store.
    File(LocatedFile),
    /// A document kiln wrote (a config, a signature), with its media type.
    Document(OciDocument),
    /// A file of the model as an image's tar layer (read through from the file's blob).
    TarLayer(crate::db::repos::oci_tar_layers::TarLayerRow),
}

/// The tag of a version name.
pub fn tag_of_version(version: &str) -> String {
    version.replace('+', "_")
}

fn version_of_tag(tag: &str) -> String {
    tag.replace('_', "+")
}

#[derive(Clone)]
pub struct OciService {
    db: Database,
    store: BlobStore,
    registry: RegistryService,
    /// Names this server's upload claims.
    claimant: Claimant,
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

/// Whether a version is served under its tag: once ready, or, when a client pushed its manifest, from
/// the push on (the client reads back what it pushed) unless the version failed.
fn served(conn: &mut DbConnection, version: &VersionRow) -> Result<bool, Error> {
    // A version the store check found damaged is not served, by tag or alias (as through the API).
    if versions::damage(conn, &version.id)?.is_some() {
        return Ok(false);
    }
    Ok(match version.status.as_str() {
        "ready" => true,
        "failed" => false,
        _ => oci_documents::version_manifest(conn, &version.id)?.is_some(),
    })
}

/// The version a version or alias tag names, when it is served.
fn named_version(
    conn: &mut DbConnection,
    model: &ModelRow,
    tag: &str,
) -> Result<Option<VersionRow>, Error> {
    if let Some(row) = versions::find(conn, &model.id, &version_of_tag(tag))? {
        return Ok(if served(conn, &row)? { Some(row) } else { None });
    }
    let Ok(alias) = tag.parse::<AliasName>() else {
        return Ok(None);
    };
    match aliases::find(conn, &model.id, alias.as_str())? {
        Some(alias) => {
            let version = versions::by_id(conn, &alias.version_id)?;
            let damaged = versions::damage(conn, &version.id)?.is_some();
            Ok((!damaged).then_some(version))
        }
        None => Ok(None),
    }
}

/// What a tag names: a version (its files), or a deployable variant of one (`VERSION-VARIANT`, split at
/// the first `-` after which a variant of that name exists).
fn tagged(
    conn: &mut DbConnection,
    model: &ModelRow,
    tag: &str,
) -> Result<Option<(VersionRow, Option<String>)>, Error> {
    if let Some(version) = named_version(conn, model, tag)? {
        return Ok(Some((version, None)));
    }
    for (at, _) in tag.match_indices('-') {
        let (name, variant) = (&tag[..at], &tag[at + 1..]);
        let Some(version) = named_version(conn, model, name)? else {
            continue;
        };
        if variants::is_deployable(conn, &version.id, variant)? {
            return Ok(Some((version, Some(variant.to_owned()))));
        }
    }
    Ok(None)
}

/// A document kiln writes for a version, as it would be kept.
fn document(
    model: &ModelRow,
    version: &VersionRow,
    media_type: &str,
    body: &str,
    subject: Option<(&str, &str)>,
) -> OciDocument {
    OciDocument {
        model_id: model.id.clone(),
        digest: sha256_hex(body.as_bytes()),
        media_type: media_type.to_owned(),
        body: body.to_owned(),
        version_id: Some(version.id.clone()),
        subject: subject.map(|(digest, _)| digest.to_owned()),
        artifact_type: subject.map(|(_, kind)| kind.to_owned()),
    }
}

/// Notes a document a response serves: its digest, and, when it is not kept yet, the document in
/// `unkept` (to keep once the read is done: reads run on read-only connections).
fn note(
    conn: &mut DbConnection,
    unkept: &mut Vec<OciDocument>,
    written: OciDocument,
) -> Result<String, Error> {
    let digest = written.digest.clone();
    if oci_documents::find(conn, &written.model_id, &digest)?.is_none() {
        unkept.push(written);
    }
    Ok(digest)
}

/// Keeps a document now (on a writing connection).
fn remember(conn: &mut DbConnection, written: OciDocument) -> Result<String, Error> {
    let digest = written.digest.clone();
    oci_documents::remember(conn, &written)?;
    Ok(digest)
}

/// The files (path, digest, size) of a version, or of one of its variants with the version's
/// `config.json` beside its model, as `kiln pull --variant` lays it out (`kiln_core::variant_layout`).
fn files_of(
    conn: &mut DbConnection,
    version: &VersionRow,
    variant: Option<&str>,
) -> Result<Vec<(String, String, i64)>, Error> {
    let pushed: Vec<(String, String, i64)> = versions::files(conn, &version.id)?
        .into_iter()
        .map(|f| (f.path, f.digest, f.size))
        .collect();
    let Some(variant) = variant else {
        return Ok(pushed);
    };
    let mut files: Vec<(String, String, i64)> = variants::for_version(conn, &version.id)?
        .into_iter()
        .find(|(row, _)| row.name == variant)
        .map(|(_, files)| files)
        .unwrap_or_default()
        .into_iter()
        .map(|f| (f.path, f.digest, f.size))
        .collect();
    let config = variant_layout::config_beside(
        pushed.iter().map(|(path, _, _)| path.as_str()),
        files.iter().map(|(path, _, _)| path.as_str()),
    );
    if let Some((n, at)) = config {
        let (_, digest, size) = &pushed[n];
        files.push((at.to_string(), digest.clone(), *size));
    }
    Ok(files)
}

/// How a manifest is written for a tag: `-VARIANT` after the version, `-image` for the image form.
fn label_of(version: &VersionRow, variant: Option<&str>) -> String {
    match variant {
        None => version.version.clone(),
        Some(v) => format!("{}-{v}", version.version),
    }
}

/// Writes the ModelPack manifest and config of a version or of one of its variants (noting in `unkept`
/// whichever is not kept yet).
fn manifest_of(
    conn: &mut DbConnection,
    unkept: &mut Vec<OciDocument>,
    ns: &NamespaceName,
    model: &ModelRow,
    version: &VersionRow,
    variant: Option<&str>,
) -> Result<ServedManifest, Error> {
    let files = files_of(conn, version, variant)?;
    let layers: Vec<LayerFile> = files
        .iter()
        .map(|(path, digest, size)| LayerFile {
            path,
            digest,
            size: *size,
        })
        .collect();
    let name = format!("{ns}/{}", model.name);
    let label = label_of(version, variant);
    let created = version.created_at.and_utc();
    let config = modelpack::config_json(&name, &label, created, &layers, variant);
    let config_digest = note(
        conn,
        unkept,
        document(model, version, CONFIG_MEDIA_TYPE, &config, None),
    )?;
    let body = modelpack::manifest_json(
        &name,
        &label,
        created,
        &config_digest,
        config.len() as i64,
        &layers,
    );
    let digest = note(
        conn,
        unkept,
        document(model, version, MANIFEST_MEDIA_TYPE, &body, None),
    )?;
    Ok(ServedManifest {
        digest,
        media_type: MANIFEST_MEDIA_TYPE.to_owned(),
        body,
    })
}

/// What a manifest reference resolved to.
enum Resolved {
    Nothing,
    Manifest(Option<ServedManifest>),
    /// The image form of a version (or variant), to be written from its files' tar layers.
    Image(Box<ImageForm>),
}

struct ImageForm {
    model: ModelRow,
    version: VersionRow,
    label: String,
    files: Vec<(String, String, i64)>,
}

/// The manifest a version (or variant) tag answers: the one pushed for the version, else kiln's.
fn served_for(
    conn: &mut DbConnection,
    unkept: &mut Vec<OciDocument>,
    ns: &NamespaceName,
    model: &ModelRow,
    version: &VersionRow,
    variant: Option<String>,
) -> Result<Option<ServedManifest>, Error> {
    if variant.is_none()
        && let Some(pushed) = oci_documents::version_manifest(conn, &version.id)?
    {
        return Ok(
            oci_documents::find(conn, &model.id, &pushed)?.map(|d| ServedManifest {
                digest: pushed,
                media_type: d.media_type,
                body: d.body,
            }),
        );
    }
    Ok(Some(manifest_of(
        conn,
        unkept,
        ns,
        model,
        version,
        variant.as_deref(),
    )?))
}

impl OciService {
    pub fn new(
        db: Database,
        store: BlobStore,
        registry: RegistryService,
        claimant: Claimant,
    ) -> Self {
        Self {
            db,
            store,
            registry,
            claimant,
        }
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
            .read(move |conn| {
                let row = model_row(conn, &ns, &model)?;
                // Four queries whatever the number of versions: versions in progress, ready ones,
                // variants, aliases. They are not one snapshot, and a version goes from processing to ready only: read
                // in progress before ready, so that one moving between the two reads is in one of them
                // (the other order lost it, and a pushed tag vanished from a listing for a moment).
                let in_progress = oci_documents::pushed_versions_in_progress(conn, &row.id)?;
                let ready: std::collections::HashMap<String, String> =
                    versions::ready(conn, &row.id)?
                        .into_iter()
                        .map(|(id, name)| (id, tag_of_version(&name)))
                        .collect();
                let mut tags: Vec<String> = ready.values().cloned().collect();
                tags.extend(in_progress.iter().map(|name| tag_of_version(name)));
                for (version_id, variant) in variants::deployable_of_model(conn, &row.id)? {
                    if let Some(tag) = ready.get(&version_id) {
                        tags.push(format!("{tag}-{variant}"));
                    }
                }
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
        let namespace = ns.clone();
        // Read on a read-only connection; keep afterwards what was served for the first time.
        let (resolved, unkept) = self
            .db
            .read(move |conn| {
                let mut unkept = Vec::new();
                let row = model_row(conn, &namespace, &model)?;
                let resolved = match reference {
                    Reference::Tag(tag) => {
                        if let Some((version, variant)) = tagged(conn, &row, &tag)? {
                            let served =
                                served_for(conn, &mut unkept, &namespace, &row, &version, variant)?;
                            return Ok((Resolved::Manifest(served), unkept));
                        }
                        let image = match tag.strip_suffix(image::IMAGE_SUFFIX) {
                            Some(base) => tagged(conn, &row, base)?,
                            None => None,
                        };
                        match image {
                            Some((version, variant)) => Resolved::Image(Box::new(ImageForm {
                                files: files_of(conn, &version, variant.as_deref())?,
                                label: format!(
                                    "{}{}",
                                    label_of(&version, variant.as_deref()),
                                    image::IMAGE_SUFFIX
                                ),
                                model: row,
                                version,
                            })),
                            None => Resolved::Nothing,
                        }
                    }
                    Reference::Digest(digest) => oci_documents::find(conn, &row.id, &digest)?
                        .filter(|d| publish::is_manifest_type(&d.media_type))
                        .map_or(Resolved::Nothing, |d| {
                            Resolved::Manifest(Some(ServedManifest {
                                digest,
                                media_type: d.media_type,
                                body: d.body,
                            }))
                        }),
                };
                Ok((resolved, unkept))
            })
            .await?;
        if !unkept.is_empty() {
            self.db
                .run(move |conn| {
                    for written in unkept {
                        remember(conn, written)?;
                    }
                    Ok(())
                })
                .await?;
        }
        match resolved {
            Resolved::Nothing => Ok(None),
            Resolved::Manifest(served) => Ok(served),
            Resolved::Image(form) => Ok(Some(self.image_manifest(&ns, *form).await?)),
        }
    }

    /// Writes (and keeps) the image form of a version's (or variant's) files.
    async fn image_manifest(
        &self,
        ns: &NamespaceName,
        form: ImageForm,
    ) -> Result<ServedManifest, Error> {
        let ImageForm {
            model,
            version,
            label,
            files,
        } = form;
        let mut layers = Vec::with_capacity(files.len());
        for (path, digest, size) in files {
            layers.push(self.tar_layer(&path, digest.parse()?, size).await?);
        }
        let name = format!("{ns}/{}", model.name);
        let created = version.created_at.and_utc();
        let config = image::config_json(&name, &label, created, &layers);
        let body = image::manifest_json(&name, &label, created, &config, &layers);
        self.db
            .run(move |conn| {
                remember(
                    conn,
                    document(&model, &version, image::CONFIG_MEDIA_TYPE, &config, None),
                )?;
                let digest = remember(
                    conn,
                    document(&model, &version, MANIFEST_MEDIA_TYPE, &body, None),
                )?;
                Ok(ServedManifest {
                    digest,
                    media_type: MANIFEST_MEDIA_TYPE.to_owned(),
                    body,
                })
            })
            .await
    }

    /// A blob of the repository: a file of one of its versions or variants, a document kiln wrote for
    /// it, or a blob pushed into it; `Ok(None)` when it has none of that digest (another model's blobs
    /// are not this repository's). A repository that a push has only begun (blobs, no manifest yet)
    /// holds its pushed blobs.
    pub async fn blob(
        &self,
        ns: NamespaceName,
        model: ModelName,
        digest: Sha256Digest,
    ) -> Result<Option<Blob>, Error> {
        self.db
            .read(move |conn| {
                let text = digest.to_string();
                let linked = oci_blob_links::size(conn, ns.as_str(), model.as_str(), &text)?;
                let Some((_, row)) = models::find(conn, ns.as_str(), model.as_str())? else {
                    return match linked {
                        Some(size) => Ok(Some(Blob::File(LocatedFile {
                            digest,
                            size,
                            public: false,
                        }))),
                        None => Err(Error::not_found(format!("repository {ns}/{model}"))),
                    };
                };
                let size = match versions::file_size_by_digest(conn, &row.id, &text)? {
                    Some(size) => Some(size),
                    None => variants::file_size_by_digest(conn, &row.id, &text)?,
                };
                if let Some(size) = size.or(linked) {
                    return Ok(Some(Blob::File(LocatedFile {
                        digest,
                        size,
                        public: row.visibility == "public",
                    })));
                }
                if let Some(document) = oci_documents::find(conn, &row.id, &text)? {
                    return Ok(Some(Blob::Document(document)));
                }
                // A tar layer of the image form, over a file this model holds.
                let Some(layer) = oci_tar_layers::find(conn, &text)? else {
                    return Ok(None);
                };
                let held = versions::file_size_by_digest(conn, &row.id, &layer.file_digest)?.or(
                    variants::file_size_by_digest(conn, &row.id, &layer.file_digest)?,
                );
                Ok(held.map(|_| Blob::TarLayer(layer)))
            })
            .await
    }
}
