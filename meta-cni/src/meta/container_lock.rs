//! One container's calls, one at a time: ADD, DEL and CHECK of a container hold an exclusive
//! `flock` on `<cniDir>/<containerID>.lock` from before they read its cache until they
//! return, so two racing ADDs cannot both report success, and an ADD racing a DEL ends with
//! either nothing or an attachment that CHECK passes.
//!
//! The file is removed when the container's last cache entry goes, under the lock. A waiter
//! that then wins a lock on the removed file notices (the path no longer names the inode it
//! holds) and locks the path again.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use super::cache;
use super::error::LockError;

/// An exclusive lock on one container; released on drop.
#[derive(Debug)]
pub(crate) struct ContainerLock {
    file: PathBuf,
    _held: Flock<File>,
}

impl ContainerLock {
    /// Waits for and takes the lock of `container_id` (validated by the skeleton) in `dir`,
    /// making the directory (0700) if needed.
    pub(crate) fn acquire(dir: &Path, container_id: &str) -> Result<ContainerLock, LockError> {
        cache::ensure_dir(dir)?;
        let path = dir.join(format!("{container_id}.lock"));
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(|source| LockError::Open {
                    path: path.clone(),
                    source,
                })?;
            let held =
                Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| LockError::Lock {
                    path: path.clone(),
                    source: e.into(),
                })?;
            let mine = held.metadata().map_err(|source| LockError::StatHeld {
                path: path.clone(),
                source,
            })?;
            // The holder before us may have removed the file: then the lock is on nothing.
            match std::fs::metadata(&path) {
                Ok(now) if now.dev() == mine.dev() && now.ino() == mine.ino() => {
                    return Ok(ContainerLock {
                        file: path,
                        _held: held,
                    })
                }
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(LockError::StatPath { path, source }),
            }
        }
    }

    /// Removes the lock file (the container has nothing cached any more) and releases.
    pub(crate) fn release_and_remove(self) {
        if let Err(e) = std::fs::remove_file(&self.file) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("remove lock file {}: {e}", self.file.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[test]
    fn one_holder_at_a_time_even_across_removal() {
        let dir = tempfile::tempdir().unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let dir = dir.path().to_path_buf();
                let inside = inside.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let lock = ContainerLock::acquire(&dir, "c1").unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        if i % 2 == 0 {
                            lock.release_and_remove();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }

    #[test]
    fn containers_do_not_wait_for_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let _a = ContainerLock::acquire(dir.path(), "a").unwrap();
        let _b = ContainerLock::acquire(dir.path(), "b").unwrap();
    }
}
