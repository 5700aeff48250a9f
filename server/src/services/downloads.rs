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

/// A file located in a version, ready to be streamed.
pub struct FileDownload {
    pub digest: Sha256Digest,
    pub size: i64,
    pub range: Option<Range<u64>>,
    pub body: BoxStream<'static, object_store::Result<Bytes>>,
}

#[derive(Clone)]
pub struct DownloadService {
    db: Database,
    store: BlobStore,
}

impl DownloadService {
    pub fn new(db: Database, store: BlobStore) -> Self {
        Self { db, store }
    }

    /// Finds the file and its size; `pick_range` turns the size into the range to send (or an error).
    pub async fn open<F>(
        &self,
        ns: NamespaceName,
        model: ModelName,
        version: VersionName,
        source: FileSource,
        path: FilePath,
        pick_range: F,
    ) -> Result<FileDownload, Error>
    where
        F: FnOnce(u64) -> Result<Option<Range<u64>>, Error>,
    {
        let what = match &source {
            FileSource::Version => format!("file {path} in {ns}/{model}:{version}"),
            FileSource::Variant(v) => {
                format!("file {path} of variant {v} of {ns}/{model}:{version}")
            }
        };
        let file = self
            .db
            .run(move |conn| {
                let Some((_, model_row)) = models::find(conn, ns.as_str(), model.as_str())? else {
                    return Ok(None);
                };
                let Some(version_row) = versions::find(conn, &model_row.id, version.as_str())?
                else {
                    return Ok(None);
                };
                Ok(match source {
                    FileSource::Version => {
                        versions::find_file(conn, &version_row.id, path.as_str())?
                            .map(|f| (f.digest, f.size))
                    }
                    FileSource::Variant(variant) => {
                        variants::find_file(conn, &version_row.id, &variant, path.as_str())?
                            .map(|f| (f.digest, f.size))
                    }
                })
            })
            .await?
            .ok_or_else(|| Error::not_found(what))?;
        let (digest, size) = file;
        let digest: Sha256Digest = digest.parse()?;
        let range = pick_range(size as u64)?;
        let body = if size == 0 {
            Box::pin(futures_util::stream::empty()) as BoxStream<'static, _>
        } else {
            self.store.read(&digest, range.clone()).await?
        };
        Ok(FileDownload {
            digest,
            size,
            range,
            body,
        })
    }
}
