//! The crate's error type: every variant names the operation that failed.

use std::fmt;

use nix::errno::Errno;

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// An error from a kernel operation, carrying a description of what was being
/// done (e.g. `create veth vethab12 (peer eth0)`).
#[derive(thiserror::Error, Debug)]
pub enum Error {
    /// The kernel rejected a netlink request.
    #[error("{op}: {}{}", std::io::Error::from_raw_os_error(*errno), KernelMsg(msg.as_deref()))]
    Netlink {
        /// What was being done.
        op: String,
        /// Positive errno reported by the kernel.
        errno: i32,
        /// The kernel's extended-ack message, when it sent one.
        msg: Option<String>,
    },
    /// A system call made through the standard library failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A system call made through nix failed.
    #[error("{op}: {source}")]
    Nix {
        /// What was being done.
        op: String,
        /// The underlying error.
        #[source]
        source: nix::Error,
    },
    /// A kernel reply could not be decoded.
    #[error("{op}: cannot decode kernel reply: {msg}")]
    Decode {
        /// What was being done.
        op: String,
        /// Why decoding failed.
        msg: String,
    },
    /// The caller passed an argument the operation cannot accept, or the
    /// object found is not of the expected kind.
    #[error("{op}: {msg}")]
    Invalid {
        /// What was being done.
        op: String,
        /// What is wrong.
        msg: String,
    },
}

/// Formats the optional kernel extended-ack message as a suffix.
struct KernelMsg<'a>(Option<&'a str>);

impl fmt::Display for KernelMsg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(m) if !m.is_empty() => write!(f, " (kernel: {m})"),
            _ => Ok(()),
        }
    }
}

impl Error {
    /// The errno behind this error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error(),
            Error::Nix { source, .. } => Some(*source as i32),
            Error::Decode { .. } | Error::Invalid { .. } => None,
        }
    }

    /// True when the object acted on does not exist: ENOENT, ENODEV, ESRCH,
    /// and EADDRNOTAVAIL (what the kernel answers when deleting an address
    /// that is not there). Lets CNI DEL treat "already gone" as success.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno().map(Errno::from_raw),
            Some(Errno::ENOENT | Errno::ENODEV | Errno::ESRCH | Errno::EADDRNOTAVAIL)
        )
    }

    /// True when the object being created already exists (EEXIST).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(Errno::EEXIST as i32)
    }

    pub(crate) fn io(op: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            op: op.into(),
            source,
        }
    }

    pub(crate) fn nix(op: impl Into<String>, source: nix::Error) -> Self {
        Error::Nix {
            op: op.into(),
            source,
        }
    }

    pub(crate) fn invalid(op: impl Into<String>, msg: impl Into<String>) -> Self {
        Error::Invalid {
            op: op.into(),
            msg: msg.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netlink_error_names_the_operation() {
        let e = Error::Netlink {
            op: "create veth vethab12 (peer eth0)".into(),
            errno: 17,
            msg: None,
        };
        assert_eq!(
            e.to_string(),
            "create veth vethab12 (peer eth0): File exists (os error 17)"
        );
        assert!(e.is_exists());
        assert!(!e.is_not_found());
        let e = Error::Netlink {
            op: "delete link 7".into(),
            errno: 19,
            msg: Some("Unknown device".into()),
        };
        assert!(e.is_not_found());
        assert!(e.to_string().ends_with("(kernel: Unknown device)"));
    }
}
