//! A job's view of a version's files as local paths: the local store's blob files read in place, or blobs
//! downloaded from S3 into a temporary folder that goes away with the job.

use std::path::PathBuf;

use kiln_core::Sha256Digest;
use tempfile::TempDir;

use crate::db::records::VersionFileRow;
use crate::error::Error;
use crate::storage::BlobStore;

pub struct Workspace {
    /// Scratch space for downloads and the job's own outputs.
    pub scratch: TempDir,
    /// (path in the version, local file)
    pub files: Vec<(String, PathBuf)>,
}

impl Workspace {
    pub async fn materialize(store: &BlobStore, files: &[VersionFileRow]) -> Result<Self, Error> {
        let scratch = tempfile::Builder::new().prefix("kiln-job-").tempdir()?;
        let mut local = Vec::with_capacity(files.len());
        for file in files {
            let digest: Sha256Digest = file.digest.parse()?;
            let path = match store.local_blob_path(&digest) {
                Some(path) => path,
                None => {
                    let target = scratch.path().join(digest.hex());
                    if !target.exists() {
                        store.download_to(&digest, &target).await?;
                    }
                    target
                }
            };
            local.push((file.path.clone(), path));
        }
        Ok(Self {
            scratch,
            files: local,
        })
    }
}
