//! Which run of this server came before, when it has certainly ended. A server holds an exclusive lock on
//! `DATA_DIR/server.lock` while it runs (the kernel lets go of it when the process ends, however it ends)
//! and writes its run's id to `DATA_DIR/server.run`. A server that takes the lock knows the run named there
//! has ended, so the upload claims that run died holding can go at once instead of lapsing. One that
//! cannot take the lock shares the data directory with a server that is running, and names no run. The
//! run file also names the host: a lock is only sure on one machine (an NFS mount without locking keeps
//! locks to each client), so a run written from another host is not taken for ended.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

const LOCK: &str = "server.lock";
const RUN: &str = "server.run";

/// Held for as long as the server runs.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// What starting on a data directory found.
#[derive(Debug)]
pub struct TakeOver {
    /// `None` when another server holds the directory, or the lock cannot be had here.
    pub lock: Option<RunLock>,
    /// The run that used the directory last, now ended.
    pub ended: Option<String>,
}

/// Takes `data_dir` for run `run` on this host: its lock, and the run before it.
pub fn take_over(data_dir: &Path, run: &str) -> TakeOver {
    take_over_on(data_dir, run, &host_name())
}

/// This machine's name, as the kernel has it (empty when it cannot be read).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

fn take_over_on(data_dir: &Path, run: &str, host: &str) -> TakeOver {
    let nothing = TakeOver {
        lock: None,
        ended: None,
    };
    let opened = std::fs::create_dir_all(data_dir).and_then(|()| {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(data_dir.join(LOCK))
    });
    let file = match opened {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(error = %e, dir = %data_dir.display(), "cannot open the data directory's lock; upload claims of an ended run will lapse");
            return nothing;
        }
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            tracing::info!(dir = %data_dir.display(), "another server running on this data directory holds its lock");
            return nothing;
        }
        Err(TryLockError::Error(e)) => {
            tracing::warn!(error = %e, dir = %data_dir.display(), "cannot lock the data directory; upload claims of an ended run will lapse");
            return nothing;
        }
    }
    let ended = std::fs::read_to_string(data_dir.join(RUN))
        .ok()
        .and_then(|text| {
            let (ended, on) = text.trim().split_once(' ')?;
            (on == host && !ended.is_empty()).then(|| ended.to_owned())
        });
    if let Err(e) = write_run(data_dir, &format!("{run} {host}")) {
        tracing::warn!(error = %e, dir = %data_dir.display(), "cannot record this run in the data directory");
    }
    TakeOver {
        lock: Some(RunLock { _file: file }),
        ended,
    }
}

/// Replaces the run file whole: a crash mid-write leaves the old one or the new one.
fn write_run(data_dir: &Path, line: &str) -> std::io::Result<()> {
    let partial = data_dir.join(format!("{RUN}.partial"));
    let mut file = File::create(&partial)?;
    file.write_all(line.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(partial, data_dir.join(RUN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_run_before_is_named_once_its_lock_is_let_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = take_over(dir.path(), "replica-1");
        assert!(first.lock.is_some());
        assert_eq!(first.ended, None, "nothing ran here before");
        // A second server while the first runs: it holds nothing and names no run.
        let second = take_over(dir.path(), "replica-2");
        assert!(second.lock.is_none());
        assert_eq!(second.ended, None);
        drop(first);
        let third = take_over(dir.path(), "replica-3");
        assert!(third.lock.is_some());
        assert_eq!(third.ended.as_deref(), Some("replica-1"));
        drop(third);
        assert_eq!(
            take_over(dir.path(), "replica-4").ended.as_deref(),
            Some("replica-3")
        );
    }

    /// A run written from another machine (a data directory on a shared mount) is not taken for ended:
    /// that machine's lock may not be seen here.
    #[test]
    fn a_run_of_another_host_is_not_named() {
        let dir = tempfile::tempdir().unwrap();
        drop(take_over_on(dir.path(), "replica-1", "node-a"));
        assert_eq!(take_over_on(dir.path(), "replica-2", "node-b").ended, None);
        assert_eq!(
            take_over_on(dir.path(), "replica-3", "node-b")
                .ended
                .as_deref(),
            Some("replica-2")
        );
    }
}
