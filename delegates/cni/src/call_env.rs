//! Variables a call hands on to the plugins it execs beyond its `CNI_*` ones, such as the
//! runtime's trace context (`TRACEPARENT`). An exec'd plugin passes on its own environment,
//! as libcni gives every plugin the runtime's; a process that serves many calls (a daemon)
//! sets them per call, for the thread serving it (and the threads that call starts).

use std::cell::RefCell;

thread_local! {
    static VARS: RefCell<Vec<(String, String)>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with `vars` as this thread's call variables, restoring the previous ones after.
pub fn with<R>(vars: Vec<(String, String)>, f: impl FnOnce() -> R) -> R {
    let previous = VARS.with(|v| std::mem::replace(&mut *v.borrow_mut(), vars));
    // Restored on unwind too, so a panicking call leaves nothing to the next.
    struct Restore(Option<Vec<(String, String)>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(previous) = self.0.take() {
                VARS.with(|v| *v.borrow_mut() = previous);
            }
        }
    }
    let _restore = Restore(Some(previous));
    f()
}

/// This thread's call variables (to hand to a thread the call starts).
pub fn current() -> Vec<(String, String)> {
    VARS.with(|v| v.borrow().clone())
}

/// The call's value of `key`: this thread's call variables, else the process environment.
pub fn var(key: &str) -> Option<String> {
    VARS.with(|v| {
        v.borrow()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, value)| value.clone())
    })
    .or_else(|| std::env::var(key).ok())
    .filter(|value| !value.is_empty())
}

/// The trace ID of the call's W3C trace context (`TRACEPARENT`:
/// `<version>-<32 hex trace ID>-<16 hex parent ID>-<2 hex flags>`), if it has a valid one.
pub fn trace_id() -> Option<String> {
    let parent = var("TRACEPARENT")?;
    let parts: Vec<&str> = parent.split('-').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = parts.len() >= 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && parts[1] != "0".repeat(32)
        && hex(parts[2], 16)
        && hex(parts[3], 2);
    valid.then(|| parts[1].to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_for_a_call_and_restored() {
        assert_eq!(current(), Vec::new());
        let inner = with(vec![("TRACEPARENT".into(), "00-a-b-01".into())], || {
            assert_eq!(var("TRACEPARENT").as_deref(), Some("00-a-b-01"));
            with(Vec::new(), current)
        });
        assert!(inner.is_empty());
        assert_eq!(current(), Vec::new());
        let unwound = std::panic::catch_unwind(|| {
            with(vec![("X".into(), "1".into())], || panic!("boom"));
        });
        assert!(unwound.is_err());
        assert_eq!(current(), Vec::new());
    }

    #[test]
    fn trace_ids() {
        let ok = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let id = with(vec![("TRACEPARENT".into(), ok.into())], trace_id);
        assert_eq!(id.as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "nonsense",
        ] {
            let id = with(vec![("TRACEPARENT".into(), bad.into())], trace_id);
            assert_eq!(id, None, "{bad}");
        }
    }
}
