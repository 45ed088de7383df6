//! One plugin call, as a runtime makes it, and what came back.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::plugin_set::PluginSet;

/// A plugin call under construction. Only the variables set here reach the plugin: the
/// test's own `CNI_*` environment never leaks in.
#[derive(Debug, Clone)]
pub struct Call {
    binary: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, OsString)>,
    stdin: Vec<u8>,
}

/// What a call printed and how it exited.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
    /// Raw stdout.
    pub stdout: String,
    /// Raw stderr.
    pub stderr: String,
}

impl Call {
    /// A call of plugin `name` from `set` with verb `command`.
    pub fn new(set: PluginSet, name: &str, command: &str) -> Self {
        Call::binary(&set.plugin(name), command)
            .var("CNI_PATH", &set.bin_dir().display().to_string())
    }

    /// A call of an explicit binary.
    pub fn binary(binary: &Path, command: &str) -> Self {
        Call {
            binary: binary.to_path_buf(),
            args: Vec::new(),
            env: vec![("CNI_COMMAND".into(), command.into())],
            stdin: Vec::new(),
        }
    }

    /// ADD/DEL/CHECK's usual variables: container ID, netns, interface name.
    pub fn container(self, id: &str, netns: &Path, ifname: &str) -> Self {
        self.var("CNI_CONTAINERID", id)
            .var("CNI_NETNS", &netns.display().to_string())
            .var("CNI_IFNAME", ifname)
    }

    /// Sets (or replaces) one variable; an empty value is passed as set-but-empty.
    pub fn var(self, key: &str, value: &str) -> Self {
        self.var_bytes(key, value.as_bytes())
    }

    /// Sets (or replaces) one variable to raw bytes, which need not be UTF-8.
    pub fn var_bytes(mut self, key: &str, value: &[u8]) -> Self {
        self.env.retain(|(k, _)| k != key);
        self.env
            .push((key.into(), OsString::from_vec(value.to_vec())));
        self
    }

    /// Removes one variable.
    pub fn unset(mut self, key: &str) -> Self {
        self.env.retain(|(k, _)| k != key);
        self
    }

    /// Command-line arguments, for a wrapper that runs the plugin (plugins take none).
    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// The netconf on stdin.
    pub fn stdin(mut self, stdin: impl Into<Vec<u8>>) -> Self {
        self.stdin = stdin.into();
        self
    }

    /// Runs the call from inside network namespace `ns` (a test's "node"): the child
    /// inherits the namespace of the thread that spawns it.
    pub fn run_in(&self, ns: &kernel::Netns) -> Output {
        ns.run(|| self.run())
            .unwrap_or_else(|e| panic!("enter {}: {e}", ns.path().display()))
    }

    /// Runs the call to completion.
    pub fn run(&self) -> Output {
        let out = self.spawn().wait_with_output().expect("wait for plugin");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts the call in `ns` and returns the running plugin, its stdin already written
    /// and closed: for a test that kills it midway, as a runtime's timeout would.
    pub fn spawn_in(&self, ns: &kernel::Netns) -> Child {
        ns.run(|| self.spawn())
            .unwrap_or_else(|e| panic!("enter {}: {e}", ns.path().display()))
    }

    fn spawn(&self) -> Child {
        let mut cmd = Command::new(&self.binary);
        cmd.args(&self.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.binary.display()));
        let mut input = child.stdin.take().expect("stdin pipe");
        // The plugin may exit before reading stdin: a broken pipe is not our failure.
        let _ = input.write_all(&self.stdin);
        child
    }
}

impl Output {
    /// Every JSON value on stdout, in order.
    pub fn json_values(&self) -> Vec<Value> {
        serde_json::Deserializer::from_str(&self.stdout)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {:?}", self.stdout))
    }

    /// The one JSON object on stdout; panics unless there is exactly one.
    pub fn json(&self) -> Value {
        let mut values = self.json_values();
        assert_eq!(
            values.len(),
            1,
            "stdout holds {} JSON values: {:?}",
            values.len(),
            self.stdout
        );
        let value = values.remove(0);
        assert!(
            value.is_object(),
            "stdout is not an object: {:?}",
            self.stdout
        );
        value
    }

    /// Asserts success and returns the result object.
    pub fn success(&self) -> Value {
        assert_eq!(
            self.code, 0,
            "call failed: stdout {:?} stderr {:?}",
            self.stdout, self.stderr
        );
        self.json()
    }

    /// Asserts success with nothing on stdout (DEL, CHECK, STATUS, GC).
    pub fn quiet_success(&self) {
        assert_eq!(
            self.code, 0,
            "call failed: stdout {:?} stderr {:?}",
            self.stdout, self.stderr
        );
        assert!(
            self.stdout.trim().is_empty(),
            "unexpected stdout {:?}",
            self.stdout
        );
    }

    /// Asserts a failure with exactly one error object on stdout and returns it.
    pub fn failure(&self) -> Value {
        assert_ne!(self.code, 0, "call succeeded: {:?}", self.stdout);
        let e = self.json();
        assert!(e["code"].is_u64(), "error object without code: {e}");
        assert!(e["msg"].is_string(), "error object without msg: {e}");
        e
    }

    /// Asserts a failure with `code` and returns the error object.
    pub fn fails_with(&self, code: u64) -> Value {
        let e = self.failure();
        assert_eq!(e["code"], code, "wrong error code: {e}");
        e
    }
}
