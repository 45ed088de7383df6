//! Network configurations: a single plugin's netconf and a conflist.
//!
//! Only the keys the protocol itself needs are typed; everything else is kept in order in
//! `extra` so that a netconf passes through us to a delegate unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::json_decode;
use crate::result::CniResult;
use crate::validate;
use crate::version::Version;

/// One plugin's network configuration, as read from stdin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetConf {
    /// `cniVersion`: empty means 0.1.0, as in libcni.
    #[serde(
        rename = "cniVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cni_version: String,
    /// `name`: the network's name.
    #[serde(default)]
    pub name: String,
    /// `type`: the plugin binary's name.
    #[serde(rename = "type", default, skip_serializing_if = "String::is_empty")]
    pub plugin_type: String,
    /// `capabilities`: runtime config keys this plugin wants.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub capabilities: Map<String, Value>,
    /// `ipam`: the IPAM plugin's configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Value>,
    /// `dns`: DNS settings requested by the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<Value>,
    /// `args`: extra arguments (conventionally `args.cni`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
    /// `prevResult`: the result of the previous plugin in a chain.
    #[serde(
        rename = "prevResult",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub prev_result: Option<Value>,
    /// `runtimeConfig`: capability arguments from the runtime.
    #[serde(
        rename = "runtimeConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime_config: Option<Map<String, Value>>,
    /// Every other key, kept in order and passed on.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl NetConf {
    /// Decodes a netconf: code 6 when it is not a JSON object.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        NetConf::decode(bytes).map(|(conf, _)| conf)
    }

    /// Decodes a netconf read from stdin into its typed form and the JSON object it came
    /// from (kept so it can be passed on exactly as received): code 6 when it is not a JSON
    /// object.
    pub fn decode(bytes: &[u8]) -> Result<(Self, Map<String, Value>), Error> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::decoding("error decoding network config", e))?;
        let Value::Object(object) = value else {
            return Err(Error::decoding(
                "error decoding network config",
                "the network config must be a JSON object",
            ));
        };
        NetConf::from_object(object)
    }

    /// Decodes a netconf handed over as a JSON object (an in-process call), with the same
    /// errors as [`NetConf::decode`] gives for its text; the object is given back.
    pub fn from_object(object: Map<String, Value>) -> Result<(Self, Map<String, Value>), Error> {
        // Deserialized by reference, so the object is kept without a copy.
        let value = Value::Object(object);
        let conf: NetConf = json_decode::from_value(&value)
            .map_err(|e| Error::decoding("error decoding network config", e))?;
        let Value::Object(object) = value else {
            unreachable!("built as an object above")
        };
        Ok((conf, object))
    }

    /// Checks `name` is present and valid: code 7 otherwise.
    pub fn validate_name(&self) -> Result<(), Error> {
        validate::network_name(&self.name)
    }

    /// Whether the plugin declared capability `key`.
    pub fn has_capability(&self, key: &str) -> bool {
        self.capabilities.get(key) == Some(&Value::Bool(true))
    }

    /// The `prevResult`, parsed as a result of `version`.
    pub fn prev_result(&self, version: Version) -> Result<Option<CniResult>, Error> {
        self.prev_result
            .as_ref()
            .map(|v| CniResult::from_value(v, version))
            .transpose()
            .map_err(|e| e.context("prevResult"))
    }

    /// The ADD result CHECK compares the kernel with: `prevResult`, required (code 7 when
    /// it is missing).
    pub fn check_prev_result(&self, version: Version) -> Result<CniResult, Error> {
        self.prev_result(version)?.ok_or_else(|| {
            Error::new(
                crate::ErrorCode::INVALID_NETWORK_CONFIG,
                "required prevResult missing",
                "CHECK compares the kernel with the ADD result passed as prevResult",
            )
        })
    }

    /// Plugin-specific key `key` as a `T`; absent or `null` is `None`, a value of another
    /// type a code-7 error naming the key and the value.
    pub fn field<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, Error> {
        match self.extra.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
                let shown = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Error::invalid_config(key, shown, e)
            }),
        }
    }

    /// `args.cni.<key>`, the conventional place for per-attachment arguments.
    pub fn cni_arg(&self, key: &str) -> Option<&Value> {
        self.args.as_ref()?.get("cni")?.get(key)
    }
}

/// A network configuration list (`.conflist`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfList {
    /// `cniVersion` of the list.
    #[serde(
        rename = "cniVersion",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub cni_version: String,
    /// `cniVersions` (1.1.0): the versions the list may be run at; the newest we support wins.
    #[serde(rename = "cniVersions", default, skip_serializing_if = "Vec::is_empty")]
    pub cni_versions: Vec<String>,
    /// The network's name.
    #[serde(default)]
    pub name: String,
    /// `disableCheck`: CHECK is a no-op for this list.
    #[serde(
        rename = "disableCheck",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub disable_check: bool,
    /// `disableGC` (1.1.0): GC is a no-op for this list.
    #[serde(
        rename = "disableGC",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub disable_gc: bool,
    /// The plugins, run in order on ADD and in reverse on DEL.
    #[serde(default)]
    pub plugins: Vec<Map<String, Value>>,
    /// Every other key, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ConfList {
    /// Decodes and validates a conflist: code 6 for bad JSON, 7 for a bad list.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let list: ConfList = json_decode::from_slice(bytes)
            .map_err(|e| Error::decoding("error decoding network config list", e))?;
        list.validate()?;
        Ok(list)
    }

    /// A netconf object already decoded, a list (it has `plugins`) or a single plugin
    /// (wrapped as a one-plugin list), validated as [`ConfList::parse`] and
    /// [`ConfList::from_single`] do.
    pub fn from_value(value: Value) -> Result<Self, Error> {
        if value.get("plugins").is_none() {
            return ConfList::single(value);
        }
        let list: ConfList = json_decode::from_value(&value)
            .map_err(|e| Error::decoding("error decoding network config list", e))?;
        list.validate()?;
        Ok(list)
    }

    /// Wraps a single-plugin netconf as a one-plugin list, so both run the same way.
    pub fn from_single(bytes: &[u8]) -> Result<Self, Error> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::decoding("error decoding network config", e))?;
        ConfList::single(value)
    }

    fn single(value: Value) -> Result<Self, Error> {
        let Value::Object(plugin) = value else {
            return Err(Error::decoding(
                "error decoding network config",
                "the network config must be a JSON object",
            ));
        };
        let text = |k: &str| {
            plugin
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let list = ConfList {
            cni_version: text("cniVersion"),
            name: text("name"),
            plugins: vec![plugin],
            ..ConfList::default()
        };
        list.validate()?;
        Ok(list)
    }

    /// Checks the list has a valid name and every plugin a `type`.
    pub fn validate(&self) -> Result<(), Error> {
        validate::network_name(&self.name)?;
        if self.plugins.is_empty() {
            return Err(Error::invalid_config(
                "plugins",
                "[]",
                "a conflist needs at least one plugin",
            ));
        }
        for (i, p) in self.plugins.iter().enumerate() {
            let t = p.get("type").and_then(Value::as_str).unwrap_or_default();
            validate::plugin_type(t).map_err(|e| e.context(format!("plugins[{i}]")))?;
        }
        Ok(())
    }

    /// The version the list runs at: the newest of `cniVersions` we support, else `cniVersion`.
    pub fn version(&self, supported: &[Version]) -> Result<Version, Error> {
        if self.cni_versions.is_empty() {
            return Ok(Version::from_config(&self.cni_version, supported)?);
        }
        Version::negotiate(self.cni_versions.iter().map(String::as_str), supported)
            .ok_or_else(|| Error::incompatible_version(&self.cni_versions.join(","), supported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_kept_in_order() {
        let text = r#"{"cniVersion":"1.0.0","name":"n","type":"bridge","zeta":1,"alpha":{"x":[1,2]},"ipam":{"type":"host-local"}}"#;
        let conf = NetConf::parse(text.as_bytes()).unwrap();
        assert_eq!(conf.extra.keys().collect::<Vec<_>>(), ["zeta", "alpha"]);
        let back = serde_json::to_value(&conf).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn non_objects_are_decoding_errors() {
        for bad in ["not json", "[1,2]", "\"x\"", ""] {
            let e = NetConf::parse(bad.as_bytes()).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::DECODING_FAILURE, "{bad}");
        }
    }

    #[test]
    fn capabilities_must_be_true() {
        let conf =
            NetConf::parse(br#"{"name":"n","capabilities":{"mac":true,"ips":false}}"#).unwrap();
        assert!(conf.has_capability("mac"));
        assert!(!conf.has_capability("ips"));
        assert!(!conf.has_capability("bandwidth"));
    }

    #[test]
    fn conflist_version_negotiation() {
        let list = ConfList::parse(
            br#"{"cniVersion":"0.4.0","cniVersions":["0.4.0","1.0.0","2.0.0"],"name":"n","plugins":[{"type":"loopback"}]}"#,
        )
        .unwrap();
        assert_eq!(list.version(&Version::ALL).unwrap(), Version::V1_0_0);
        let list = ConfList {
            cni_versions: vec!["2.0.0".into()],
            ..list
        };
        assert_eq!(
            list.version(&Version::ALL).unwrap_err().code,
            crate::ErrorCode::INCOMPATIBLE_VERSION
        );
    }

    #[test]
    fn conflist_validation_names_the_plugin() {
        let e = ConfList::parse(br#"{"name":"n","plugins":[{"type":"loopback"},{"type":"../x"}]}"#)
            .unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(e.msg.starts_with("plugins[1]"), "{e}");
        let e = ConfList::parse(br#"{"name":"n","plugins":[]}"#).unwrap_err();
        assert_eq!(e.code, crate::ErrorCode::INVALID_NETWORK_CONFIG);
    }
}
