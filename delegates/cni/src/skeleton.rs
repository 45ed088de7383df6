//! The plugin skeleton: one trait every bundled plugin implements, the function that turns
//! a call (env + stdin) into exactly one JSON object on stdout and an exit code, and the one
//! that runs a plugin in-process on a typed invocation with the same outcome.

use std::io::{Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::ExitCode;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::invocation::{Command, Invocation};
use crate::netconf::NetConf;
use crate::request::{EnvSource, ProcessEnv, Request};
use crate::result::CniResult;
use crate::version::Version;

/// A CNI plugin. VERSION and all validation are handled by the skeleton; each verb gets a
/// validated [`Request`].
pub trait Plugin: Sync {
    /// The plugin's `type`.
    fn name(&self) -> &'static str;

    /// The versions this plugin speaks.
    fn supported_versions(&self) -> &'static [Version] {
        &Version::ALL
    }

    /// `CNI_ARGS` keys this plugin uses, beyond the runtimes' own keys.
    fn known_args(&self) -> &'static [&'static str] {
        &[]
    }

    /// ADD: attach the container and report what was made.
    fn add(&self, req: &Request) -> Result<CniResult, Error>;

    /// DEL: detach; "already gone" is success.
    fn del(&self, req: &Request) -> Result<(), Error>;

    /// CHECK: fail if the attachment is not as ADD left it.
    fn check(&self, req: &Request) -> Result<(), Error>;

    /// STATUS: fail with 50/51 if the plugin cannot serve ADDs now.
    fn status(&self, req: &Request) -> Result<(), Error>;

    /// Where this call logs, read from the raw netconf before anything is validated (a bad
    /// setting is the verb's error to report, not this method's). Default: the environment
    /// variables the binary names.
    fn log_settings(&self, _stdin: &[u8]) -> crate::logging::Settings {
        crate::logging::Settings::default()
    }

    /// GC: release what belongs to attachments not in `cni.dev/valid-attachments`.
    fn gc(&self, req: &Request) -> Result<(), Error>;
}

/// What a call prints and how it exits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The single JSON object for stdout (empty for a successful DEL, CHECK, STATUS or GC).
    pub stdout: String,
    /// The process exit code.
    pub exit_code: u8,
}

#[derive(Serialize)]
struct VersionInfo<'a> {
    #[serde(rename = "cniVersion")]
    cni_version: Version,
    #[serde(rename = "supportedVersions")]
    supported_versions: &'a [Version],
}

/// The VERSION answer: labelled with the version the caller sent if we speak it, else ours.
pub fn version_info(supported: &[Version], stdin: &[u8]) -> String {
    let asked = serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str()?.parse::<Version>().ok())
        .filter(|v| supported.contains(v));
    serde_json::to_string(&VersionInfo {
        cni_version: asked.unwrap_or(Version::LATEST),
        supported_versions: supported,
    })
    .expect("version info always serializes")
}

/// Runs one call of `plugin`, without touching the process's stdout or exit.
pub fn run(plugin: &dyn Plugin, env: &dyn EnvSource, stdin: Vec<u8>) -> Outcome {
    let supported = plugin.supported_versions();
    // Until the netconf is read, errors speak the newest version.
    let mut version = Version::LATEST;
    let outcome = (|| -> Result<String, Error> {
        let command = match env.var("CNI_COMMAND")? {
            Some(c) => Command::parse(&c)?,
            None => {
                return Err(Error::environment(
                    "required env variables [CNI_COMMAND] missing",
                    "",
                ))
            }
        };
        if command == Command::Version {
            return Ok(version_info(supported, &stdin));
        }
        // Decode once; label errors with the request's version as soon as we can tell it.
        let netconf = NetConf::decode(&stdin);
        if let Some(v) = netconf
            .as_ref()
            .ok()
            .and_then(|(c, _)| c.cni_version.parse::<Version>().ok())
            .filter(|v| supported.contains(v))
        {
            version = v;
        }
        let req = Request::from_decoded(command, env, netconf, supported)?;
        Ok(dispatch(plugin, &req)?
            .map(|wire| wire.to_string())
            .unwrap_or_default())
    })();
    match outcome {
        Ok(stdout) => Outcome {
            stdout,
            exit_code: 0,
        },
        Err(e) => Outcome {
            stdout: e.to_json(version),
            exit_code: 1,
        },
    }
}

/// Runs `plugin` in-process for a delegate invocation `inv` with netconf `config`: the same
/// validation, logging, result and error as if it had been exec'd with `inv`'s environment
/// and `config` on stdin, without going through text. An ADD's result is the plugin's in
/// the wire form of the request's version, read back as a caller reads it (so what that
/// version cannot say is gone, as after an exec); the other verbs give `None`, VERSION
/// included (it needs no plugin: ask with [`crate::invoke::version_of`]).
pub fn call(
    plugin: &dyn Plugin,
    inv: &Invocation,
    config: Map<String, Value>,
) -> Result<Option<CniResult>, Error> {
    if inv.command == Command::Version {
        return Ok(None);
    }
    let req = Request::from_invocation(inv, config, plugin.supported_versions())?;
    dispatch(plugin, &req)?
        .map(|wire| CniResult::from_labelled(wire).map(|(result, _)| result))
        .transpose()
}

/// What an exec'd call ([`run`]) and an in-process one ([`call`]) share once the request
/// is valid: the plugin's `CNI_ARGS` check, then the verb under a span, a panic turned into
/// code 100 and a failure logged. An ADD's result comes back in the wire form of the
/// request's version: what the plugin prints.
fn dispatch(plugin: &dyn Plugin, req: &Request) -> Result<Option<Value>, Error> {
    req.inv.args.check_known(plugin.known_args())?;
    let command = req.inv.command;
    let trace = crate::call_env::trace_id();
    let span = tracing::info_span!(
        "cni",
        plugin = plugin.name(),
        verb = %command,
        container = %req.inv.container_id,
        netns = ?req.inv.netns,
        ifname = %req.inv.ifname,
        trace_id = %trace.as_deref().unwrap_or("-"),
    );
    let _entered = span.enter();
    let verb = AssertUnwindSafe(|| -> Result<Option<Value>, Error> {
        match command {
            Command::Add => plugin.add(req)?.to_value(req.version).map(Some),
            Command::Del => plugin.del(req).map(|()| None),
            Command::Check => plugin.check(req).map(|()| None),
            Command::Status => plugin.status(req).map(|()| None),
            Command::Gc => plugin.gc(req).map(|()| None),
            Command::Version => unreachable!("answered before a request is built"),
        }
    });
    let result = catch_unwind(verb).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(Error::internal(
            format!("{} {command} panicked", plugin.name()),
            what,
        ))
    });
    if let Err(e) = &result {
        tracing::warn!(code = %e.code, "{e}");
    }
    result
}

/// The `main` of a plugin binary: logs set up (what the plugin's netconf leaves unset comes
/// from the binary's `log_env` variables), stdin read, one call run, its object printed.
pub fn main(plugin: &dyn Plugin, log_env: &crate::logging::EnvNames) -> ExitCode {
    main_forwarding(plugin, log_env, &|_| None)
}

/// As [`main`], with the call offered to `forward` first (with stdin, once logs are set
/// up): an outcome it returns (another process served the call, e.g. a daemon) is printed
/// as it is; `None` runs the call here.
pub fn main_forwarding(
    plugin: &dyn Plugin,
    log_env: &crate::logging::EnvNames,
    forward: &dyn Fn(&[u8]) -> Option<Outcome>,
) -> ExitCode {
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    crate::logging::init(plugin.log_settings(&stdin), log_env);
    let started = std::time::Instant::now();
    let outcome = match read {
        Ok(_) => forward(&stdin).unwrap_or_else(|| run(plugin, &ProcessEnv, stdin)),
        Err(e) => Outcome {
            stdout: Error::io("read stdin", e).to_json(Version::LATEST),
            exit_code: 1,
        },
    };
    crate::logging::call_done(
        plugin.name(),
        outcome.exit_code,
        &outcome.stdout,
        started.elapsed(),
    );
    let mut out = std::io::stdout().lock();
    if !outcome.stdout.is_empty() {
        // Nothing useful can be done if stdout is gone: the exit code still tells.
        let _ = writeln!(out, "{}", outcome.stdout);
    }
    let _ = out.flush();
    ExitCode::from(outcome.exit_code)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::ErrorCode;

    struct Echo;

    impl Plugin for Echo {
        fn name(&self) -> &'static str {
            "echo"
        }
        fn known_args(&self) -> &'static [&'static str] {
            &["IP"]
        }
        fn add(&self, req: &Request) -> Result<CniResult, Error> {
            if req.inv.ifname == "boom0" {
                panic!("kaboom");
            }
            Ok(CniResult {
                ips: vec![crate::IpConfig {
                    interface: None,
                    address: "10.0.0.2/24".parse().unwrap(),
                    gateway: None,
                }],
                ..CniResult::default()
            })
        }
        fn del(&self, _: &Request) -> Result<(), Error> {
            Ok(())
        }
        fn check(&self, _: &Request) -> Result<(), Error> {
            Err(Error::new(ErrorCode(100), "not there", ""))
        }
        fn status(&self, _: &Request) -> Result<(), Error> {
            Ok(())
        }
        fn gc(&self, _: &Request) -> Result<(), Error> {
            Ok(())
        }
    }

    fn call(vars: &[(&str, &str)], stdin: &str) -> (Outcome, serde_json::Value) {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let env = move |k: &str| map.get(k).cloned();
        let out = run(&Echo, &env, stdin.as_bytes().to_vec());
        let value = if out.stdout.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&out.stdout).expect("stdout is one JSON object")
        };
        (out, value)
    }

    const ADD: &[(&str, &str)] = &[
        ("CNI_COMMAND", "ADD"),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/proc/self/ns/net"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/opt/cni/bin"),
    ];

    #[test]
    fn add_prints_result_in_netconf_version() {
        for v in Version::ALL {
            let (out, json) = call(ADD, &format!(r#"{{"cniVersion":"{v}","name":"n"}}"#));
            assert_eq!(out.exit_code, 0, "{}", out.stdout);
            assert_eq!(json["cniVersion"], v.as_str());
        }
    }

    #[test]
    fn missing_variables_are_all_named() {
        let (out, json) = call(
            &[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "c1"),
                ("CNI_NETNS", ""),
            ],
            r#"{"cniVersion":"1.0.0","name":"n"}"#,
        );
        assert_eq!(out.exit_code, 1);
        assert_eq!(json["code"], 4);
        assert_eq!(json["cniVersion"], "1.0.0");
        let msg = json["msg"].as_str().unwrap();
        for v in ["CNI_NETNS", "CNI_IFNAME", "CNI_PATH"] {
            assert!(msg.contains(v), "{msg}");
        }
    }

    #[test]
    fn panics_become_error_objects() {
        let mut vars = ADD.to_vec();
        vars[3] = ("CNI_IFNAME", "boom0");
        let (out, json) = call(&vars, r#"{"cniVersion":"1.0.0","name":"n"}"#);
        assert_eq!(out.exit_code, 1);
        assert_eq!(json["code"], 100);
        assert_eq!(json["details"], "kaboom");
    }

    #[test]
    fn version_answers_whatever_stdin_holds() {
        for stdin in [
            "",
            "garbage",
            r#"{"cniVersion":"0.4.0"}"#,
            r#"{"cniVersion":"9.9.9"}"#,
        ] {
            let (out, json) = call(&[("CNI_COMMAND", "VERSION")], stdin);
            assert_eq!(out.exit_code, 0);
            assert_eq!(json["supportedVersions"].as_array().unwrap().len(), 7);
        }
        let (_, json) = call(&[("CNI_COMMAND", "VERSION")], r#"{"cniVersion":"0.4.0"}"#);
        assert_eq!(json["cniVersion"], "0.4.0");
    }

    #[test]
    fn verb_gates_by_version() {
        let mut vars = ADD.to_vec();
        vars[0] = ("CNI_COMMAND", "CHECK");
        let (_, json) = call(&vars, r#"{"cniVersion":"0.3.1","name":"n"}"#);
        assert_eq!(json["code"], 1);
        let (_, json) = call(&vars, r#"{"cniVersion":"0.4.0","name":"n"}"#);
        assert_eq!(json["code"], 100, "CHECK reached the plugin");
        for verb in ["STATUS", "GC"] {
            let vars = [("CNI_COMMAND", verb), ("CNI_PATH", "/x")];
            let (_, json) = call(&vars, r#"{"cniVersion":"1.0.0","name":"n"}"#);
            assert_eq!(json["code"], 1, "{verb}");
            let (out, _) = call(&vars, r#"{"cniVersion":"1.1.0","name":"n"}"#);
            assert_eq!(
                out,
                Outcome {
                    stdout: String::new(),
                    exit_code: 0
                },
                "{verb}"
            );
        }
    }

    /// `call` gives what an exec of `run` gives once its stdout is read as a caller reads it.
    #[test]
    fn call_is_run_without_text() {
        let base = crate::invocation::Invocation {
            command: Command::Add,
            container_id: "c1".into(),
            netns: Some("/proc/self/ns/net".into()),
            ifname: "eth0".into(),
            args: crate::CniArgs::default(),
            path: vec!["/opt/cni/bin".into()],
        };
        let mut cases = Vec::new();
        for v in Version::ALL {
            cases.push((base.clone(), v));
        }
        for command in [Command::Del, Command::Check, Command::Status, Command::Gc] {
            cases.push((base.with_command(command), Version::V1_1_0));
            cases.push((base.with_command(command), Version::V0_3_1));
        }
        let mut boom = base.clone();
        boom.ifname = "boom0".into();
        cases.push((boom, Version::V1_0_0));
        let mut unknown = base.clone();
        unknown.args.set("FOO", "1");
        cases.push((unknown, Version::V1_0_0));
        let mut known = base.clone();
        known.args.set("IP", "10.0.0.9");
        cases.push((known, Version::V1_0_0));
        let mut missing = base.clone();
        missing.netns = None;
        cases.push((missing, Version::V1_0_0));

        for (inv, v) in cases {
            let conf = serde_json::json!({"cniVersion": v, "name": "n", "type": "echo"});
            let vars: HashMap<&str, String> = inv.env().into_iter().collect();
            let env = |k: &str| vars.get(k).cloned();
            let out = run(&Echo, &env, serde_json::to_vec(&conf).unwrap());
            let exec = if out.exit_code != 0 {
                Err(serde_json::from_str::<Error>(&out.stdout).unwrap())
            } else if inv.command == Command::Add {
                Ok(Some(
                    CniResult::parse_labelled(out.stdout.as_bytes()).unwrap().0,
                ))
            } else {
                Ok(None)
            };
            let Value::Object(conf) = conf else {
                unreachable!()
            };
            assert_eq!(
                super::call(&Echo, &inv, conf),
                exec,
                "{} at {v}",
                inv.command
            );
        }
    }

    #[test]
    fn error_objects_snapshot() {
        let mut all = String::new();
        type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
        let cases: &[Case] = &[
            ("no command", vec![], "{}"),
            ("unknown command", vec![("CNI_COMMAND", "FROB")], "{}"),
            ("bad json", ADD.to_vec(), "{nope"),
            ("no name", ADD.to_vec(), r#"{"cniVersion":"1.0.0"}"#),
            (
                "bad name",
                ADD.to_vec(),
                r#"{"cniVersion":"1.0.0","name":"a/b"}"#,
            ),
            (
                "bad version",
                ADD.to_vec(),
                r#"{"cniVersion":"9.9.9","name":"n"}"#,
            ),
            (
                "bad container id",
                [&[("CNI_CONTAINERID", "-abc")], ADD].concat(),
                r#"{"cniVersion":"1.0.0","name":"n"}"#,
            ),
            (
                "bad args",
                [ADD, &[("CNI_ARGS", "FOO=bar")]].concat(),
                r#"{"cniVersion":"0.4.0","name":"n"}"#,
            ),
        ];
        for (what, vars, stdin) in cases {
            // The case's own variables win over ADD's defaults.
            let mut map = HashMap::new();
            for (k, v) in vars.iter().chain(ADD.iter().filter(|_| !vars.is_empty())) {
                map.entry(*k).or_insert(*v);
            }
            let pairs: Vec<(&str, &str)> = map.into_iter().collect();
            let (out, _) = call(&pairs, stdin);
            assert_eq!(out.exit_code, 1, "{what}");
            all.push_str(&format!("{what}: {}\n", out.stdout));
        }
        insta::assert_snapshot!("skeleton_errors", all);
    }
}
