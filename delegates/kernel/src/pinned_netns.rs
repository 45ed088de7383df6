//! A network namespace bind-mounted on a file, like `ip netns add`.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::error::{Error, Result};
use crate::netns::Netns;

/// A network namespace that outlives the process: it is kept alive by a bind
/// mount of its nsfs file onto a regular file. [`PinnedNetns::remove`] (or,
/// best effort, drop) unmounts and deletes the file.
///
/// Unlike `ip netns add`, the parent directory is not made a shared mount:
/// callers that need mount propagation into other mount namespaces must set
/// that up themselves.
#[derive(Debug)]
pub struct PinnedNetns {
    path: PathBuf,
    removed: bool,
}

impl PinnedNetns {
    /// Creates `path` (which must not exist) and pins a new, empty network
    /// namespace on it.
    pub fn create(path: &Path) -> Result<Self> {
        let op = format!("create pinned network namespace {}", path.display());
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| Error::io(op.clone(), e))?;
        // Unshare in a short-lived thread so the caller's thread never leaves
        // its namespace; the mount is per mount namespace, shared by threads.
        let target = path.to_owned();
        let mounted = std::thread::Builder::new()
            .name("pin-netns".into())
            .spawn(move || -> std::result::Result<(), nix::Error> {
                unshare(CloneFlags::CLONE_NEWNET)?;
                mount(
                    Some("/proc/thread-self/ns/net"),
                    &target,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
            })
            .map_err(|e| Error::io(op.clone(), e))?
            .join();
        let result = match mounted {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::nix(op, e)),
            Err(_) => Err(Error::invalid(op, "helper thread panicked")),
        };
        if let Err(e) = result {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        Ok(PinnedNetns {
            path: path.to_owned(),
            removed: false,
        })
    }

    /// The file the namespace is pinned on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a handle on the namespace.
    pub fn netns(&self) -> Result<Netns> {
        Netns::open(&self.path)
    }

    /// Unmounts and deletes the file; the namespace goes away once nothing
    /// else (processes, open handles) refers to it.
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        unpin(&self.path)
    }
}

fn unpin(path: &Path) -> Result<()> {
    // MNT_DETACH: succeed even if something still has the file open.
    umount2(path, MntFlags::MNT_DETACH)
        .map_err(|e| Error::nix(format!("unmount network namespace {}", path.display()), e))?;
    std::fs::remove_file(path).map_err(|e| {
        Error::io(
            format!("remove network namespace file {}", path.display()),
            e,
        )
    })
}

impl Drop for PinnedNetns {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = unpin(&self.path) {
                tracing::warn!("{e}");
            }
        }
    }
}
