//! Durability on a local folder: a blob's bytes, and the directory entries that name them, reach the disk
//! before the database records the blob, so a power loss or an OS crash cannot leave a row whose bytes
//! were still in the page cache. (S3 acknowledges a write only once it is durable.)

use std::fs::File;
use std::io;
use std::path::Path;

/// Flushes a directory, making the entries created or renamed in it durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `target`'s folders, then flushes each one created (its entry lives in its parent).
fn create_parents(target: &Path) -> io::Result<()> {
    let parent = target.parent().unwrap_or(Path::new("."));
    if parent.is_dir() {
        return Ok(());
    }
    create_parents(parent)?;
    match std::fs::create_dir(parent) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    sync_dir(parent.parent().unwrap_or(Path::new(".")))
}

/// Moves a finished staging file to its content address: its bytes flushed, then renamed, then the
/// folder that now names it flushed.
pub(super) fn rename_into_place(staged: &Path, target: &Path) -> io::Result<()> {
    File::open(staged)?.sync_all()?;
    create_parents(target)?;
    std::fs::rename(staged, target)?;
    sync_dir(target.parent().unwrap_or(Path::new(".")))
}

/// Copies a local file to a blob's content address through a temporary name beside it, with the same
/// flushes as [`rename_into_place`].
pub(super) fn copy_into_place(source: &Path, target: &Path) -> io::Result<()> {
    create_parents(target)?;
    let temporary = target.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    let copied = std::fs::copy(source, &temporary)
        .and_then(|_| File::open(&temporary)?.sync_all())
        .and_then(|()| std::fs::rename(&temporary, target));
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&temporary);
        return Err(e);
    }
    sync_dir(target.parent().unwrap_or(Path::new(".")))
}
