//! A throw-away network namespace held alive by a dedicated thread.

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use nix::sched::{unshare, CloneFlags};
use nix::unistd::gettid;

use crate::error::{Error, Result};
use crate::netns::Netns;

/// A network namespace that exists only as long as this value: a helper
/// thread unshares into it and parks; dropping the value stops the thread and
/// the kernel destroys the namespace with every link in it.
///
/// Nothing is mounted and nothing touches the caller's namespace; if the
/// process dies the kernel cleans up as well. Child processes can use
/// [`PrivateNetns::path`] (e.g. as `CNI_NETNS`) while the value is alive.
#[derive(Debug)]
pub struct PrivateNetns {
    pid: u32,
    tid: i32,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl PrivateNetns {
    /// Creates a new, empty network namespace (only `lo`, down).
    pub fn new() -> Result<Self> {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<i32>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("private-netns".into())
            .spawn(move || {
                let started = unshare(CloneFlags::CLONE_NEWNET)
                    .map(|()| gettid().as_raw())
                    .map_err(|e| Error::nix("unshare network namespace", e));
                let ok = started.is_ok();
                let _ = ready_tx.send(started);
                if ok {
                    // Returns when the sender is dropped (or sends): either way
                    // the namespace owner goes away.
                    let _ = stop_rx.recv();
                }
            })
            .map_err(|e| Error::io("spawn private network namespace thread", e))?;
        let tid = match ready_rx.recv() {
            Ok(Ok(tid)) => tid,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(Error::invalid(
                    "create private network namespace",
                    "helper thread exited early",
                ));
            }
        };
        Ok(PrivateNetns {
            pid: std::process::id(),
            tid,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// `/proc/<pid>/task/<tid>/ns/net` of the helper thread: valid while this
    /// value lives, from any process that can see our /proc.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/task/{}/ns/net", self.pid, self.tid))
    }

    /// The ID of the thread holding the namespace: what `ip link ... netns <id>` (a
    /// task ID, as `IFLA_NET_NS_PID` takes) moves a link into.
    pub fn thread_id(&self) -> u32 {
        self.tid.unsigned_abs()
    }

    /// Opens a handle on the namespace. The handle keeps the namespace alive
    /// on its own, even after this value is dropped.
    pub fn netns(&self) -> Result<Netns> {
        Netns::open(&self.path())
    }
}

impl Drop for PrivateNetns {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
