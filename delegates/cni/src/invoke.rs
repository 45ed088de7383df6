//! Running a delegate plugin binary as the spec says: found in `CNI_PATH`, exec'd with the
//! `CNI_*` environment and the netconf on stdin, its stdout read as a result or an error.
//! This is the only place a delegate call becomes env, bytes and text and back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};

use serde_json::{Map, Value};

use crate::error::{Error, ErrorCode};
use crate::invocation::{Command, Invocation};
use crate::result::CniResult;
use crate::validate;
use crate::version::Version;

/// Finds plugin `plugin_type` in the `CNI_PATH` directories: the first executable file.
pub fn find_in_path(plugin_type: &str, path: &[PathBuf]) -> Result<PathBuf, Error> {
    find_named_in_path("type", plugin_type, path)
}

/// As [`find_in_path`], for a plugin named by config key `field` (`ipam.type`, say), which
/// the error names.
pub fn find_named_in_path(
    field: &str,
    plugin_type: &str,
    path: &[PathBuf],
) -> Result<PathBuf, Error> {
    validate::plugin_type(plugin_type)?;
    path.iter()
        .map(|dir| dir.join(plugin_type))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| {
            let dirs: Vec<String> = path.iter().map(|p| p.display().to_string()).collect();
            Error::invalid_config(
                field,
                plugin_type,
                format!("failed to find plugin in CNI_PATH [{}]", dirs.join(", ")),
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Execs `binary` for `inv` with `stdin`; returns its stdout on success, its error object
/// (or one describing how it died) on failure.
pub fn exec(binary: &Path, inv: &Invocation, stdin: &[u8]) -> Result<Vec<u8>, Error> {
    let name = binary.display().to_string();
    let mut child = Process::new(binary);
    // The delegate must see exactly this call's CNI_* variables, not ours.
    for key in crate::CALL_VARS {
        child.env_remove(key);
    }
    child
        .envs(crate::call_env::current())
        .envs(inv.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // A binary still open for writing (being installed, or its fd held by a process that
    // forked meanwhile) fails with ETXTBSY: it passes, so retry as libcni does.
    let mut backoff = std::time::Duration::from_millis(20);
    let mut child = loop {
        match child.spawn() {
            Err(e)
                if e.kind() == std::io::ErrorKind::ExecutableFileBusy && backoff.as_secs() < 1 =>
            {
                std::thread::sleep(backoff);
                backoff *= 2;
            }
            spawned => break spawned.map_err(|e| Error::io(format!("exec plugin {name}"), e))?,
        }
    };
    if let Some(mut input) = child.stdin.take() {
        // A plugin may exit without reading stdin (VERSION does): a broken pipe is fine.
        if let Err(e) = input.write_all(stdin) {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                return Err(Error::io(format!("write stdin of plugin {name}"), e));
            }
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io(format!("wait for plugin {name}"), e))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    if let Ok(e) = serde_json::from_slice::<Error>(&out.stdout) {
        return Err(e);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    Err(Error::new(
        ErrorCode::DELEGATE_FAILED,
        format!("plugin {name} {} failed ({})", inv.command, out.status),
        stderr.trim().to_string(),
    ))
}

/// Execs `binary` for `inv` with netconf `config` (serialized onto its stdin): an ADD's
/// result, read as libcni reads it (in the version it is labelled with); nothing for the
/// other verbs, whose stdout is not read.
pub fn exec_plugin(
    binary: &Path,
    inv: &Invocation,
    config: &Map<String, Value>,
) -> Result<Option<CniResult>, Error> {
    let stdin =
        serde_json::to_vec(config).map_err(|e| Error::internal("encode plugin config", e))?;
    let stdout = exec(binary, inv, &stdin)?;
    if inv.command != Command::Add {
        return Ok(None);
    }
    let (result, _) = CniResult::parse_labelled(&stdout)?;
    Ok(Some(result))
}

/// A plugin's VERSION answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct VersionInfo {
    /// The version the answer is labelled with.
    #[serde(rename = "cniVersion")]
    pub cni_version: String,
    /// Versions the plugin speaks (unknown ones are dropped).
    #[serde(rename = "supportedVersions", deserialize_with = "known_versions")]
    pub supported_versions: Vec<Version>,
}

fn known_versions<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Version>, D::Error> {
    let all: Vec<String> = serde::Deserialize::deserialize(d)?;
    Ok(all.iter().filter_map(|s| s.parse().ok()).collect())
}

/// Asks `binary` which versions it speaks.
pub fn version_of(binary: &Path, inv: &Invocation) -> Result<VersionInfo, Error> {
    let stdin = format!(r#"{{"cniVersion":"{}"}}"#, Version::LATEST);
    let out = exec(
        binary,
        &inv.with_command(Command::Version),
        stdin.as_bytes(),
    )?;
    serde_json::from_slice(&out).map_err(|e| Error::decoding("decode VERSION answer", e))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::CniArgs;

    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn inv(path: &Path) -> Invocation {
        Invocation {
            command: Command::Add,
            container_id: "c1".into(),
            netns: Some("/proc/self/ns/net".into()),
            ifname: "eth0".into(),
            args: CniArgs::parse("IgnoreUnknown=1").unwrap(),
            path: vec![path.to_path_buf()],
        }
    }

    #[test]
    fn finds_first_executable_in_path() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::write(a.path().join("p"), "not executable").unwrap();
        let want = script(b.path(), "p", "true");
        let path = [a.path().to_path_buf(), b.path().to_path_buf()];
        assert_eq!(find_in_path("p", &path).unwrap(), want);
        let e = find_in_path("missing", &path).unwrap_err();
        assert_eq!(e.code, ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(e.msg.contains("missing"), "{e}");
        assert!(find_in_path("../p", &path).is_err());
    }

    #[test]
    fn passes_environment_and_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let bin = script(
            dir.path(),
            "env-echo",
            r#"printf '{"cmd":"%s","id":"%s","if":"%s","args":"%s","stdin":%s}' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_IFNAME" "$CNI_ARGS" "$(cat)""#,
        );
        let out = exec(&bin, &inv(dir.path()), br#"{"x":1}"#).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"cmd":"ADD","id":"c1","if":"eth0","args":"IgnoreUnknown=1","stdin":{"x":1}})
        );
    }

    #[test]
    fn failures_carry_the_plugins_error_or_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let bin = script(
            dir.path(),
            "fails",
            r#"echo '{"code":7,"msg":"bad bridge"}'; exit 1"#,
        );
        assert_eq!(
            exec(&bin, &inv(dir.path()), b"{}").unwrap_err(),
            Error::new(ErrorCode(7), "bad bridge", "")
        );
        let bin = script(dir.path(), "dies", "echo oops >&2; exit 3");
        let e = exec(&bin, &inv(dir.path()), b"{}").unwrap_err();
        assert_eq!(e.code, ErrorCode::DELEGATE_FAILED);
        assert_eq!(e.details, "oops");
    }

    #[test]
    fn exec_plugin_reads_only_an_adds_result() {
        let dir = tempfile::tempdir().unwrap();
        let bin = script(
            dir.path(),
            "res",
            r#"cat >/dev/null; echo '{"cniVersion":"0.2.0","ip4":{"ip":"10.0.0.2/24"}}'"#,
        );
        let config: Map<String, Value> =
            serde_json::from_str(r#"{"cniVersion":"1.0.0","name":"n"}"#).unwrap();
        let result = exec_plugin(&bin, &inv(dir.path()), &config)
            .unwrap()
            .unwrap();
        assert_eq!(result.ips[0].address.to_string(), "10.0.0.2/24");
        let del = inv(dir.path()).with_command(Command::Del);
        assert_eq!(exec_plugin(&bin, &del, &config).unwrap(), None);
        let bin = script(dir.path(), "garbage", "echo nope");
        let e = exec_plugin(&bin, &inv(dir.path()), &config).unwrap_err();
        assert_eq!(e.code, ErrorCode::DECODING_FAILURE);
        assert_eq!(e.msg, "decode result");
    }

    #[test]
    fn version_query() {
        let dir = tempfile::tempdir().unwrap();
        let bin = script(
            dir.path(),
            "v",
            r#"echo '{"cniVersion":"1.0.0","supportedVersions":["0.3.1","1.0.0","7.0.0"]}'"#,
        );
        let info = version_of(&bin, &inv(dir.path())).unwrap();
        assert_eq!(
            info.supported_versions,
            vec![Version::V0_3_1, Version::V1_0_0]
        );
    }
}
