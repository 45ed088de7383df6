//! ADD's attachments run at once (`parallelAttachments`), each on a thread of its own, each
//! network's plugins still in their list's order; results stay in the plan's order. Off by
//! default in a plugin call (Multus's order, for delegates that expect an earlier network's
//! interface); on by default in the daemon, whose calls would otherwise wait for each slow
//! delegate (an SR-IOV or a cloud one) in turn. A failure waits for the others to finish,
//! so the rollback that follows undoes every attachment, made or half made.

use std::sync::atomic::{AtomicBool, Ordering};

use cni::Request;

use super::attachment::Attachment;
use super::config::MetaConf;
use super::error::MetaError;
use crate::delegates::Delegates;

/// The process's default when a netconf does not say.
static DEFAULT: AtomicBool = AtomicBool::new(false);

/// Sets the process's default (the daemon's `--sequential` turns it off).
pub(crate) fn set_default(parallel: bool) {
    DEFAULT.store(parallel, Ordering::Relaxed);
}

/// Whether `conf`'s ADD runs its attachments at once.
pub(crate) fn enabled(conf: &MetaConf) -> bool {
    conf.parallel_attachments
        .unwrap_or_else(|| DEFAULT.load(Ordering::Relaxed))
}

/// ADDs every attachment at once; on failure, the first failed attachment in the plan's
/// order (the one a sequential ADD would have stopped at), with its error.
pub(crate) fn add_all(
    attachments: &mut [Attachment],
    req: &Request,
    delegates: &Delegates,
) -> Result<(), (usize, MetaError)> {
    // Each thread serves the same call: its span and its variables for exec'd delegates.
    let span = tracing::Span::current();
    let vars = cni::call_env::current();
    let outcomes: Vec<Result<(), MetaError>> = std::thread::scope(|scope| {
        let running: Vec<_> = attachments
            .iter_mut()
            .map(|att| {
                let (span, vars) = (span.clone(), vars.clone());
                scope.spawn(move || {
                    let _entered = span.enter();
                    cni::call_env::with(vars, || {
                        att.add(req, delegates).map(drop).map_err(MetaError::from)
                    })
                })
            })
            .collect();
        running
            .into_iter()
            .map(|thread| {
                thread.join().unwrap_or_else(|panic| {
                    // Re-raised on this thread, where the skeleton turns it into code 100.
                    std::panic::resume_unwind(panic)
                })
            })
            .collect()
    });
    match outcomes
        .into_iter()
        .enumerate()
        .find_map(|(k, outcome)| outcome.err().map(|e| (k, e)))
    {
        Some(failed) => Err(failed),
        None => Ok(()),
    }
}
