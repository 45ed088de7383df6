//! `nft` processes started ahead of their batch. Starting `nft` (exec, loading its shared
//! libraries, opening its netlink socket) is most of what a small transaction costs; a caller
//! that knows a namespace will get a batch soon (the meta plugin, before it runs a pod's
//! delegates, when a policy delegate is among them) starts `nft -j -f -` there at once, and
//! the next [`apply`](super::apply) in that namespace hands its batch to the waiting process
//! instead of starting one. The transaction is the same, only its start overlaps other work.

use std::process::Child;
use std::sync::Mutex;

use crate::error::{Error, Result};

/// A namespace's identity: the (device, inode) of its nsfs file.
type NetnsKey = (u64, u64);

/// The waiting processes, by namespace (a daemon serves many pods at once).
static WAITING: Mutex<Vec<(NetnsKey, Child)>> = Mutex::new(Vec::new());

fn current_netns() -> Result<NetnsKey> {
    let path = "/proc/thread-self/ns/net";
    let st = nix::sys::stat::stat(path).map_err(|e| Error::nix(format!("stat {path}"), e))?;
    Ok((st.st_dev, st.st_ino))
}

/// An `nft -j -f -` waiting for its batch in a namespace; dropping it ends the process if
/// no batch came (it then has read nothing and changed nothing).
#[derive(Debug)]
#[must_use = "the waiting nft is ended as soon as this is dropped"]
pub struct Prestarted {
    key: NetnsKey,
}

impl Prestarted {
    /// The process's ID while it still waits for its batch; `None` once a batch took it.
    pub fn pid(&self) -> Option<u32> {
        let waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
        waiting
            .iter()
            .find(|(k, _)| *k == self.key)
            .map(|(_, child)| child.id())
    }
}

/// Starts `nft -j -f -` in the calling thread's network namespace, for the next
/// [`apply`](super::apply) there. A namespace that already has one keeps it.
pub fn prestart() -> Result<Prestarted> {
    let key = current_netns()?;
    let mut waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
    if !waiting.iter().any(|(k, _)| *k == key) {
        let child = super::spawn(&super::APPLY_ARGS)
            .map_err(|e| Error::io(format!("run {}", super::nft_program().display()), e))?;
        waiting.push((key, child));
    }
    Ok(Prestarted { key })
}

/// The process waiting in the calling thread's namespace, if any (taken: one batch each).
pub(super) fn take() -> Option<Child> {
    let mut waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
    // Most transactions have none waiting: no stat of the namespace for them.
    if waiting.is_empty() {
        return None;
    }
    let key = current_netns().ok()?;
    let at = waiting.iter().position(|(k, _)| *k == key)?;
    Some(waiting.swap_remove(at).1)
}

impl Drop for Prestarted {
    fn drop(&mut self) {
        let unused = {
            let mut waiting = WAITING.lock().unwrap_or_else(|e| e.into_inner());
            let at = waiting.iter().position(|(k, _)| *k == self.key);
            at.map(|at| waiting.swap_remove(at).1)
        };
        if let Some(mut child) = unused {
            // Killed before any input: nothing was applied. Reaped so no zombie stays.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
