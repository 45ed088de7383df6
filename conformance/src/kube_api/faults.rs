//! Injected failures: the next N requests, or the next N requests under a path, answered
//! with an error status instead of being served.

use std::collections::VecDeque;

/// Failures waiting to be handed out, in the order they were asked for.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// One status code per request still to fail, whatever its path.
    next: VecDeque<u16>,
    /// Failures for requests whose path starts with a prefix.
    paths: Vec<PathFault>,
}

/// `remaining` more requests under `prefix` fail with `status`.
#[derive(Debug)]
struct PathFault {
    prefix: String,
    status: u16,
    remaining: usize,
}

/// Panics unless `status` is an HTTP error status: anything else is not a fault.
fn check_status(status: u16) {
    assert!(
        (400..=599).contains(&status),
        "an injected fault needs an error status (400-599), not {status}"
    );
}

impl Faults {
    /// The next `count` requests fail with `status` (after any failures already queued).
    pub(crate) fn fail_next(&mut self, count: usize, status: u16) {
        check_status(status);
        self.next.extend(std::iter::repeat_n(status, count));
    }

    /// The next `count` requests whose path starts with `prefix` fail with `status`.
    pub(crate) fn fail_path(&mut self, prefix: &str, status: u16, count: usize) {
        check_status(status);
        if count > 0 {
            self.paths.push(PathFault {
                prefix: prefix.to_owned(),
                status,
                remaining: count,
            });
        }
    }

    /// Forgets every pending failure.
    pub(crate) fn clear(&mut self) {
        self.next.clear();
        self.paths.clear();
    }

    /// The status a request for `path` must fail with, if any; consumes that failure.
    /// Failures from [`Faults::fail_next`] come first, then the oldest matching path rule.
    pub(crate) fn take(&mut self, path: &str) -> Option<u16> {
        if let Some(status) = self.next.pop_front() {
            return Some(status);
        }
        let index = self
            .paths
            .iter()
            .position(|rule| path.starts_with(&rule.prefix))?;
        let rule = &mut self.paths[index];
        let status = rule.status;
        rule.remaining -= 1;
        if rule.remaining == 0 {
            self.paths.remove(index);
        }
        Some(status)
    }
}

#[cfg(test)]
mod tests {
    use super::Faults;

    #[test]
    fn next_before_paths_then_paths_by_prefix() {
        let mut faults = Faults::default();
        faults.fail_path("/apis/", 500, 2);
        faults.fail_next(1, 503);
        assert_eq!(faults.take("/api/v1/x"), Some(503));
        assert_eq!(faults.take("/api/v1/x"), None);
        assert_eq!(faults.take("/apis/k8s.cni.cncf.io/v1"), Some(500));
        assert_eq!(faults.take("/apis/k8s.cni.cncf.io/v1"), Some(500));
        assert_eq!(faults.take("/apis/k8s.cni.cncf.io/v1"), None);
    }

    #[test]
    #[should_panic(expected = "error status")]
    fn refuses_a_success_status() {
        Faults::default().fail_next(1, 200);
    }
}
