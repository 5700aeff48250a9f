//! `kiln push PATH NS/MODEL:VERSION`: hash, skip what the server has, upload the rest (resuming), commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use indicatif::ProgressBar;
use kiln_core::api::{CreateVersionRequest, FileEntry, UpdateModelRequest, UploadSession};
use kiln_core::{ErrorCode, ModelRef, Sha256Digest};
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::browse::print_json;
use crate::client::{ApiClient, CommitOutcome};
use crate::error::CliError;
use crate::local_files::{self, HashedFile};
use crate::progress::{bytes_bar, human_bytes, note};

/// Chunks aim at this size (rounded to the server's part size): large enough to stream at full speed,
/// small enough that an interrupted push loses little.
const TARGET_CHUNK: i64 = 64 * 1024 * 1024;

/// How long a push waits, in all, while another request holds a file's upload session (`upload_busy`):
/// a writer whose server stopped mid-chunk lets go when a server starts again on its data or within 20 s,
/// a live one within its chunk's time.
const MAX_BUSY_WAIT: Duration = Duration::from_secs(300);

pub struct PushOptions {
    pub source: PathBuf,
    pub reference: ModelRef,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub chunk_size: Option<i64>,
    /// Files hashed and uploaded at once (each over its own connection).
    pub jobs: usize,
    pub json: bool,
    /// What the server's pipeline should make of the version.
    pub pipeline: Option<kiln_core::api::PipelineOptions>,
    /// Where the version came from: the JSON file `--lineage` names (`-`: stdin).
    pub lineage: Option<PathBuf>,
}

pub async fn run(client: &ApiClient, options: PushOptions) -> Result<(), CliError> {
    let (ns, model, version) = options.reference.require_version().ok_or_else(|| {
        CliError::Usage(format!(
            "push needs NAMESPACE/MODEL:VERSION, e.g. acme/sentiment:1.0.0 (got {})",
            options.reference
        ))
    })?;
    // Read and checked before anything is hashed or uploaded.
    let lineage = options
        .lineage
        .as_deref()
        .map(super::lineage::read_file)
        .transpose()?;
    let source = options.source.clone();
    let jobs = options.jobs.max(1);
    let files = tokio::task::spawn_blocking(move || hash_all(&source, jobs))
        .await
        .map_err(|e| CliError::Usage(e.to_string()))??;

    let mut unique: BTreeMap<Sha256Digest, &HashedFile> = BTreeMap::new();
    for file in &files {
        unique.entry(file.digest).or_insert(file);
    }
    // The namespace's quota is checked before a byte is uploaded (committing checks again).
    let check = kiln_core::api::QuotaCheckRequest {
        files: unique
            .iter()
            .map(|(digest, f)| kiln_core::api::QuotaCheckFile {
                digest: *digest,
                size: f.file.size as i64,
            })
            .collect(),
        version: Some(version.clone()),
    };
    client
        .post_json::<_, kiln_core::api::QuotaCheck>(
            &format!("/models/{ns}/{model}/quota-check"),
            &check,
        )
        .await?;
    let missing = client
        .missing_blobs(unique.keys().copied().collect())
        .await?;
    let upload_bytes: u64 = missing.iter().map(|d| unique[d].file.size).sum();
    let bar = bytes_bar(upload_bytes, "uploading");
    bar.set_message(format!("{} file(s)", missing.len()));
    // Each file is its own upload session, so files go in parallel and each still resumes on its own.
    let uploaded = futures_util::stream::iter(&missing)
        .map(|digest| upload_blob(client, unique[digest], options.chunk_size, &bar))
        .buffer_unordered(jobs)
        .try_fold(0usize, |n, sent| async move { Ok(n + usize::from(sent)) })
        .await?;
    bar.finish_and_clear();

    let request = CreateVersionRequest {
        version: version.clone(),
        files: files
            .iter()
            .map(|f| FileEntry {
                path: f.file.path.clone(),
                digest: f.digest,
                size: f.file.size as i64,
            })
            .collect(),
        pipeline: options.pipeline.clone(),
        lineage,
    };
    let outcome = client.commit_version(ns, model, &request).await?;
    if options.description.is_some() || !options.tags.is_empty() {
        let update = UpdateModelRequest {
            description: options.description.clone(),
            tags: (!options.tags.is_empty()).then(|| options.tags.clone()),
        };
        client.update_model(ns, model, &update).await?;
    }
    let total: u64 = files.iter().map(|f| f.file.size).sum();
    let (detail, verb, outcome) = match outcome {
        CommitOutcome::Created(detail) => (detail, "pushed", "created"),
        CommitOutcome::AlreadyPresent(detail) => {
            (detail, "already present, identical:", "already_present")
        }
    };
    if options.json {
        print_json(&serde_json::json!({
            "pushed": options.reference.to_string(),
            "outcome": outcome,
            "files": files.len(),
            "bytes": total,
            "blobs_uploaded": uploaded,
            "blobs_already_on_server": unique.len() - uploaded,
            "version": detail,
        }));
    } else {
        println!(
            "{verb} {} ({} files, {}; uploaded {uploaded} blob(s), {} already on the server)",
            options.reference,
            files.len(),
            human_bytes(total as i64),
            unique.len() - uploaded,
        );
    }
    Ok(())
}

/// Hashes every file, `jobs` at a time (the largest first, so one big shard does not finish last
/// alone); the result keeps path order.
fn hash_all(source: &Path, jobs: usize) -> Result<Vec<HashedFile>, CliError> {
    let files = local_files::collect(source)?;
    let total = files.iter().map(|f| f.size).sum();
    let bar = bytes_bar(total, "hashing");
    bar.set_message(format!("{} file(s)", files.len()));
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(files[i].size));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let digests = std::sync::Mutex::new(vec![None; files.len()]);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs.min(files.len()).max(1))
            .map(|_| {
                scope.spawn(|| -> Result<(), CliError> {
                    loop {
                        let taken = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(&index) = order.get(taken) else {
                            return Ok(());
                        };
                        let digest = local_files::hash_file(&files[index].source, &bar)?;
                        digests.lock().expect("no hashing thread panics")[index] = Some(digest);
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("no hashing thread panics"))
    })?;
    bar.finish_and_clear();
    let digests = digests.into_inner().expect("no hashing thread panics");
    Ok(files
        .into_iter()
        .zip(digests)
        .map(|(file, digest)| HashedFile {
            file,
            digest: digest.expect("every file was hashed"),
        })
        .collect())
}

/// Uploads one blob, continuing an unfinished session. False when the server already had it.
async fn upload_blob(
    client: &ApiClient,
    file: &HashedFile,
    chunk_size: Option<i64>,
    bar: &ProgressBar,
) -> Result<bool, CliError> {
    // A session can end under a push: another push of the same file by the same account shares it and
    // committed it (the blob is there now), or the server reaped it. Starting again finds out which.
    let mut restarts = 0;
    loop {
        let progress = FileProgress {
            bar: bar.clone(),
            counted: Arc::new(AtomicU64::new(0)),
        };
        match upload_through_session(client, file, chunk_size, &progress).await {
            Err(e) if e.api_code() == Some(ErrorCode::NotFound) && restarts < 3 => {
                restarts += 1;
                progress.take_back();
            }
            outcome => return outcome,
        }
    }
}

/// The push's progress bar, and what one upload attempt of one file added to it.
#[derive(Clone)]
struct FileProgress {
    bar: ProgressBar,
    counted: Arc<AtomicU64>,
}

impl FileProgress {
    fn inc(&self, bytes: u64) {
        self.counted.fetch_add(bytes, Ordering::Relaxed);
        self.bar.inc(bytes);
    }

    /// Removes this attempt's bytes from the bar, before the file starts over.
    fn take_back(&self) {
        self.bar.dec(self.counted.swap(0, Ordering::Relaxed));
    }
}

/// One attempt: through the session the server gives (new or unfinished), to the commit.
async fn upload_through_session(
    client: &ApiClient,
    file: &HashedFile,
    chunk_size: Option<i64>,
    progress: &FileProgress,
) -> Result<bool, CliError> {
    let size = file.file.size as i64;
    let Some(mut session) = client.create_upload(file.digest, size).await? else {
        progress.inc(file.file.size);
        return Ok(false);
    };
    if session.resumed && session.offset > 0 {
        progress.bar.suspend(|| {
            note(format!(
                "resuming upload of {} at {} of {}",
                file.file.path,
                human_bytes(session.offset),
                human_bytes(size)
            ))
        });
    }
    progress.inc(session.offset as u64);
    let chunk = chunk_len(&session, chunk_size)?;
    let mut waited = Duration::ZERO;
    while session.offset < size {
        let len = chunk.min(size - session.offset);
        match send_chunk(client, &file.file.source, &session, len, progress).await {
            Ok(next) => session = next,
            Err(e) if e.api_code() == Some(ErrorCode::OffsetMismatch) => {
                // Another push of the same file advanced the session: continue from where it is now.
                session = client.upload(&session.id).await?;
            }
            Err(e) if e.api_code() == Some(ErrorCode::UploadBusy) && waited < MAX_BUSY_WAIT => {
                if waited.is_zero() {
                    progress.bar.suspend(|| {
                        note(format!(
                            "another request is writing the upload of {} (a server restarted mid-chunk \
                             lets go of it within seconds); waiting",
                            file.file.path
                        ))
                    });
                }
                let pause = Duration::from_secs(e.retry_after().unwrap_or(1).clamp(1, 30));
                tokio::time::sleep(pause).await;
                waited += pause;
                session = client.upload(&session.id).await?;
            }
            Err(e) => return Err(e),
        }
    }
    match client.commit_upload(&session.id).await {
        Ok(_) => Ok(true),
        Err(CliError::Api { code, message, .. })
            if code.parse() == Ok(ErrorCode::DigestMismatch) =>
        {
            Err(CliError::Integrity(format!(
                "{}: {message}\n  did the file change while pushing? Run kiln push again",
                file.file.path
            )))
        }
        Err(e) => Err(e),
    }
}

fn chunk_len(session: &UploadSession, requested: Option<i64>) -> Result<i64, CliError> {
    let wanted = requested.unwrap_or(TARGET_CHUNK);
    if wanted <= 0 {
        return Err(CliError::Usage("--chunk-size must be positive".to_owned()));
    }
    let parts = (wanted / session.part_size).max(1);
    Ok(parts * session.part_size)
}

async fn send_chunk(
    client: &ApiClient,
    source: &Path,
    session: &UploadSession,
    len: i64,
    progress: &FileProgress,
) -> Result<UploadSession, CliError> {
    let mut file = tokio::fs::File::open(source)
        .await
        .map_err(CliError::io(source))?;
    file.seek(std::io::SeekFrom::Start(session.offset as u64))
        .await
        .map_err(CliError::io(source))?;
    let progress = progress.clone();
    let stream =
        ReaderStream::with_capacity(file.take(len as u64), 256 * 1024).inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                progress.inc(bytes.len() as u64);
            }
        });
    let end = session.offset + len - 1;
    let request = client
        .request(Method::PATCH, &format!("/uploads/{}", session.id))
        .header(
            reqwest::header::CONTENT_RANGE,
            format!("bytes {}-{end}/{}", session.offset, session.size),
        )
        .header(reqwest::header::CONTENT_LENGTH, len)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(reqwest::Body::wrap_stream(stream));
    let response = client.send(request).await?;
    response
        .json::<UploadSession>()
        .await
        .map_err(|e| client.transfer_error(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(part_size: i64) -> UploadSession {
        UploadSession {
            id: "s".into(),
            digest: Sha256Digest::of(b""),
            size: 1 << 30,
            offset: 0,
            part_size,
            resumed: false,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn chunks_are_whole_parts_near_the_requested_size() {
        let mib = 1024 * 1024;
        assert_eq!(chunk_len(&session(8 * mib), None).unwrap(), 64 * mib);
        assert_eq!(
            chunk_len(&session(8 * mib), Some(20 * mib)).unwrap(),
            16 * mib
        );
        assert_eq!(
            chunk_len(&session(8 * mib), Some(1)).unwrap(),
            8 * mib,
            "never below one part"
        );
        assert_eq!(chunk_len(&session(24 * mib), None).unwrap(), 48 * mib);
        assert!(chunk_len(&session(8 * mib), Some(0)).is_err());
    }
}
