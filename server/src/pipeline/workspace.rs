//! A job's files as a local folder tree: each file at its path under `tree/` (so a model finds its external
//! data by relative path), as a link to the local store's blob or downloaded from S3, in a temporary folder
//! that goes away with the job.

use std::path::{Path, PathBuf};

use kiln_core::Sha256Digest;
use tempfile::TempDir;

use super::JobContext;
use crate::db::records::VersionFileRow;
use crate::db::repos::versions;
use crate::error::Error;
use crate::storage::BlobStore;

pub struct Workspace {
    /// Scratch space for the tree and the job's own outputs.
    pub scratch: TempDir,
    /// (path, local file), in the order given.
    pub files: Vec<(String, PathBuf)>,
}

impl Workspace {
    /// The version's files as pushed, with their rows, laid out under `scratch/tree`.
    pub async fn of_version(
        context: &JobContext,
        version_id: &str,
    ) -> Result<(Vec<VersionFileRow>, Self), Error> {
        let id = version_id.to_owned();
        let files = context
            .db
            .run(move |conn| Ok(versions::files(conn, &id)?))
            .await?;
        let workspace = Self::materialize(
            &context.store,
            files
                .iter()
                .map(|f| (f.path.clone(), f.digest.clone()))
                .collect(),
        )
        .await?;
        Ok((files, workspace))
    }

    /// Lays out `files`, given as (path, digest) pairs, under `scratch/tree`.
    pub async fn materialize(
        store: &BlobStore,
        files: Vec<(String, String)>,
    ) -> Result<Self, Error> {
        let scratch = tempfile::Builder::new().prefix("kiln-job-").tempdir()?;
        let tree = scratch.path().join("tree");
        let mut local = Vec::new();
        for (path, digest) in files {
            let digest: Sha256Digest = digest.parse()?;
            let target = tree.join(&path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match store.local_blob_path(&digest) {
                Some(blob) => std::os::unix::fs::symlink(&blob, &target)?,
                None => store.download_to(&digest, &target).await?,
            }
            local.push((path, target));
        }
        Ok(Self {
            scratch,
            files: local,
        })
    }

    /// Where a file of the tree is.
    pub fn path(&self, path: &str) -> PathBuf {
        self.scratch.path().join("tree").join(path)
    }

    pub fn scratch(&self) -> &Path {
        self.scratch.path()
    }
}
