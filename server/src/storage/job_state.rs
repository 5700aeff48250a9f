//! A runner job's saved state (a distillation's training state), at `jobs/<job id>/state.safetensors`:
//! outside `blobs/`, so collection never sweeps it, and replaced whole — a multipart upload (S3) or a
//! temporary file renamed into place (local folder) — so a runner that dies mid-upload leaves the previous
//! checkpoint readable.

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};
use object_store::ObjectStoreExt;
use tokio::io::AsyncWriteExt;

use super::{BlobStore, PART};
use crate::error::Error;

/// What saving a state found wrong with the body.
#[derive(Debug)]
pub enum SaveError {
    /// More than the limit: nothing replaced.
    TooLarge(u64),
    Failed(Error),
}

impl BlobStore {
    fn job_state_key(&self, job_id: &str) -> object_store::path::Path {
        self.key(&format!("jobs/{job_id}/state.safetensors"))
    }

    /// Replaces the job's state with `body`, refused (the old state kept) past `limit` bytes.
    pub async fn save_job_state<E: std::fmt::Display>(
        &self,
        job_id: &str,
        body: impl Stream<Item = Result<Bytes, E>>,
        limit: u64,
    ) -> Result<u64, SaveError> {
        let mut writer = object_store::buffered::BufWriter::with_capacity(
            self.store.clone(),
            self.job_state_key(job_id),
            PART,
        )
        .with_max_concurrency(2);
        let mut written = 0u64;
        let mut body = std::pin::pin!(body);
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(SaveError::Failed(Error::bad_request(
                        kiln_core::ErrorCode::TruncatedBody,
                        format!("the state's body broke off: {e}"),
                    )));
                }
            };
            written += chunk.len() as u64;
            if written > limit {
                let _ = writer.abort().await;
                return Err(SaveError::TooLarge(limit));
            }
            if let Err(e) = writer.write_all(&chunk).await {
                let _ = writer.abort().await;
                return Err(SaveError::Failed(e.into()));
            }
        }
        writer
            .shutdown()
            .await
            .map_err(|e| SaveError::Failed(e.into()))?;
        Ok(written)
    }

    /// The job's state and its size, when one was saved.
    pub async fn read_job_state(
        &self,
        job_id: &str,
    ) -> Result<Option<(BoxStream<'static, object_store::Result<Bytes>>, u64)>, Error> {
        match self.store.get(&self.job_state_key(job_id)).await {
            Ok(result) => {
                let size = result.meta.size;
                Ok(Some((result.into_stream(), size)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every saved job state, with its job's id (the store check removes those of jobs that are gone).
    pub async fn list_job_states(&self) -> Result<Vec<(String, super::StoredObject)>, Error> {
        Ok(self
            .list_under("jobs")
            .await?
            .into_iter()
            .filter_map(|object| {
                let parts: Vec<String> =
                    object.key.parts().map(|p| p.as_ref().to_owned()).collect();
                let id = parts.len().checked_sub(2).map(|i| parts[i].clone())?;
                Some((id, object))
            })
            .collect())
    }

    /// Forgets the job's state (the job finished); nothing saved is fine.
    pub async fn delete_job_state(&self, job_id: &str) -> Result<(), Error> {
        match self.store.delete(&self.job_state_key(job_id)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
