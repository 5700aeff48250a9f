//! The blob store: object_store over a local folder or any S3-compatible service.
//!
//! Blobs live at `blobs/sha256/<2 hex>/<64 hex>`; keys are immutable and content-addressed, so writing one
//! twice is harmless and no conditional writes are needed (S3 implementations disagree on them). Upload
//! sessions stage their bytes at `uploads/<session id>` and are promoted to the blob key once the digest
//! has been verified.

mod durable;
mod job_state;
mod staging;

pub use job_state::SaveError;
pub use staging::{StagedPart, StagingWriter};

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::BoxStream;
use kiln_core::Sha256Digest;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::chunked::ChunkedStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt};

use crate::config::{ServerSideEncryption, StorageSettings};
use crate::error::Error;
use staging::Staging;

const LOCAL_READ_CHUNK: usize = 1024 * 1024;
/// Parts of a streamed copy (two in flight).
const PART: usize = 8 * 1024 * 1024;

/// An object as the store lists it.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub key: Path,
    /// The last part of its key (a blob's hex digest, an upload session's id).
    pub name: String,
    pub size: u64,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
    staging: Staging,
    description: String,
    /// The most the store copies in one request; a larger promotion streams instead (S3: 5 GiB).
    max_copy_bytes: u64,
}

impl BlobStore {
    pub fn open(settings: &StorageSettings) -> Result<Self, Error> {
        match settings {
            StorageSettings::Local { root } => {
                std::fs::create_dir_all(root.join("uploads")).map_err(|e| {
                    Error::Startup(format!(
                        "KILN_STORAGE_URL: cannot create {}: {e}",
                        root.display()
                    ))
                })?;
                let root = std::fs::canonicalize(root)?;
                let store = LocalFileSystem::new_with_prefix(&root)
                    .map_err(|e| Error::Startup(format!("KILN_STORAGE_URL: {e}")))?;
                // object_store reads local files 8 KiB per blocking task; 1 MiB reads stream several times faster.
                let store = ChunkedStore::new(Arc::new(store), LOCAL_READ_CHUNK);
                Ok(Self {
                    store: Arc::new(store),
                    prefix: Path::default(),
                    staging: Staging::LocalFiles { root: root.clone() },
                    description: format!("local folder {}", root.display()),
                    max_copy_bytes: u64::MAX,
                })
            }
            StorageSettings::S3 {
                bucket,
                prefix,
                endpoint,
                region,
                access_key_id,
                secret_access_key,
                encryption,
                max_copy_bytes,
            } => {
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(region.clone().unwrap_or_else(|| "us-east-1".to_owned()));
                if let Some(endpoint) = endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                if let Some(key) = access_key_id {
                    builder = builder.with_access_key_id(key);
                }
                if let Some(secret) = secret_access_key {
                    builder = builder.with_secret_access_key(secret);
                }
                builder = match encryption {
                    None => builder,
                    Some(ServerSideEncryption::S3Managed) => builder.with_config(
                        "aws_server_side_encryption"
                            .parse::<AmazonS3ConfigKey>()
                            .expect("object_store knows its own encryption key"),
                        "AES256",
                    ),
                    Some(ServerSideEncryption::Kms { key_id }) => {
                        builder.with_sse_kms_encryption(key_id.clone().unwrap_or_default())
                    }
                    Some(ServerSideEncryption::CustomerKey { key_base64 }) => {
                        builder.with_ssec_encryption(key_base64.clone())
                    }
                };
                let s3 = Arc::new(
                    builder
                        .build()
                        .map_err(|e| Error::Startup(format!("KILN_STORAGE_URL: {e}")))?,
                );
                Ok(Self {
                    store: s3.clone(),
                    prefix: Path::from(prefix.as_str()),
                    staging: Staging::Multipart(s3),
                    description: format!("s3://{bucket}/{prefix}"),
                    max_copy_bytes: *max_copy_bytes,
                })
            }
        }
    }

    pub fn describe(&self) -> &str {
        &self.description
    }

    fn key(&self, relative: &str) -> Path {
        let mut key = self.prefix.clone();
        for part in relative.split('/') {
            key = key.clone().join(part);
        }
        key
    }

    fn blob_key(&self, digest: &Sha256Digest) -> Path {
        let hex = digest.hex();
        self.key(&format!("blobs/sha256/{}/{hex}", &hex[..2]))
    }

    fn staging_key(&self, session_id: &str) -> Path {
        self.key(&format!("uploads/{session_id}"))
    }

    fn tail_key(&self, session_id: &str) -> Path {
        self.key(&format!("uploads/{session_id}.tail"))
    }

    /// Readiness: the store answers (a missing probe object is a fine answer).
    pub async fn check(&self) -> Result<(), Error> {
        crate::telemetry::metrics::timed_store("head", async {
            match self.store.head(&self.key(".kiln-readiness-probe")).await {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// Starts staging an upload; returns the backend's id for it (an S3 multipart upload id).
    pub async fn begin_upload(&self, session_id: &str) -> Result<String, Error> {
        self.staging
            .begin(&self.staging_key(session_id), session_id)
            .await
    }

    /// A writer for one chunk of an upload that starts at byte `offset` (a multiple of `part_size`).
    pub async fn stage_writer(
        &self,
        session_id: &str,
        upload_id: &str,
        part_size: u64,
        offset: u64,
    ) -> Result<StagingWriter, Error> {
        self.staging
            .writer(
                self.staging_key(session_id),
                session_id,
                upload_id,
                part_size,
                offset,
            )
            .await
    }

    /// Finishes staging, then moves the verified bytes (`size` of them) to their content-addressed key.
    pub async fn promote_upload(
        &self,
        session_id: &str,
        upload_id: &str,
        part_etags: Vec<String>,
        digest: &Sha256Digest,
        size: u64,
    ) -> Result<(), Error> {
        crate::telemetry::metrics::timed_store("promote", async {
            let staged = self.staging_key(session_id);
            self.staging
                .complete(&staged, upload_id, part_etags)
                .await?;
            if let (Some(root), Some(target)) = (self.local_root(), self.local_blob_path(digest)) {
                let staged = Staging::local_file(&root, session_id);
                return tokio::task::spawn_blocking(move || {
                    durable::rename_into_place(&staged, &target)
                })
                .await?
                .map_err(Error::from);
            }
            let target = self.blob_key(digest);
            if size > self.max_copy_bytes {
                // S3 copies at most 5 GiB in one request (a rename is a copy); larger blobs are streamed
                // into a multipart upload at their key instead. (A local rename copies nothing.)
                self.copy_streamed(&staged, &target).await?;
                self.store.delete(&staged).await?;
            } else {
                self.store.rename(&staged, &target).await?;
            }
            Ok(())
        })
        .await
    }

    async fn copy_streamed(&self, from: &Path, to: &Path) -> Result<(), Error> {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let mut stream = self.store.get(from).await?.into_stream();
        let mut writer =
            object_store::buffered::BufWriter::with_capacity(self.store.clone(), to.clone(), PART)
                .with_max_concurrency(2);
        while let Some(chunk) = stream.next().await {
            writer.write_all(&chunk?).await?;
        }
        writer.shutdown().await?;
        Ok(())
    }

    /// Keeps the bytes of an upload after its last whole part until its next chunk arrives.
    pub async fn save_tail(&self, session_id: &str, tail: Bytes) -> Result<(), Error> {
        self.staging
            .save_tail(&self.tail_key(session_id), tail)
            .await
    }

    /// The `length` bytes an upload kept after its last whole part, which ends at `offset`.
    pub async fn load_tail(
        &self,
        session_id: &str,
        offset: u64,
        length: u64,
    ) -> Result<Bytes, Error> {
        self.staging
            .load_tail(&self.tail_key(session_id), session_id, offset, length)
            .await
    }

    /// Drops whatever an upload staged. Safe to call on an upload that is already gone.
    pub async fn abort_upload(&self, session_id: &str, upload_id: &str) -> Result<(), Error> {
        let staged = self.staging_key(session_id);
        self.staging.abort(&staged, session_id, upload_id).await?;
        self.staging
            .save_tail(&self.tail_key(session_id), Bytes::new())
            .await?;
        match self.store.delete(&staged).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes blobs' objects (S3: up to 1,000 keys a request). An object already gone is fine: a run
    /// killed mid-sweep deleted it before it could forget the row.
    pub async fn delete_blobs(&self, digests: &[Sha256Digest]) -> Result<(), Error> {
        crate::telemetry::metrics::timed_store("delete", async {
            use futures_util::StreamExt;
            let keys: Vec<object_store::Result<Path>> =
                digests.iter().map(|d| Ok(self.blob_key(d))).collect();
            let mut deleted = self
                .store
                .delete_stream(futures_util::stream::iter(keys).boxed());
            while let Some(result) = deleted.next().await {
                match result {
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        })
        .await
    }

    /// Every object under `blobs/sha256/<prefix>/` (a two-hex-digit prefix: one 256th of the store, so
    /// a check over millions of blobs holds one slice at a time).
    pub async fn list_blobs(&self, prefix: &str) -> Result<Vec<StoredObject>, Error> {
        self.list_under(&format!("blobs/sha256/{prefix}")).await
    }

    /// Every object under `uploads/` (upload sessions' staged bytes and tails).
    pub async fn list_staging(&self) -> Result<Vec<StoredObject>, Error> {
        self.list_under("uploads").await
    }

    async fn list_under(&self, relative: &str) -> Result<Vec<StoredObject>, Error> {
        crate::telemetry::metrics::timed_store("list", async {
            use futures_util::TryStreamExt;
            let prefix = self.key(relative);
            let listed: Vec<object_store::ObjectMeta> =
                self.store.list(Some(&prefix)).try_collect().await?;
            Ok(listed
                .into_iter()
                .map(|meta| StoredObject {
                    name: meta.location.filename().unwrap_or_default().to_owned(),
                    key: meta.location,
                    size: meta.size,
                    last_modified: meta.last_modified,
                })
                .collect())
        })
        .await
    }

    /// Deletes one object the store check found nothing records.
    pub async fn delete_object(&self, object: &StoredObject) -> Result<(), Error> {
        match self.store.delete(&object.key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams a blob, or the byte range `range` of it.
    pub async fn read(
        &self,
        digest: &Sha256Digest,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, object_store::Result<Bytes>>, Error> {
        crate::telemetry::metrics::timed_store("get", async {
            let options = GetOptions {
                range: range.map(GetRange::Bounded),
                ..Default::default()
            };
            let result = self.store.get_opts(&self.blob_key(digest), options).await?;
            Ok(result.into_stream())
        })
        .await
    }

    /// Where a blob's bytes already sit as a plain file (the local store), so a pipeline job can read them
    /// in place instead of copying.
    pub fn local_blob_path(&self, digest: &Sha256Digest) -> Option<PathBuf> {
        let root = self.local_root()?;
        let hex = digest.hex();
        Some(root.join("blobs").join("sha256").join(&hex[..2]).join(hex))
    }

    /// Copies a blob into a local file.
    pub async fn download_to(
        &self,
        digest: &Sha256Digest,
        path: &std::path::Path,
    ) -> Result<(), Error> {
        use futures_util::StreamExt;
        use tokio::io::AsyncWriteExt;
        let mut stream = self.read(digest, None).await?;
        let mut file = tokio::fs::File::create(path).await?;
        while let Some(chunk) = stream.next().await {
            file.write_all(&chunk?).await?;
        }
        file.flush().await?;
        Ok(())
    }

    /// A local file's digest and size, read once.
    pub async fn hash_file(path: &std::path::Path) -> Result<(Sha256Digest, u64), Error> {
        use tokio::io::AsyncReadExt;
        let mut hasher = kiln_core::Sha256Hasher::new();
        let mut size = 0u64;
        let mut file = tokio::fs::File::open(path).await?;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            size += n as u64;
        }
        Ok((hasher.finalize(), size))
    }

    /// Stores a local file, whose digest [`Self::hash_file`] gave, as that blob (multipart for large files
    /// on S3; on a local folder, flushed to disk before it is in place).
    pub async fn put_file(
        &self,
        path: &std::path::Path,
        digest: &Sha256Digest,
    ) -> Result<(), Error> {
        crate::telemetry::metrics::timed_store("put", async {
            if let Some(target) = self.local_blob_path(digest) {
                let source = path.to_owned();
                return tokio::task::spawn_blocking(move || {
                    durable::copy_into_place(&source, &target)
                })
                .await?
                .map_err(Error::from);
            }
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            // object_store's defaults (10 MiB parts, 8 in flight) hold ~90 MiB per upload; two 8 MiB parts in
            // flight keep the server's memory flat while it stores a job's outputs.
            let mut writer = object_store::buffered::BufWriter::with_capacity(
                self.store.clone(),
                self.blob_key(digest),
                PART,
            )
            .with_max_concurrency(2);
            let mut file = tokio::fs::File::open(path).await?;
            let mut buffer = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buffer).await?;
                if n == 0 {
                    break;
                }
                writer.write_all(&buffer[..n]).await?;
            }
            writer.shutdown().await?;
            Ok(())
        })
        .await
    }

    /// The local folder behind the store, when there is one (tests inspect it).
    pub fn local_root(&self) -> Option<PathBuf> {
        match &self.staging {
            Staging::LocalFiles { root } => Some(root.clone()),
            Staging::Multipart(_) => None,
        }
    }
}
