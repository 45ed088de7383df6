//! Transactions started ahead of the code that asks for them. Most of what a small
//! transaction costs is `nft` itself (exec, its libraries, parsing the JSON, the commit);
//! a caller that knows a batch before the code that applies it runs (the meta plugin knows
//! a policy delegate's batch before the pod's interfaces exist) [`spawn`]s nft in the
//! namespace as early as it can and gives it the batch at once with [`Spawned::start`];
//! the next [`apply`](super::apply) of that same batch in that namespace waits for it
//! instead of running it again. Any other batch runs as always.
//!
//! A batch started ahead may end up unasked for (the code that would have applied it failed
//! first): [`Ahead::settle`] says so, and the caller undoes it.

use std::io::Write as _;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;

use nftables::batch::Batch;

use crate::error::{Error, Result};

/// A namespace's identity: the (device, inode) of its nsfs file.
type NetnsKey = (u64, u64);

/// A transaction under way: the process and the thread writing its batch to it (a batch
/// can outgrow a pipe's buffer, and the caller has other work meanwhile).
pub(super) struct Running {
    pub(super) child: Child,
    pub(super) writer: JoinHandle<std::io::Result<()>>,
}

/// A transaction started ahead, not yet claimed: its namespace and its batch as nft reads
/// it, which a claim must match exactly.
struct Started {
    id: u64,
    key: NetnsKey,
    payload: Vec<u8>,
    running: Running,
    op: String,
}

/// The transactions started ahead and not yet claimed (a daemon serves many pods at once).
static STARTED: Mutex<Vec<Started>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn current_netns() -> Result<NetnsKey> {
    let path = "/proc/thread-self/ns/net";
    let st = nix::sys::stat::stat(path).map_err(|e| Error::nix(format!("stat {path}"), e))?;
    Ok((st.st_dev, st.st_ino))
}

fn started() -> std::sync::MutexGuard<'static, Vec<Started>> {
    STARTED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A transaction started ahead by [`Spawned::start`]. Dropping it waits for the process, so nothing
/// applies after its owner moved on; [`settle`](Ahead::settle) also says what became of it.
#[derive(Debug)]
#[must_use = "a transaction started ahead is settled (or waited for when dropped)"]
pub struct Ahead {
    id: u64,
}

/// What became of a transaction started ahead.
#[derive(Debug)]
pub enum Settled {
    /// An [`apply`](super::apply) of the same batch took it and reported its outcome.
    Claimed,
    /// Nothing asked for it; it ran to this outcome all the same.
    Unclaimed(Result<()>),
}

/// An `nft -j -f -` started in a namespace and not yet given a batch: the process start
/// (exec, its libraries) overlaps whatever the caller does before it has one, such as
/// rendering the batch or writing the state that must precede any change. Dropped before
/// [`start`](Spawned::start), it is killed: it read nothing, so nothing applied.
#[derive(Debug)]
#[must_use = "a spawned nft is given its batch with start, or killed when dropped"]
pub struct Spawned {
    key: NetnsKey,
    op: String,
    child: Option<Child>,
}

/// Starts `nft -j -f -` in the calling thread's namespace for the transaction `op`
/// describes (in its errors); the batch follows with [`Spawned::start`], from any thread.
pub fn spawn(op: &str) -> Result<Spawned> {
    let key = current_netns()?;
    let child = super::spawn(&super::APPLY_ARGS)
        .map_err(|e| Error::io(format!("{op}: run {}", super::nft_program().display()), e))?;
    Ok(Spawned {
        key,
        op: op.to_string(),
        child: Some(child),
    })
}

impl Spawned {
    /// Gives `batch` to the process as one transaction and returns at once. The next
    /// [`apply`](super::apply) of the same batch in the namespace the process was spawned
    /// in claims it.
    pub fn start(mut self, batch: Batch<'_>) -> Result<Ahead> {
        let op = std::mem::take(&mut self.op);
        let payload = super::payload(batch, &op)?;
        let mut child = self.child.take().expect("a spawned nft is started once");
        let mut stdin = child.stdin.take().expect("nft's stdin is piped");
        let fed = payload.clone();
        let writer = std::thread::Builder::new()
            .name("nft-ahead".into())
            .spawn(move || stdin.write_all(&fed));
        let writer = match writer {
            Ok(writer) => writer,
            Err(e) => {
                // Killed before any input: nothing was applied.
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::io(format!("{op}: start the thread feeding nft"), e));
            }
        };
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        started().push(Started {
            id,
            key: self.key,
            payload,
            running: Running { child, writer },
            op,
        });
        Ok(Ahead { id })
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The transaction started ahead with exactly `payload` in the calling thread's namespace,
/// if any, taken out (one claim each) for [`apply`](super::apply) to wait for.
pub(super) fn claim(payload: &[u8]) -> Option<Running> {
    let mut started = started();
    // Most transactions have none started ahead: no stat of the namespace for them.
    if started.is_empty() {
        return None;
    }
    let key = current_netns().ok()?;
    let at = started
        .iter()
        .position(|s| s.key == key && s.payload == payload)?;
    Some(started.swap_remove(at).running)
}

impl Ahead {
    /// Waits for the transaction unless an [`apply`](super::apply) claimed it; says what
    /// became of it.
    pub fn settle(self) -> Settled {
        match self.take() {
            None => Settled::Claimed,
            Some(s) => Settled::Unclaimed(super::finish(s.running, &s.op)),
        }
    }

    fn take(&self) -> Option<Started> {
        let mut started = started();
        let at = started.iter().position(|s| s.id == self.id)?;
        Some(started.swap_remove(at))
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        if let Some(s) = self.take() {
            let _ = super::finish(s.running, &s.op);
        }
    }
}
