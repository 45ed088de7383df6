//! A plugin call: the verb and `CNI_*` environment, validated, with the decoded netconf.

use std::fmt;
use std::path::PathBuf;

use crate::args::CniArgs;
use crate::error::Error;
use crate::netconf::NetConf;
use crate::validate;
use crate::version::Version;

/// The CNI verbs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Attach a container.
    Add,
    /// Detach a container.
    Del,
    /// Check an attachment.
    Check,
    /// Is the plugin ready (1.1.0).
    Status,
    /// Collect garbage (1.1.0).
    Gc,
    /// Report supported versions.
    Version,
}

impl Command {
    /// Every verb.
    pub const ALL: [Command; 6] = [
        Command::Add,
        Command::Del,
        Command::Check,
        Command::Status,
        Command::Gc,
        Command::Version,
    ];

    /// The `CNI_COMMAND` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }

    /// Parses `CNI_COMMAND`: code 4 naming an unknown verb.
    pub fn parse(text: &str) -> Result<Self, Error> {
        Command::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| {
                Error::environment(
                    format!("unknown CNI_COMMAND {text:?}"),
                    "expected one of ADD, DEL, CHECK, STATUS, GC, VERSION",
                )
            })
    }

    /// The variables this verb needs (set and non-empty), as libcni's skel requires them.
    fn required(self) -> &'static [&'static str] {
        match self {
            Command::Add | Command::Check => {
                &["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]
            }
            Command::Del => &["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"],
            Command::Status | Command::Gc => &["CNI_PATH"],
            Command::Version => &[],
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
#[derive(Debug, Clone)]
pub struct Request {
    /// The verb.
    pub command: Command,
    /// `CNI_CONTAINERID` (empty for STATUS and GC).
    pub container_id: String,
    /// `CNI_NETNS`, if set.
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME` (empty for STATUS and GC).
    pub ifname: String,
    /// `CNI_ARGS`.
    pub args: CniArgs,
    /// `CNI_PATH`, split.
    pub path: Vec<PathBuf>,
    /// The netconf exactly as received.
    pub stdin: Vec<u8>,
    /// The decoded netconf.
    pub netconf: NetConf,
    /// The netconf's version: the result and any error are printed in it.
    pub version: Version,
}

impl Request {
    /// Validates the environment and stdin for `command` in the order libcni's skel does:
    /// missing variables (all named at once, code 4), netconf decoding (6) and name (7),
    /// container ID and interface name (4), version (1), then `CNI_ARGS` (4).
    pub fn parse(
        command: Command,
        env: &dyn EnvSource,
        stdin: Vec<u8>,
        supported: &[Version],
    ) -> Result<Self, Error> {
        let netconf = NetConf::parse(&stdin);
        Request::from_decoded(command, env, stdin, netconf, supported)
    }

    /// As [`Request::parse`], with stdin already decoded (so a caller that needed the
    /// netconf first does not decode it twice); a decoding error is reported in its turn.
    pub fn from_decoded(
        command: Command,
        env: &dyn EnvSource,
        stdin: Vec<u8>,
        netconf: Result<NetConf, Error>,
        supported: &[Version],
    ) -> Result<Self, Error> {
        let missing: Vec<&str> = command
            .required()
            .iter()
            .copied()
            .filter(|k| !env.is_set(k))
            .collect();
        if !missing.is_empty() {
            return Err(Error::environment(
                format!("required env variables [{}] missing", missing.join(", ")),
                format!("CNI_COMMAND={command}"),
            ));
        }
        let netconf = netconf?;
        netconf.validate_name()?;
        let container_id = env.var("CNI_CONTAINERID")?.unwrap_or_default();
        let ifname = env.var("CNI_IFNAME")?.unwrap_or_default();
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
        let args = CniArgs::parse(&env.var("CNI_ARGS")?.unwrap_or_default())?;
        let netns = env.var("CNI_NETNS")?.map(PathBuf::from);
        let path = env
            .var("CNI_PATH")?
            .unwrap_or_default()
            .split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        Ok(Request {
            command,
            container_id,
            netns,
            ifname,
            args,
            path,
            stdin,
            netconf,
            version,
        })
    }
}
