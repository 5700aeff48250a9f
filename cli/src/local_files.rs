//! The files of a local model folder, as a version will hold them.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use kiln_core::{FilePath, Sha256Digest, Sha256Hasher};

use crate::error::CliError;

pub struct LocalFile {
    pub path: FilePath,
    pub source: PathBuf,
    pub size: u64,
}

pub struct HashedFile {
    pub file: LocalFile,
    pub digest: Sha256Digest,
}

/// Every regular file under `root` (following symlinks), or `root` itself when it is a file, in path order.
pub fn collect(root: &Path) -> Result<Vec<LocalFile>, CliError> {
    let meta = std::fs::metadata(root).map_err(CliError::io(root))?;
    if meta.is_file() {
        let name = root.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
            CliError::Usage(format!("{} has no usable file name", root.display()))
        })?;
        let path = name
            .parse()
            .map_err(|e| CliError::Usage(format!("cannot push {}: {e}", root.display())))?;
        return Ok(vec![LocalFile {
            path,
            source: root.to_owned(),
            size: meta.len(),
        }]);
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
    {
        let entry =
            entry.map_err(|e| CliError::Usage(format!("cannot read {}: {e}", root.display())))?;
        if entry.file_type().is_dir() {
            continue;
        }
        if !entry.file_type().is_file() {
            return Err(CliError::Usage(format!(
                "{} is not a regular file (a socket, pipe or device); remove it or push a folder without it",
                entry.path().display()
            )));
        }
        let relative = entry
            .path()
            .strip_prefix(root)
            .expect("walkdir yields paths under its root");
        let text = relative
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "{} is not valid UTF-8; rename it",
                    entry.path().display()
                ))
            })?
            .join("/");
        let path = text
            .parse()
            .map_err(|e| CliError::Usage(format!("cannot push {}: {e}", entry.path().display())))?;
        let size = entry
            .metadata()
            .map_err(|e| CliError::Usage(e.to_string()))?
            .len();
        files.push(LocalFile {
            path,
            source: entry.into_path(),
            size,
        });
    }
    if files.is_empty() {
        return Err(CliError::Usage(format!(
            "{} holds no files to push",
            root.display()
        )));
    }
    Ok(files)
}

/// sha256 of a whole file, advancing `bar` as bytes are read.
pub fn hash_file(path: &Path, bar: &ProgressBar) -> Result<Sha256Digest, CliError> {
    let mut file = File::open(path).map_err(CliError::io(path))?;
    let mut hasher = Sha256Hasher::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).map_err(CliError::io(path))?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buffer[..n]);
        bar.inc(n as u64);
    }
}
