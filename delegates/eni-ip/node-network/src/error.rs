//! What can go wrong setting the node's network up.

/// A failure of the node-wide datapath, naming what was being done.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A kernel operation failed.
    #[error("{doing}")]
    Kernel {
        /// What was being done.
        doing: String,
        /// The kernel's error.
        #[source]
        source: kernel::Error,
    },
    /// No link carries the ENI's MAC (yet: a just-attached ENI takes a moment to appear).
    #[error("no network interface has the MAC {mac} of ENI {eni}")]
    NoLinkWithMac {
        /// The ENI.
        eni: String,
        /// Its MAC.
        mac: String,
    },
}

impl Error {
    /// Wraps a kernel error with what was being done.
    pub(crate) fn kernel(doing: impl Into<String>) -> impl FnOnce(kernel::Error) -> Error {
        let doing = doing.into();
        move |source| Error::Kernel { doing, source }
    }
}
