//! Where an upload session's bytes wait until their digest is verified.
//!
//! S3-compatible stores stage in a multipart upload, so sessions resume without holding anything in the
//! server. A local folder has no multipart API, so it stages in one file written at each part's offset;
//! this is the one place the two backends must differ.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::error::Error;

#[derive(Clone)]
pub(super) enum Staging {
    LocalFiles { root: PathBuf },
    Multipart(Arc<AmazonS3>),
}

const LOCAL_UPLOAD_ID: &str = "local-file";

impl Staging {
    fn local_file(root: &std::path::Path, session_id: &str) -> PathBuf {
        root.join("uploads").join(session_id)
    }

    pub(super) async fn begin(&self, key: &Path, session_id: &str) -> Result<String, Error> {
        match self {
            Staging::LocalFiles { root } => {
                tokio::fs::create_dir_all(root.join("uploads")).await?;
                tokio::fs::File::create(Self::local_file(root, session_id)).await?;
                Ok(LOCAL_UPLOAD_ID.to_owned())
            }
            Staging::Multipart(store) => Ok(store.create_multipart(key).await?),
        }
    }

    pub(super) async fn put_part(
        &self,
        key: &Path,
        session_id: &str,
        upload_id: &str,
        index: usize,
        part_size: u64,
        data: Bytes,
    ) -> Result<String, Error> {
        match self {
            Staging::LocalFiles { root } => {
                let mut file = tokio::fs::OpenOptions::new()
                    .write(true)
                    .open(Self::local_file(root, session_id))
                    .await?;
                file.seek(SeekFrom::Start(index as u64 * part_size)).await?;
                file.write_all(&data).await?;
                file.flush().await?;
                Ok(String::new())
            }
            Staging::Multipart(store) => {
                let part = store
                    .put_part(key, &upload_id.to_owned(), index, data.into())
                    .await?;
                Ok(part.content_id)
            }
        }
    }

    pub(super) async fn complete(
        &self,
        key: &Path,
        session_id: &str,
        upload_id: &str,
        etags: Vec<String>,
    ) -> Result<(), Error> {
        match self {
            Staging::LocalFiles { root } => {
                let file = tokio::fs::OpenOptions::new()
                    .write(true)
                    .open(Self::local_file(root, session_id))
                    .await?;
                file.sync_all().await?;
                Ok(())
            }
            Staging::Multipart(store) => {
                let upload_id = upload_id.to_owned();
                if etags.is_empty() {
                    // An empty blob has no parts, and some stores (Garage) refuse an empty part.
                    store.abort_multipart(key, &upload_id).await?;
                    store.put(key, Bytes::new().into()).await?;
                    return Ok(());
                }
                let parts = etags
                    .into_iter()
                    .map(|content_id| PartId { content_id })
                    .collect();
                store.complete_multipart(key, &upload_id, parts).await?;
                Ok(())
            }
        }
    }

    pub(super) async fn abort(
        &self,
        key: &Path,
        session_id: &str,
        upload_id: &str,
    ) -> Result<(), Error> {
        match self {
            Staging::LocalFiles { root } => {
                match tokio::fs::remove_file(Self::local_file(root, session_id)).await {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Staging::Multipart(store) => {
                match store.abort_multipart(key, &upload_id.to_owned()).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => {
                        // An upload already completed cannot be aborted; its staged object is deleted by the caller.
                        tracing::warn!(error = %e, session_id, "aborting multipart upload failed");
                        Ok(())
                    }
                }
            }
        }
    }
}
