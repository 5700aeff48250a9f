//! Where an upload session's bytes wait until their digest is verified.
//!
//! S3-compatible stores stage in a multipart upload, so sessions resume without holding anything in the
//! server. A local folder has no multipart API, so it stages in one file written at each byte's offset;
//! this is the one place the two backends must differ.
//!
//! Bytes are handed on as the request body streams in, while still hot in the CPU cache: the local file is
//! written in 1 MiB slices (the kernel copies cache-hot slices several times faster than 8 MiB blocks), and
//! an S3 part is the list of received chunks, never copied into one buffer.

use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use tokio::task::JoinHandle;

use crate::error::Error;

#[derive(Clone)]
pub(super) enum Staging {
    LocalFiles { root: PathBuf },
    Multipart(Arc<AmazonS3>),
}

const LOCAL_UPLOAD_ID: &str = "local-file";
const LOCAL_WRITE_SLICE: usize = 1024 * 1024;

/// A part of a staged upload, as recorded in the database (1-based number, backend ETag).
#[derive(Debug, Clone)]
pub struct StagedPart {
    pub number: i32,
    pub etag: String,
    pub size: i64,
}

impl Staging {
    pub(super) fn local_file(root: &std::path::Path, session_id: &str) -> PathBuf {
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

    /// A writer for one chunk of an upload starting at byte `offset` (a multiple of `part_size`).
    pub(super) async fn writer(
        &self,
        key: Path,
        session_id: &str,
        upload_id: &str,
        part_size: u64,
        offset: u64,
    ) -> Result<StagingWriter, Error> {
        let target = match self {
            Staging::LocalFiles { root } => {
                let path = Self::local_file(root, session_id);
                let file = tokio::task::spawn_blocking(move || {
                    std::fs::OpenOptions::new().write(true).open(path)
                })
                .await??;
                Target::Local {
                    file: Arc::new(file),
                    slice: Vec::with_capacity(LOCAL_WRITE_SLICE),
                    slice_offset: offset,
                }
            }
            Staging::Multipart(store) => Target::Multipart {
                store: store.clone(),
                key,
                upload_id: upload_id.to_owned(),
                chunks: Vec::new(),
                in_flight: None,
            },
        };
        Ok(StagingWriter {
            target,
            part_size,
            next_part: offset / part_size,
            part_filled: 0,
            parts: Vec::new(),
        })
    }

    pub(super) async fn complete(
        &self,
        key: &Path,
        upload_id: &str,
        etags: Vec<String>,
    ) -> Result<(), Error> {
        match self {
            // Local parts were written in place; the caller renames the file.
            Staging::LocalFiles { .. } => Ok(()),
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

    /// Keeps an upload's tail (the bytes after its last whole part) until its next chunk. A local file
    /// holds them in place already.
    pub(super) async fn save_tail(&self, tail_key: &Path, tail: Bytes) -> Result<(), Error> {
        match self {
            Staging::LocalFiles { .. } => Ok(()),
            Staging::Multipart(store) if tail.is_empty() => match store.delete(tail_key).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            },
            Staging::Multipart(store) => {
                store.put(tail_key, tail.into()).await?;
                Ok(())
            }
        }
    }

    /// An upload's tail: the `length` bytes that start at `offset` (where its last whole part ends).
    pub(super) async fn load_tail(
        &self,
        tail_key: &Path,
        session_id: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, Error> {
        let bytes = match self {
            Staging::LocalFiles { root } => {
                let path = Self::local_file(root, session_id);
                tokio::task::spawn_blocking(move || {
                    let file = std::fs::File::open(path)?;
                    let mut buffer = vec![0u8; length as usize];
                    file.read_exact_at(&mut buffer, offset)?;
                    Ok::<_, std::io::Error>(Bytes::from(buffer))
                })
                .await??
            }
            Staging::Multipart(store) => store.get(tail_key).await?.bytes().await?,
        };
        if bytes.len() as u64 != length {
            return Err(Error::Internal(format!(
                "upload {session_id} keeps a tail of {} bytes, not {length}",
                bytes.len()
            )));
        }
        Ok(bytes)
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
                        // A completed upload cannot be aborted; the caller deletes its staged object.
                        tracing::warn!(error = %e, session_id, "aborting multipart upload failed");
                        Ok(())
                    }
                }
            }
        }
    }
}

enum Target {
    Local {
        file: Arc<std::fs::File>,
        slice: Vec<u8>,
        slice_offset: u64,
    },
    Multipart {
        store: Arc<AmazonS3>,
        key: Path,
        upload_id: String,
        chunks: Vec<Bytes>,
        in_flight: Option<JoinHandle<Result<StagedPart, Error>>>,
    },
}

/// Writes one chunk of an upload (a run of whole parts, or ending with the blob's last part).
pub struct StagingWriter {
    target: Target,
    part_size: u64,
    next_part: u64,
    part_filled: u64,
    parts: Vec<StagedPart>,
}

impl StagingWriter {
    /// Takes the chunk's next bytes, in order.
    pub async fn write(&mut self, mut data: Bytes) -> Result<(), Error> {
        while !data.is_empty() {
            let room = (self.part_size - self.part_filled) as usize;
            let piece = data.split_to(room.min(data.len()));
            self.part_filled += piece.len() as u64;
            self.take(piece).await?;
            if self.part_filled == self.part_size {
                self.end_part().await?;
            }
        }
        Ok(())
    }

    async fn take(&mut self, piece: Bytes) -> Result<(), Error> {
        match &mut self.target {
            Target::Local { slice, .. } => {
                slice.extend_from_slice(&piece);
                if slice.len() >= LOCAL_WRITE_SLICE {
                    self.flush_local().await?;
                }
            }
            Target::Multipart { chunks, .. } => chunks.push(piece),
        }
        Ok(())
    }

    async fn flush_local(&mut self) -> Result<(), Error> {
        let Target::Local {
            file,
            slice,
            slice_offset,
        } = &mut self.target
        else {
            return Ok(());
        };
        if slice.is_empty() {
            return Ok(());
        }
        let (file, buffer, at) = (file.clone(), std::mem::take(slice), *slice_offset);
        let mut buffer =
            tokio::task::spawn_blocking(move || file.write_all_at(&buffer, at).map(|()| buffer))
                .await??;
        *slice_offset += buffer.len() as u64;
        buffer.clear();
        *slice = buffer;
        Ok(())
    }

    /// Closes the current part: recorded locally, or sent to S3 with at most one part in flight.
    async fn end_part(&mut self) -> Result<(), Error> {
        let number = self.next_part as i32 + 1;
        let size = self.part_filled as i64;
        self.next_part += 1;
        self.part_filled = 0;
        match &mut self.target {
            Target::Local { .. } => self.parts.push(StagedPart {
                number,
                etag: String::new(),
                size,
            }),
            Target::Multipart {
                store,
                key,
                upload_id,
                chunks,
                in_flight,
            } => {
                let previous = in_flight.take();
                let payload: PutPayload = std::mem::take(chunks).into_iter().collect();
                let (store, key, upload_id) = (store.clone(), key.clone(), upload_id.clone());
                if let Some(previous) = previous {
                    self.parts.push(join(previous).await?);
                }
                let task = tokio::spawn(async move {
                    let part = store
                        .put_part(&key, &upload_id, number as usize - 1, payload)
                        .await?;
                    Ok(StagedPart {
                        number,
                        etag: part.content_id,
                        size,
                    })
                });
                if let Target::Multipart { in_flight, .. } = &mut self.target {
                    *in_flight = Some(task);
                }
            }
        }
        Ok(())
    }

    /// Stores every whole part and returns them with the bytes of the unfinished part after them, which
    /// an upload of unknown size keeps as its tail until more bytes (or the end) arrive. A local file
    /// already holds those bytes in place; an S3 part cannot be shorter than 5 MiB unless it is the last.
    pub async fn finish_whole_parts(mut self) -> Result<(Vec<StagedPart>, Bytes), Error> {
        let tail = match &mut self.target {
            Target::Local { .. } => Bytes::new(),
            Target::Multipart { chunks, .. } => {
                let mut tail = bytes::BytesMut::with_capacity(self.part_filled as usize);
                for chunk in std::mem::take(chunks) {
                    tail.extend_from_slice(&chunk);
                }
                tail.freeze()
            }
        };
        self.part_filled = 0;
        self.flush_local().await?;
        if let Target::Multipart { in_flight, .. } = &mut self.target
            && let Some(last) = in_flight.take()
        {
            self.parts.push(join(last).await?);
        }
        Ok((self.parts, tail))
    }

    /// Stores what is left (the blob's shorter last part) and returns every part this chunk stored.
    pub async fn finish(mut self) -> Result<Vec<StagedPart>, Error> {
        if self.part_filled > 0 {
            self.end_part().await?;
        }
        self.flush_local().await?;
        if let Target::Multipart { in_flight, .. } = &mut self.target
            && let Some(last) = in_flight.take()
        {
            self.parts.push(join(last).await?);
        }
        Ok(self.parts)
    }
}

async fn join(task: JoinHandle<Result<StagedPart, Error>>) -> Result<StagedPart, Error> {
    task.await?
}
