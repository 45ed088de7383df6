//! Handles on network namespaces and a guard that enters one for the calling
//! thread.

use std::fs::File;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};
use nix::sys::stat::fstat;
use nix::sys::statfs::{fstatfs, NSFS_MAGIC};

use crate::error::{Error, Result};

/// Path of the calling thread's network namespace. `thread-self` rather than
/// `self`: namespaces are per thread, and `self` names the main thread's.
const THREAD_SELF_NET: &str = "/proc/thread-self/ns/net";

/// Refuses an nsfs file descriptor that is known to be another kind of namespace.
///
/// The `/proc/self/fd` link of a /proc namespace file names its type (`uts:[4026531838]`),
/// which costs one readlink (the NS_GET_NSTYPE ioctl would need unsafe code). A
/// bind-mounted file (`ip netns add`, what runtimes pass) shows its mount path instead: it
/// passes here, and entering it (`setns` with `CLONE_NEWNET`) refuses any other type.
fn check_net_type(fd: &OwnedFd) -> std::result::Result<(), String> {
    let Ok(link) = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) else {
        return Ok(());
    };
    match link.to_string_lossy().split_once(":[") {
        Some((kind, _)) if kind != "net" => Err(format!("not a network namespace ({kind})")),
        _ => Ok(()),
    }
}

/// An open network namespace (owns a file descriptor on its nsfs inode, which
/// keeps the namespace alive while the handle exists).
#[derive(Debug)]
pub struct Netns {
    fd: OwnedFd,
    path: PathBuf,
}

impl Netns {
    /// Opens the network namespace at `path` (e.g. `/proc/<pid>/ns/net`,
    /// `/run/netns/<name>`, a CNI_NETNS value).
    ///
    /// Fails with an error whose [`Error::is_not_found`] is true when the
    /// path does not exist (CNI DEL treats that as success), and with
    /// [`Error::Invalid`] when the file is not a network namespace.
    pub fn open(path: &Path) -> Result<Netns> {
        let op = || format!("open network namespace {}", path.display());
        let file = File::open(path).map_err(|e| Error::io(op(), e))?;
        let fd = OwnedFd::from(file);
        let fs = fstatfs(&fd).map_err(|e| Error::nix(op(), e))?;
        if fs.filesystem_type() != NSFS_MAGIC {
            return Err(Error::invalid(op(), "not a namespace file (nsfs)"));
        }
        check_net_type(&fd).map_err(|msg| Error::invalid(op(), msg))?;
        Ok(Netns {
            fd,
            path: path.to_owned(),
        })
    }

    /// Opens the calling thread's current network namespace. Not checked as [`Netns::open`]
    /// checks a path it is given: this one is the thread's own network namespace by
    /// definition, and every namespace switch opens it (two syscalls fewer each time).
    pub fn current() -> Result<Netns> {
        let path = Path::new(THREAD_SELF_NET);
        let file = File::open(path).map_err(|e| Error::io(format!("open {THREAD_SELF_NET}"), e))?;
        Ok(Netns {
            fd: OwnedFd::from(file),
            path: path.to_owned(),
        })
    }

    /// The path this namespace was opened from (informational: for
    /// [`Netns::current`] it is the `/proc/thread-self` alias).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Borrows the namespace file descriptor.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// True when both handles refer to the same namespace (same nsfs inode).
    pub fn same_as(&self, other: &Netns) -> Result<bool> {
        let a =
            fstat(&self.fd).map_err(|e| Error::nix(format!("stat {}", self.path.display()), e))?;
        let b = fstat(&other.fd)
            .map_err(|e| Error::nix(format!("stat {}", other.path.display()), e))?;
        Ok(a.st_dev == b.st_dev && a.st_ino == b.st_ino)
    }

    /// Moves the calling thread into this namespace until the returned guard
    /// is dropped. Namespaces are per thread: other threads are unaffected,
    /// and the guard cannot be sent to another thread.
    pub fn enter(&self) -> Result<NetnsGuard> {
        let original = Netns::current()?;
        setns(&self.fd, CloneFlags::CLONE_NEWNET).map_err(|e| {
            Error::nix(
                format!("enter network namespace {}", self.path.display()),
                e,
            )
        })?;
        Ok(NetnsGuard {
            original,
            _not_send: PhantomData,
        })
    }

    /// Runs `f` with the calling thread inside this namespace, restoring the
    /// original namespace afterwards (also when `f` panics).
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> Result<R> {
        let _guard = self.enter()?;
        Ok(f())
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Keeps the calling thread in a network namespace; dropping it (normal
/// return, early return or unwinding panic) moves the thread back to the
/// namespace it was in when [`Netns::enter`] was called.
///
/// Per thread: the guard is `!Send`, so it is always dropped on the thread
/// that entered.
#[derive(Debug)]
#[must_use = "the namespace is left as soon as the guard is dropped"]
pub struct NetnsGuard {
    original: Netns,
    // A raw pointer makes the guard !Send and !Sync: setns acts on the
    // current thread, so restoring from another thread would be wrong.
    _not_send: PhantomData<*const ()>,
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Err(e) = setns(&self.original.fd, CloneFlags::CLONE_NEWNET) {
            // A thread left in the wrong namespace would silently configure
            // the wrong network; fail loudly unless already unwinding.
            tracing::error!("cannot restore network namespace: {e}");
            if !std::thread::panicking() {
                panic!("cannot restore the thread's original network namespace: {e}");
            }
        }
    }
}
