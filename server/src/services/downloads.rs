//! Serving a version's files, whole or by byte range.

use std::ops::Range;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use kiln_core::{FilePath, ModelName, NamespaceName, Sha256Digest, VersionName};

use crate::db::Database;
use crate::db::repos::{models, variants, versions};
use crate::error::Error;
use crate::storage::BlobStore;

/// Which files of a version a download reads.
pub enum FileSource {
    /// The files the user pushed.
    Version,
    /// The files of a variant the pipeline produced.
    Variant(String),
}

/// A file located in a version: what a response says of it before (or instead of) its bytes.
pub struct LocatedFile {
    pub digest: Sha256Digest,
    pub size: i64,
    /// Whether anyone may read it (the model is public): caches may then keep it for everyone.
    pub public: bool,
}

#[derive(Clone)]
pub struct DownloadService {
    db: Database,
    store: BlobStore,
}

/// The answer for a version the store check found damaged: it is not served until repaired.
pub fn damaged(
    ns: &NamespaceName,
    model: &ModelName,
    version: &impl std::fmt::Display,
    damage: &str,
) -> Error {
    Error::conflict(
        kiln_core::ErrorCode::VersionDamaged,
        format!(
            "{ns}/{model}:{version} is damaged ({damage}) and not served; push the same files again, then an administrator runs `kiln admin fsck --repair`"
        ),
    )
}

impl DownloadService {
    pub fn new(db: Database, store: BlobStore) -> Self {
        Self { db, store }
    }

    /// Finds the file: its digest, size and whether its model is public.
    pub async fn locate(
        &self,
        ns: NamespaceName,
        model: ModelName,
        version: VersionName,
        source: FileSource,
        path: FilePath,
    ) -> Result<LocatedFile, Error> {
        let what = match &source {
            FileSource::Version => format!("file {path} in {ns}/{model}:{version}"),
            FileSource::Variant(v) => {
                format!("file {path} of variant {v} of {ns}/{model}:{version}")
            }
        };
        let (digest, size, public) = self
            .db
            .run(move |conn| {
                let Some((_, model_row)) = models::find(conn, ns.as_str(), model.as_str())? else {
                    return Ok(None);
                };
                let Some(version_row) = versions::find(conn, &model_row.id, version.as_str())?
                else {
                    return Ok(None);
                };
                if let Some(damage) = versions::damage(conn, &version_row.id)? {
                    return Err(damaged(&ns, &model, &version, &damage));
                }
                let public = model_row.visibility == "public";
                Ok(match source {
                    FileSource::Version => {
                        versions::find_file(conn, &version_row.id, path.as_str())?
                            .map(|f| (f.digest, f.size, public))
                    }
                    FileSource::Variant(variant) => {
                        variants::find_file(conn, &version_row.id, &variant, path.as_str())?
                            .map(|f| (f.digest, f.size, public))
                    }
                })
            })
            .await?
            .ok_or_else(|| Error::not_found(what))?;
        Ok(LocatedFile {
            digest: digest.parse()?,
            size,
            public,
        })
    }

    /// The file's bytes, or the range of them.
    pub async fn read(
        &self,
        file: &LocatedFile,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, object_store::Result<Bytes>>, Error> {
        if file.size == 0 {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        self.store.read(&file.digest, range).await
    }
}
