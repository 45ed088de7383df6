//! A plugin call: the verb and `CNI_*` environment, validated, with the decoded netconf.
//!
//! An exec'd plugin builds its [`Request`] from its process environment and stdin; a plugin
//! run in-process builds it from the caller's typed [`Invocation`] and netconf object. Both
//! go through one set of checks in one order, so the two cannot drift apart.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::args::CniArgs;
use crate::error::Error;
use crate::invocation::{Command, Invocation};
use crate::netconf::NetConf;
use crate::validate;
use crate::version::Version;

/// Reads one environment variable; set-but-empty counts as unset.
pub trait EnvSource {
    /// The variable's value, `None` when unset or empty; code 4 naming the variable when its
    /// value is not UTF-8 (it is set, so it is not reported as missing).
    fn var(&self, key: &str) -> Result<Option<String>, Error>;

    /// Whether the variable is set to something non-empty, readable or not.
    fn is_set(&self, key: &str) -> bool {
        !matches!(self.var(key), Ok(None))
    }
}

/// The process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn var(&self, key: &str) -> Result<Option<String>, Error> {
        match std::env::var(key) {
            Ok(v) => Ok(Some(v).filter(|v| !v.is_empty())),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(raw)) => Err(Error::environment(
                format!("{key} is not valid UTF-8"),
                format!("{key}={}", raw.to_string_lossy()),
            )),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> EnvSource for F {
    fn var(&self, key: &str) -> Result<Option<String>, Error> {
        Ok(self(key).filter(|v| !v.is_empty()))
    }
}

/// A validated call of any verb but VERSION.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The verb and `CNI_*` variables, validated (container ID and interface name empty for
    /// STATUS and GC). What a delegate run on this call's behalf is given.
    pub inv: Invocation,
    /// The netconf as received, as its JSON object: what the bridge hands its IPAM plugin
    /// (the spec's rule). Kept decoded, so an in-process IPAM plugin gets it without a
    /// re-encode; an exec'd one gets it serialized at the exec boundary.
    pub raw_netconf: Map<String, Value>,
    /// The decoded netconf.
    pub netconf: NetConf,
    /// The netconf's version: the result and any error are printed in it.
    pub version: Version,
}

/// Where a call's `CNI_*` values come from: the environment of an exec'd plugin (text to
/// parse) or the [`Invocation`] of an in-process one (already typed). Only reading a value
/// differs; every check is [`Request::build`]'s.
trait Source {
    /// Whether `key` is set to something non-empty (readable or not).
    fn is_set(&self, key: &str) -> bool;
    /// `CNI_CONTAINERID`, empty when unset.
    fn container_id(&self) -> Result<String, Error>;
    /// `CNI_IFNAME`, empty when unset.
    fn ifname(&self) -> Result<String, Error>;
    /// `CNI_ARGS`, parsed.
    fn args(&self) -> Result<CniArgs, Error>;
    /// `CNI_NETNS`.
    fn netns(&self) -> Result<Option<PathBuf>, Error>;
    /// `CNI_PATH`, split.
    fn path(&self) -> Result<Vec<PathBuf>, Error>;
}

/// The `CNI_PATH` text split as libcni does: at every `:`, empty entries dropped.
fn split_path(text: &str) -> impl Iterator<Item = PathBuf> + '_ {
    text.split(':').filter(|p| !p.is_empty()).map(PathBuf::from)
}

/// An exec'd plugin's environment.
struct Env<'a>(&'a dyn EnvSource);

impl Source for Env<'_> {
    fn is_set(&self, key: &str) -> bool {
        self.0.is_set(key)
    }

    fn container_id(&self) -> Result<String, Error> {
        Ok(self.0.var("CNI_CONTAINERID")?.unwrap_or_default())
    }

    fn ifname(&self) -> Result<String, Error> {
        Ok(self.0.var("CNI_IFNAME")?.unwrap_or_default())
    }

    fn args(&self) -> Result<CniArgs, Error> {
        CniArgs::parse(&self.0.var("CNI_ARGS")?.unwrap_or_default())
    }

    fn netns(&self) -> Result<Option<PathBuf>, Error> {
        Ok(self.0.var("CNI_NETNS")?.map(PathBuf::from))
    }

    fn path(&self) -> Result<Vec<PathBuf>, Error> {
        Ok(split_path(&self.0.var("CNI_PATH")?.unwrap_or_default()).collect())
    }
}

/// The text exec puts in the environment for a path (lossy, as `exec` passes it).
fn env_text(path: &Path) -> std::borrow::Cow<'_, str> {
    path.to_string_lossy()
}

/// An in-process plugin reads from the invocation what an exec'd one would read from the
/// environment `exec` gives it for the same invocation: empty values are unset, paths are
/// text, `CNI_PATH` is split at every `:`, and `CNI_ARGS` pairs the `K=V;K=V` form cannot
/// carry come out as that form parses them.
impl Source for Invocation {
    fn is_set(&self, key: &str) -> bool {
        match key {
            "CNI_CONTAINERID" => !self.container_id.is_empty(),
            "CNI_NETNS" => self
                .netns
                .as_ref()
                .is_some_and(|p| !p.as_os_str().is_empty()),
            "CNI_IFNAME" => !self.ifname.is_empty(),
            "CNI_ARGS" => !self.args.is_empty(),
            // Joined with `:`: two empty entries still make a set (if useless) variable.
            "CNI_PATH" => {
                self.path.len() > 1 || self.path.first().is_some_and(|p| !p.as_os_str().is_empty())
            }
            _ => false,
        }
    }

    fn container_id(&self) -> Result<String, Error> {
        Ok(self.container_id.clone())
    }

    fn ifname(&self) -> Result<String, Error> {
        Ok(self.ifname.clone())
    }

    fn args(&self) -> Result<CniArgs, Error> {
        if self.args.fits_env() {
            Ok(self.args.clone())
        } else {
            // Only `CniArgs::set` makes such pairs; reproduce exactly what exec would give.
            CniArgs::parse(&self.args.to_env())
        }
    }

    fn netns(&self) -> Result<Option<PathBuf>, Error> {
        Ok(self
            .netns
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| match env_text(p) {
                std::borrow::Cow::Borrowed(_) => p.to_path_buf(),
                std::borrow::Cow::Owned(text) => PathBuf::from(text),
            }))
    }

    fn path(&self) -> Result<Vec<PathBuf>, Error> {
        Ok(self
            .path
            .iter()
            .flat_map(|p| split_path(&env_text(p)).collect::<Vec<_>>())
            .collect())
    }
}

impl Request {
    /// Validates the environment and stdin for `command` in the order libcni's skel does:
    /// missing variables (all named at once, code 4), netconf decoding (6) and name (7),
    /// container ID and interface name (4), version (1), then `CNI_ARGS` (4).
    pub fn parse(
        command: Command,
        env: &dyn EnvSource,
        stdin: &[u8],
        supported: &[Version],
    ) -> Result<Self, Error> {
        Request::from_decoded(command, env, NetConf::decode(stdin), supported)
    }

    /// As [`Request::parse`], with stdin already decoded by [`NetConf::decode`] (so a
    /// caller that needed the netconf first does not decode it twice); a decoding error is
    /// reported in its turn.
    pub fn from_decoded(
        command: Command,
        env: &dyn EnvSource,
        netconf: Result<(NetConf, Map<String, Value>), Error>,
        supported: &[Version],
    ) -> Result<Self, Error> {
        Request::build(command, &Env(env), netconf, supported)
    }

    /// The request of a plugin run in-process for `inv` with `netconf`: the same request,
    /// or the same error, as the plugin would build exec'd with `inv`'s environment and
    /// `netconf` on stdin (the same checks in the same order), without going through text.
    pub fn from_invocation(
        inv: &Invocation,
        netconf: Map<String, Value>,
        supported: &[Version],
    ) -> Result<Self, Error> {
        Request::build(inv.command, inv, NetConf::from_object(netconf), supported)
    }

    /// The checks, in libcni's order, over values read from `src`.
    fn build(
        command: Command,
        src: &dyn Source,
        netconf: Result<(NetConf, Map<String, Value>), Error>,
        supported: &[Version],
    ) -> Result<Self, Error> {
        let missing: Vec<&str> = command
            .required()
            .iter()
            .copied()
            .filter(|k| !src.is_set(k))
            .collect();
        if !missing.is_empty() {
            return Err(Error::environment(
                format!("required env variables [{}] missing", missing.join(", ")),
                format!("CNI_COMMAND={command}"),
            ));
        }
        let (netconf, raw_netconf) = netconf?;
        netconf.validate_name()?;
        let container_id = src.container_id()?;
        let ifname = src.ifname()?;
        if matches!(command, Command::Add | Command::Del | Command::Check) {
            validate::container_id(&container_id)?;
            validate::ifname(&ifname)?;
        }
        let version = Version::from_config(&netconf.cni_version, supported)?;
        let too_old = match command {
            Command::Check => !version.has_check(),
            Command::Status | Command::Gc => !version.has_status_and_gc(),
            _ => false,
        };
        if too_old {
            return Err(Error::new(
                crate::ErrorCode::INCOMPATIBLE_VERSION,
                format!("config version does not allow {command}"),
                format!(
                    "cniVersion is {version}; {command} needs {}",
                    if command == Command::Check {
                        "0.4.0"
                    } else {
                        "1.1.0"
                    }
                ),
            ));
        }
        let args = src.args()?;
        let netns = src.netns()?;
        let path = src.path()?;
        Ok(Request {
            inv: Invocation {
                command,
                container_id,
                netns,
                ifname,
                args,
                path,
            },
            raw_netconf,
            netconf,
            version,
        })
    }

    /// `CNI_NETNS`, for a verb that needs it: code 4 when the runtime did not give it.
    pub fn netns_path(&self) -> Result<&Path, Error> {
        self.inv
            .netns
            .as_deref()
            .ok_or_else(|| Error::environment("required env variables [CNI_NETNS] missing", ""))
    }

    /// `CNI_NETNS` opened by `open` (the kernel layer's), as a CNI error: code 4 when the
    /// runtime did not give it, 3 when `gone` says the namespace does not exist, else 5.
    pub fn open_netns<N, E: std::fmt::Display>(
        &self,
        open: impl FnOnce(&Path) -> Result<N, E>,
        gone: impl FnOnce(&E) -> bool,
    ) -> Result<N, Error> {
        let path = self.netns_path()?;
        open(path).map_err(|e| Error::netns(path, gone(&e), e))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    use serde_json::json;

    use super::*;
    use crate::ErrorCode;

    fn good() -> Invocation {
        Invocation {
            command: Command::Add,
            container_id: "c1".into(),
            netns: Some("/var/run/netns/pod".into()),
            ifname: "eth0".into(),
            args: CniArgs::parse("IgnoreUnknown=1;K8S_POD_NAME=web").unwrap(),
            path: vec!["/opt/cni/bin".into(), "/usr/lib/cni".into()],
        }
    }

    fn conf(version: &str) -> Value {
        json!({"cniVersion": version, "name": "net1", "type": "bridge",
            "zeta": {"x": [1, 2]}, "ipam": {"type": "host-local", "subnet": "10.1.2.0/24"}})
    }

    /// What the plugin builds when exec'd for `inv`: from the environment `exec` gives it
    /// and the netconf serialized on its stdin.
    fn exec_view(inv: &Invocation, conf: &Value, supported: &[Version]) -> Result<Request, Error> {
        let vars: HashMap<&str, String> = inv.env().into_iter().collect();
        let env = |k: &str| vars.get(k).cloned();
        let command = Command::parse(&env("CNI_COMMAND").unwrap()).unwrap();
        Request::parse(command, &env, &serde_json::to_vec(conf).unwrap(), supported)
    }

    #[test]
    fn the_netns_is_opened_as_a_cni_error() {
        let mut req = exec_view(&good(), &conf("1.0.0"), &Version::ALL).unwrap();
        let opened = req.open_netns(|p| Ok::<_, String>(p.to_path_buf()), |_| false);
        assert_eq!(opened.unwrap(), Path::new("/var/run/netns/pod"));
        let gone = req
            .open_netns(|_| Err::<(), _>("no such file".to_string()), |_| true)
            .unwrap_err();
        assert_eq!(gone.code, ErrorCode::UNKNOWN_CONTAINER);
        assert!(gone.msg.contains("/var/run/netns/pod"), "{gone:?}");
        let refused = req
            .open_netns(|_| Err::<(), _>("permission denied".to_string()), |_| false)
            .unwrap_err();
        assert_eq!(
            (refused.code, refused.details.as_str()),
            (ErrorCode::IO_FAILURE, "permission denied")
        );
        req.inv.netns = None;
        let missing = req
            .open_netns(|_| Ok::<_, String>(()), |_| false)
            .unwrap_err();
        assert_eq!(missing.code, ErrorCode::INVALID_ENVIRONMENT);
        assert!(missing.msg.contains("CNI_NETNS"), "{missing:?}");
    }

    #[test]
    fn in_process_request_is_the_exec_request() {
        let with = |f: &dyn Fn(&mut Invocation)| {
            let mut inv = good();
            f(&mut inv);
            inv
        };
        let set_arg =
            |k: &'static str, v: &'static str| with(&move |i: &mut Invocation| i.args.set(k, v));
        let older = [Version::V0_3_1, Version::V0_4_0];
        // (what, invocation, netconf, supported versions, expected error code)
        type Case = (&'static str, Invocation, Value, Vec<Version>, Option<u32>);
        let cases: Vec<Case> = vec![
            ("add", good(), conf("1.0.0"), Version::ALL.to_vec(), None),
            (
                "add 0.1.0 by default",
                good(),
                conf(""),
                Version::ALL.to_vec(),
                None,
            ),
            (
                "del without netns",
                with(&|i| {
                    i.command = Command::Del;
                    i.netns = None
                }),
                conf("0.4.0"),
                Version::ALL.to_vec(),
                None,
            ),
            (
                "check",
                with(&|i| i.command = Command::Check),
                conf("0.4.0"),
                Version::ALL.to_vec(),
                None,
            ),
            (
                "status without container",
                with(&|i| {
                    i.command = Command::Status;
                    i.container_id.clear();
                    i.ifname.clear();
                    i.netns = None;
                }),
                conf("1.1.0"),
                Version::ALL.to_vec(),
                None,
            ),
            (
                "gc",
                with(&|i| i.command = Command::Gc),
                conf("1.1.0"),
                Version::ALL.to_vec(),
                None,
            ),
            (
                "all missing at once",
                with(&|i| {
                    i.container_id.clear();
                    i.ifname.clear();
                    i.path.clear();
                }),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                Some(4),
            ),
            (
                "empty netns is unset",
                with(&|i| i.netns = Some(PathBuf::new())),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                Some(4),
            ),
            (
                "one empty path entry is unset",
                with(&|i| i.path = vec![PathBuf::new()]),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                Some(4),
            ),
            (
                "two empty path entries are set",
                with(&|i| i.path = vec![PathBuf::new(), PathBuf::new()]),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                None,
            ),
            (
                "path entries split at colons",
                with(&|i| i.path = vec!["/a:/b".into(), PathBuf::new(), "/c".into()]),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                None,
            ),
            (
                "netns not UTF-8",
                with(&|i| i.netns = Some(OsStr::from_bytes(b"/run/netns/\xff").into())),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                None,
            ),
            (
                "path not UTF-8",
                with(&|i| i.path = vec![OsStr::from_bytes(b"/opt/\xfe:/x").into()]),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                None,
            ),
            (
                "netconf does not decode",
                good(),
                json!({"cniVersion": "1.0.0", "name": "net1", "capabilities": 3}),
                Version::ALL.to_vec(),
                Some(6),
            ),
            (
                "missing before decoding",
                with(&|i| i.ifname.clear()),
                json!({"cniVersion": "1.0.0", "name": 5}),
                Version::ALL.to_vec(),
                Some(4),
            ),
            (
                "no name",
                good(),
                json!({"cniVersion": "1.0.0"}),
                Version::ALL.to_vec(),
                Some(7),
            ),
            (
                "name before container id",
                with(&|i| i.container_id = "-c1".into()),
                json!({"cniVersion": "1.0.0", "name": "a/b"}),
                Version::ALL.to_vec(),
                Some(7),
            ),
            (
                "bad container id",
                with(&|i| i.container_id = "-c1".into()),
                conf("9.9.9"),
                Version::ALL.to_vec(),
                Some(4),
            ),
            (
                "bad ifname",
                with(&|i| i.ifname = "a/b".into()),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                Some(4),
            ),
            (
                "ifname too long",
                with(&|i| i.ifname = "0123456789abcdef".into()),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                Some(4),
            ),
            (
                "unknown version",
                good(),
                conf("9.9.9"),
                Version::ALL.to_vec(),
                Some(1),
            ),
            (
                "version not supported",
                good(),
                conf("1.0.0"),
                older.to_vec(),
                Some(1),
            ),
            (
                "check too old",
                with(&|i| i.command = Command::Check),
                conf("0.3.1"),
                Version::ALL.to_vec(),
                Some(1),
            ),
            (
                "gc too old",
                with(&|i| i.command = Command::Gc),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                Some(1),
            ),
            (
                "version before args",
                set_arg("K", "x;y"),
                conf("9.9.9"),
                Version::ALL.to_vec(),
                Some(1),
            ),
            (
                "arg value with ;",
                set_arg("K", "x;y"),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                Some(4),
            ),
            (
                "arg value with =",
                set_arg("K", "a=b"),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                Some(4),
            ),
            (
                "arg without key",
                set_arg("", "v"),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                Some(4),
            ),
            (
                "arg with empty value",
                set_arg("K", ""),
                conf("1.0.0"),
                Version::ALL.to_vec(),
                None,
            ),
        ];
        for (what, inv, conf, supported, want) in cases {
            let exec = exec_view(&inv, &conf, &supported);
            let Value::Object(object) = conf else {
                unreachable!()
            };
            let typed = Request::from_invocation(&inv, object, &supported);
            assert_eq!(typed, exec, "{what}");
            assert_eq!(
                typed.as_ref().err().map(|e| e.code),
                want.map(ErrorCode),
                "{what}: {typed:?}"
            );
        }
    }
}
