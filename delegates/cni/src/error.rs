//! The CNI error object and the one mapping of failures to the spec's error codes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::version::{Incompatible, Version};

/// A CNI error code (SPEC.md "Error"): 1-99 are the spec's, 100 and up are ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// 1: incompatible CNI version.
    pub const INCOMPATIBLE_VERSION: ErrorCode = ErrorCode(1);
    /// 2: unsupported field in network configuration.
    pub const UNSUPPORTED_FIELD: ErrorCode = ErrorCode(2);
    /// 3: container unknown or does not exist.
    pub const UNKNOWN_CONTAINER: ErrorCode = ErrorCode(3);
    /// 4: invalid necessary environment variables.
    pub const INVALID_ENVIRONMENT: ErrorCode = ErrorCode(4);
    /// 5: I/O failure.
    pub const IO_FAILURE: ErrorCode = ErrorCode(5);
    /// 6: failed to decode content.
    pub const DECODING_FAILURE: ErrorCode = ErrorCode(6);
    /// 7: invalid network config.
    pub const INVALID_NETWORK_CONFIG: ErrorCode = ErrorCode(7);
    /// 11: try again later.
    pub const TRY_AGAIN_LATER: ErrorCode = ErrorCode(11);
    /// 50: the plugin is not available (STATUS).
    pub const PLUGIN_NOT_AVAILABLE: ErrorCode = ErrorCode(50);
    /// 51: the plugin is not available, existing containers may have limited connectivity (STATUS).
    pub const LIMITED_CONNECTIVITY: ErrorCode = ErrorCode(51);
    /// 100: an internal failure of ours (a bug, or a panic caught at the boundary).
    pub const INTERNAL: ErrorCode = ErrorCode(100);
    /// 101: a delegate plugin failed without a usable error object.
    pub const DELEGATE_FAILED: ErrorCode = ErrorCode(101);
    /// 102: CHECK found the attachment not as ADD left it.
    pub const CHECK_FAILED: ErrorCode = ErrorCode(102);
    /// 103: the Kubernetes API refused a request (not a transient failure: those are 11).
    pub const KUBERNETES_API: ErrorCode = ErrorCode(103);
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A CNI error: what a plugin prints on stdout, with a non-zero exit, when a verb fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub struct Error {
    /// The error code.
    pub code: ErrorCode,
    /// A short message.
    pub msg: String,
    /// Longer details: the offending value, the underlying cause.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.details.is_empty() {
            write!(f, "{}", self.msg)
        } else {
            write!(f, "{}: {}", self.msg, self.details)
        }
    }
}

/// The error object on the wire, labelled with the version of the request.
#[derive(Serialize)]
struct WireError<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: Version,
    #[serde(flatten)]
    error: &'a Error,
}

impl Error {
    /// An error with the given code, message and details.
    pub fn new(code: ErrorCode, msg: impl Into<String>, details: impl Into<String>) -> Self {
        Error {
            code,
            msg: msg.into(),
            details: details.into(),
        }
    }

    /// Code 1, naming the version asked for and the ones supported.
    pub fn incompatible_version(asked: &str, supported: &[Version]) -> Self {
        let list: Vec<String> = supported
            .iter()
            .map(|v| format!("{:?}", v.as_str()))
            .collect();
        Error::new(
            ErrorCode::INCOMPATIBLE_VERSION,
            "incompatible CNI versions",
            format!("config is {asked:?}, plugin supports [{}]", list.join(", ")),
        )
    }

    /// Code 4: a bad or missing `CNI_*` variable.
    pub fn environment(msg: impl Into<String>, details: impl Into<String>) -> Self {
        Error::new(ErrorCode::INVALID_ENVIRONMENT, msg, details)
    }

    /// Code 5: an I/O failure while doing `what`.
    pub fn io(what: impl Into<String>, cause: impl fmt::Display) -> Self {
        Error::new(ErrorCode::IO_FAILURE, what, cause.to_string())
    }

    /// Code 6: input that does not decode.
    pub fn decoding(what: impl Into<String>, cause: impl fmt::Display) -> Self {
        Error::new(ErrorCode::DECODING_FAILURE, what, cause.to_string())
    }

    /// Code 7: an invalid network configuration; `field` and `value` are named in the message.
    pub fn invalid_config(field: &str, value: impl fmt::Display, why: impl fmt::Display) -> Self {
        Error::new(
            ErrorCode::INVALID_NETWORK_CONFIG,
            format!("invalid {field} {:?}", value.to_string()),
            why.to_string(),
        )
    }

    /// Opening the container's network namespace `path` failed: code 3 when it does not
    /// exist (`missing`), else code 5.
    pub fn netns(path: &std::path::Path, missing: bool, cause: impl fmt::Display) -> Self {
        let code = if missing {
            ErrorCode::UNKNOWN_CONTAINER
        } else {
            ErrorCode::IO_FAILURE
        };
        Error::new(
            code,
            format!("open netns {}", path.display()),
            cause.to_string(),
        )
    }

    /// Code 100: something that should not happen.
    pub fn internal(what: impl Into<String>, cause: impl fmt::Display) -> Self {
        Error::new(ErrorCode::INTERNAL, what, cause.to_string())
    }

    /// Prefixes the message with context (e.g. the network a delegate belongs to).
    pub fn context(mut self, prefix: impl fmt::Display) -> Self {
        self.msg = format!("{prefix}: {}", self.msg);
        self
    }

    /// The error object as printed on stdout for a request of `version`.
    pub fn to_json(&self, version: Version) -> String {
        serde_json::to_string(&WireError {
            cni_version: version,
            error: self,
        })
        .expect("an error object always serializes")
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::io("I/O failure", e)
    }
}

impl From<Incompatible> for Error {
    fn from(e: Incompatible) -> Self {
        Error::incompatible_version(&e.asked, &e.supported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        insta::assert_snapshot!(
            "error_incompatible",
            Error::incompatible_version("9.9.9", &Version::ALL).to_json(Version::LATEST)
        );
        insta::assert_snapshot!(
            "error_environment",
            Error::environment(
                "required env variables missing",
                "CNI_NETNS, CNI_IFNAME, CNI_PATH"
            )
            .to_json(Version::V1_0_0)
        );
        insta::assert_snapshot!(
            "error_invalid_config",
            Error::invalid_config("name", "a/b", "must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
                .to_json(Version::V0_4_0)
        );
        insta::assert_snapshot!(
            "error_without_details",
            Error::new(ErrorCode::TRY_AGAIN_LATER, "busy", "").to_json(Version::V0_2_0)
        );
    }

    #[test]
    fn parses_foreign_error_objects() {
        let e: Error =
            serde_json::from_str(r#"{"cniVersion":"1.0.0","code":7,"msg":"bad","details":"x"}"#)
                .unwrap();
        assert_eq!(e, Error::new(ErrorCode(7), "bad", "x"));
        let e: Error = serde_json::from_str(r#"{"code":999,"msg":"boom"}"#).unwrap();
        assert_eq!(e.code, ErrorCode(999));
        assert_eq!(e.to_string(), "boom");
    }

    #[test]
    fn context_prefixes_message() {
        let e = Error::io("open", "denied").context("network \"net1\"");
        assert_eq!(e.to_string(), "network \"net1\": open: denied");
    }
}
