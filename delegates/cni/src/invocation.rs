//! One call of a plugin: its verb and its `CNI_*` environment, typed. A [`Request`] holds
//! the validated one; a delegate call is made from one; `exec` turns it into the
//! environment of a process only at the exec boundary.
//!
//! [`Request`]: crate::Request

use std::fmt;
use std::path::PathBuf;

use crate::args::CniArgs;
use crate::error::Error;

/// The environment variables of one call, as the spec names them: what a delegate gets
/// set for its own call and never inherits from its caller's.
pub const CALL_VARS: &[&str] = &[
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
    "CNI_PATH",
];

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
    pub(crate) fn required(self) -> &'static [&'static str] {
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

/// The `CNI_*` environment of a delegate call.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The verb.
    pub command: Command,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`.
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS`.
    pub args: CniArgs,
    /// `CNI_PATH`.
    pub path: Vec<PathBuf>,
}

impl Invocation {
    /// `CNI_NETNS` as a result's `sandbox` names it (empty when unset).
    pub fn sandbox(&self) -> String {
        self.netns
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    /// The same call with another verb.
    pub fn with_command(&self, command: Command) -> Self {
        Invocation {
            command,
            ..self.clone()
        }
    }

    /// The environment `exec` gives the plugin (also what proves in-process calls see the
    /// same values: [`Request::from_invocation`]'s tests).
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("CNI_COMMAND", self.command.as_str().to_string())];
        let mut put = |k: &'static str, v: &str| {
            if !v.is_empty() {
                env.push((k, v.to_string()));
            }
        };
        put("CNI_CONTAINERID", &self.container_id);
        put(
            "CNI_NETNS",
            &self
                .netns
                .as_deref()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        put("CNI_IFNAME", &self.ifname);
        put("CNI_ARGS", &self.args.to_env());
        let path: Vec<String> = self
            .path
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        put("CNI_PATH", &path.join(":"));
        env
    }
}
