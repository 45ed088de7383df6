//! The shim-daemon protocol: one exchange per connection on the daemon's Unix socket. The
//! shim sends one [`CallRequest`] (the call as the runtime made it: its environment and its
//! stdin) and closes its write side; the daemon answers one [`CallReply`] (what the plugin
//! prints and how it exits, byte for byte) and closes. Both are JSON, each at most
//! [`MAX_MESSAGE`] bytes; the protocol version is checked on every request.

use std::collections::BTreeMap;
use std::ffi::OsString;

use serde::{Deserialize, Serialize};

/// The version both ends must speak.
pub(crate) const PROTOCOL_VERSION: u32 = 1;

/// The largest request or reply (a netconf, a result).
pub(crate) const MAX_MESSAGE: u64 = 4 << 20;

/// The variables of a call that reach the daemon beside [`cni::CALL_VARS`]: the trace
/// context a runtime may pass. Nothing else of the runtime's environment is read.
pub(crate) const TRACE_VARS: &[&str] = &["TRACEPARENT", "TRACESTATE"];

/// One variable's value as the runtime set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum EnvValue {
    /// UTF-8 text.
    Text(String),
    /// Bytes that are not UTF-8, shown lossily: the daemon refuses them exactly as the
    /// plugin refuses its own environment's (code 4 naming the variable).
    NotUtf8(String),
}

/// A call, forwarded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallRequest {
    /// [`PROTOCOL_VERSION`] of the shim.
    pub(crate) protocol: u32,
    /// The [`cni::CALL_VARS`] and [`TRACE_VARS`] that were set.
    pub(crate) env: BTreeMap<String, EnvValue>,
    /// The netconf, as the runtime wrote it (the shim only forwards what parsed as JSON).
    pub(crate) stdin: String,
}

/// The daemon's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) enum CallReply {
    /// The call ran: print `stdout` and exit with `exit_code`.
    #[serde(rename_all = "camelCase")]
    Served {
        /// The one JSON object for stdout (empty when the verb prints nothing).
        stdout: String,
        /// The exit code.
        exit_code: u8,
    },
    /// The daemon did not run the call (another protocol version, a request it could not
    /// read): the shim may serve it itself.
    Refused {
        /// The daemon's protocol version.
        protocol: u32,
        /// Why.
        why: String,
    },
}

impl CallRequest {
    /// The call this process was given: its [`cni::CALL_VARS`], [`TRACE_VARS`] and `stdin`.
    pub(crate) fn from_process(stdin: String) -> CallRequest {
        let env = cni::CALL_VARS
            .iter()
            .chain(TRACE_VARS)
            .filter_map(|key| {
                let value = std::env::var_os(key)?;
                Some((key.to_string(), EnvValue::from(value)))
            })
            .collect();
        CallRequest {
            protocol: PROTOCOL_VERSION,
            env,
            stdin,
        }
    }
}

impl From<OsString> for EnvValue {
    fn from(value: OsString) -> EnvValue {
        match value.into_string() {
            Ok(text) => EnvValue::Text(text),
            Err(raw) => EnvValue::NotUtf8(raw.to_string_lossy().into_owned()),
        }
    }
}

/// The request's environment, read as a plugin reads its own process's.
impl cni::EnvSource for CallRequest {
    fn var(&self, key: &str) -> Result<Option<String>, cni::Error> {
        match self.env.get(key) {
            None => Ok(None),
            Some(EnvValue::Text(text)) => Ok(Some(text.clone()).filter(|v| !v.is_empty())),
            Some(EnvValue::NotUtf8(lossy)) => Err(cni::Error::environment(
                format!("{key} is not valid UTF-8"),
                format!("{key}={lossy}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni::EnvSource;
    use std::os::unix::ffi::OsStringExt;

    #[test]
    fn the_environment_reads_as_the_process_one() {
        let mut env = BTreeMap::new();
        env.insert("CNI_IFNAME".into(), EnvValue::Text("eth0".into()));
        env.insert("CNI_ARGS".into(), EnvValue::Text(String::new()));
        env.insert(
            "CNI_NETNS".into(),
            EnvValue::from(OsString::from_vec(vec![b'/', 0xff])),
        );
        let req = CallRequest {
            protocol: PROTOCOL_VERSION,
            env,
            stdin: "{}".into(),
        };
        assert_eq!(req.var("CNI_IFNAME").unwrap().as_deref(), Some("eth0"));
        assert_eq!(req.var("CNI_ARGS").unwrap(), None, "empty is unset");
        assert_eq!(req.var("CNI_PATH").unwrap(), None);
        let e = req.var("CNI_NETNS").unwrap_err();
        assert_eq!(e.code, cni::ErrorCode::INVALID_ENVIRONMENT);
        assert!(req.is_set("CNI_NETNS"));
        let wire = serde_json::to_string(&req).unwrap();
        assert_eq!(serde_json::from_str::<CallRequest>(&wire).unwrap(), req);
    }
}
