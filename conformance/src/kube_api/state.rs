//! Everything the stand-in knows, behind one lock: objects, token, faults, delay, the log.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use super::discovery::ApiResource;
use super::faults::Faults;
use super::recorded::RecordedRequest;
use super::store::Store;

/// The stand-in's state. One lock for all of it keeps the request log in the order requests
/// were handled.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The objects served.
    pub(crate) store: Store,
    /// The bearer token requests must carry; `None` accepts any request.
    pub(crate) token: Option<String>,
    /// Tokens replaced by [`super::KubeApi::rotate_token`] and still accepted, as a
    /// rotated service-account token stays valid for a while.
    pub(crate) old_tokens: Vec<String>,
    /// The client certificates issued (DER) and the user each authenticates as.
    pub(crate) client_certs: HashMap<Vec<u8>, String>,
    /// Failures waiting to be injected.
    pub(crate) faults: Faults,
    /// How long every answer waits before it is sent.
    pub(crate) delay: Duration,
    /// Every request handled, in order.
    pub(crate) requests: Vec<RecordedRequest>,
    /// The kinds listed in discovery beyond the ones served.
    pub(crate) discovery: Vec<ApiResource>,
}

/// Locks the state. A test that panicked while holding the lock leaves data that is still
/// consistent (every change is one assignment), so poisoning is ignored.
pub(crate) fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}
