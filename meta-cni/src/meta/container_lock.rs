//! One container's calls, one at a time: ADD, DEL, CHECK and GC of a container hold an
//! exclusive lock from before they read its cache until they return, so two racing ADDs
//! cannot both report success, and an ADD racing a DEL ends with either nothing or an
//! attachment that CHECK passes.
//!
//! The lock is one byte, chosen by a hash of the container ID, of one file,
//! `<cniDir>/meta-cni.lock`, locked with an open-file-description lock (`F_OFD_SETLKW`):
//! nothing is created or removed per container (a file per container costs the filesystem
//! an inode on every ADD and DEL), and containers whose IDs share a byte merely take turns.
//! The kernel drops the lock when the process dies, as with `flock`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;
use sha2::{Digest, Sha256};

use super::cache;
use super::error::LockError;

/// The lock file, in `cniDir`; it is never removed.
pub(crate) const LOCK_FILE: &str = "meta-cni.lock";

/// An exclusive lock on one container; released on drop (the file's closing releases it).
#[derive(Debug)]
pub(crate) struct ContainerLock {
    _file: File,
}

/// The byte of the lock file that stands for `container_id`.
fn byte_of(container_id: &str) -> i64 {
    let digest = Sha256::digest(container_id.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // Any non-negative offset works: the file need not be that long.
    (u64::from_le_bytes(first) >> 2) as i64
}

impl ContainerLock {
    /// Waits for and takes the lock of `container_id` in `dir`, making the directory (0700)
    /// and the lock file (0600) if needed.
    pub(crate) fn acquire(dir: &Path, container_id: &str) -> Result<ContainerLock, LockError> {
        cache::ensure_dir(dir)?;
        let path = dir.join(LOCK_FILE);
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
        let range = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: byte_of(container_id),
            l_len: 1,
            l_pid: 0,
        };
        loop {
            match fcntl(&file, FcntlArg::F_OFD_SETLKW(&range)) {
                Ok(_) => return Ok(ContainerLock { _file: file }),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    return Err(LockError::Lock {
                        path,
                        source: e.into(),
                    })
                }
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
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let inside = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let dir = dir.path().to_path_buf();
                let inside = inside.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let lock = ContainerLock::acquire(&dir, "c1").unwrap();
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "thread {i}");
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(lock);
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
