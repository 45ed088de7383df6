//! What can go wrong, and the one mapping of it to CNI codes.

/// A failure of the policy delegate.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A key this plugin does not know (code 2): `path` is its JSON path.
    #[error("unknown config key {path} = {value}")]
    UnknownKey {
        /// JSON path of the key.
        path: String,
        /// Its value, as JSON.
        value: String,
    },
    /// A setting this plugin knows but does not implement (code 7).
    #[error("{path} = {value} is not supported by this delegate")]
    NotSupported {
        /// JSON path of the setting.
        path: String,
        /// Its value, as JSON.
        value: String,
    },
    /// A value that is not valid (code 7).
    #[error("invalid {path} = {value}: {why}")]
    Invalid {
        /// JSON path of the value.
        path: String,
        /// The value, as JSON.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A value of the wrong JSON type, or a caller-injected object that does not decode
    /// (code 6).
    #[error("cannot decode {path}: {source}")]
    Decode {
        /// JSON path of the value.
        path: String,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// The kernel (nft) refused or could not be run (code 100, or 5 when nft cannot be run).
    #[error("{op}: {source}")]
    Kernel {
        /// What was being done.
        op: String,
        /// The kernel crate's error, nft's stderr included.
        #[source]
        source: kernel::Error,
    },
    /// CHECK found the rules not as ADD left them (code 102).
    #[error("policy rules missing or modified on {ifname}: {what}")]
    Tampered {
        /// The interface checked.
        ifname: String,
        /// The first difference found.
        what: String,
    },
}

impl PolicyError {
    /// A code-7 error for `value` at `path`.
    pub(crate) fn invalid(
        path: impl Into<String>,
        value: impl std::fmt::Display,
        why: impl Into<String>,
    ) -> Self {
        PolicyError::Invalid {
            path: path.into(),
            value: value.to_string(),
            why: why.into(),
        }
    }
}

impl From<PolicyError> for cni::Error {
    fn from(e: PolicyError) -> Self {
        use cni::ErrorCode;
        let msg = e.to_string();
        match e {
            PolicyError::UnknownKey { path, .. } => {
                cni::Error::new(ErrorCode::UNSUPPORTED_FIELD, msg, path)
            }
            PolicyError::NotSupported { path, .. } | PolicyError::Invalid { path, .. } => {
                cni::Error::new(ErrorCode::INVALID_NETWORK_CONFIG, msg, path)
            }
            PolicyError::Decode { path, .. } => {
                cni::Error::new(ErrorCode::DECODING_FAILURE, msg, path)
            }
            PolicyError::Kernel { op, source } => {
                // nft missing or not runnable is an I/O failure; anything nft said is the
                // kernel's (or nft's) refusal.
                let code = match source {
                    kernel::Error::Io { .. } => ErrorCode::IO_FAILURE,
                    _ => ErrorCode::INTERNAL,
                };
                cni::Error::new(code, op, source.to_string())
            }
            PolicyError::Tampered { ifname, what } => cni::Error::new(
                ErrorCode::CHECK_FAILED,
                format!("policy rules missing or modified on {ifname}"),
                what,
            ),
        }
    }
}
