//! Serving a version's files, whole or by byte range.

use std::ops::Range;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use kiln_core::{FilePath, ModelName, NamespaceName, Sha256Digest, VersionName};

use crate::db::Database;
use crate::db::repos::{models, versions};
use crate::error::Error;
use crate::storage::BlobStore;

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
        path: FilePath,
        pick_range: F,
    ) -> Result<FileDownload, Error>
    where
        F: FnOnce(u64) -> Result<Option<Range<u64>>, Error>,
    {
        let what = format!("file {path} in {ns}/{model}:{version}");
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
                Ok(versions::find_file(conn, &version_row.id, path.as_str())?)
            })
            .await?
            .ok_or_else(|| Error::not_found(what))?;
        let digest: Sha256Digest = file.digest.parse()?;
        let range = pick_range(file.size as u64)?;
        let body = if file.size == 0 {
            Box::pin(futures_util::stream::empty()) as BoxStream<'static, _>
        } else {
            self.store.read(&digest, range.clone()).await?
        };
        Ok(FileDownload {
            digest,
            size: file.size,
            range,
            body,
        })
    }
}
