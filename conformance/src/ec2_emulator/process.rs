//! The emulator's Python process: started from the suite's virtualenv in a process group of
//! its own, ready once it prints the ports it listens on, killed with its whole group.

use std::io::{BufRead, BufReader, Read, Seek};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;

/// The environment variable naming the virtualenv (as in conformance/packages.sh).
pub(crate) const VENV_ENV: &str = "META_CNI_TEST_VENV";
/// The virtualenv conformance/packages.sh makes unless told otherwise.
pub(crate) const DEFAULT_VENV: &str = "/opt/meta-cni-test-venv";

/// Starting imports moto (a few seconds); allow for a loaded 2-core machine running tests in
/// parallel.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

/// The virtualenv's Python.
pub(crate) fn python() -> PathBuf {
    let venv = std::env::var_os(VENV_ENV).unwrap_or_else(|| DEFAULT_VENV.into());
    PathBuf::from(venv).join("bin/python")
}

/// The launcher, from the source tree (it is not installed anywhere).
pub(crate) fn launcher() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("emulator/ec2_emulator.py")
}

/// A running emulator process.
#[derive(Debug)]
pub(crate) struct Process {
    child: Child,
    /// stdout and stderr after the ready line (moto's and werkzeug's request log, tracebacks).
    log: tempfile::NamedTempFile,
    pub(crate) ec2: SocketAddr,
    pub(crate) imds: SocketAddr,
}

impl Process {
    /// Starts the launcher listening on `host` (port 0: free ports) and waits until it is
    /// ready. The process is in the calling thread's network namespace.
    pub(crate) fn start(
        host: IpAddr,
        ec2_port: u16,
        imds_port: u16,
        region: &str,
    ) -> Result<Process, String> {
        let python = python();
        if !python.exists() {
            return Err(format!(
                "{} is missing: run ./conformance/packages.sh (as root) to make the emulator's \
                 virtualenv, or point {VENV_ENV} at one",
                python.display()
            ));
        }
        let log = tempfile::NamedTempFile::new().map_err(|e| format!("log file: {e}"))?;
        let stderr = log.reopen().map_err(|e| format!("log file: {e}"))?;
        let mut child = Command::new(&python)
            .arg(launcher())
            .args(["--host", &host.to_string()])
            .args(["--ec2-port", &ec2_port.to_string()])
            .args(["--imds-port", &imds_port.to_string()])
            .args(["--region", region])
            .args(["--parent-pid", &std::process::id().to_string()])
            // No __pycache__ in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            // Its own group, so that dropping kills it and anything it may start.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("start {}: {e}", python.display()))?;

        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let mut reader = BufReader::new(stdout);
            let _ = tx.send(reader.read_line(&mut line).map(|_| line));
            // Keep draining, so that a print in the emulator never blocks it.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let mut process = Process {
            child,
            log,
            ec2: SocketAddr::from((host, 0)),
            imds: SocketAddr::from((host, 0)),
        };
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(Ok(line)) if !line.is_empty() => line,
            Ok(Ok(_)) => return Err(format!("the emulator exited:\n{}", process.log())),
            Ok(Err(e)) => return Err(format!("read the emulator's stdout: {e}")),
            Err(_) => {
                return Err(format!(
                    "the emulator was not ready within {READY_TIMEOUT:?}:\n{}",
                    process.log()
                ))
            }
        };
        let ports: Value =
            serde_json::from_str(&line).map_err(|e| format!("bad ready line {line:?}: {e}"))?;
        let port = |key: &str| {
            ports[key]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| format!("no {key} in the ready line {line:?}"))
        };
        process.ec2.set_port(port("ec2_port")?);
        process.imds.set_port(port("imds_port")?);
        Ok(process)
    }

    /// Everything the emulator wrote to stderr so far.
    pub(crate) fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = self.log.reopen() {
            let _ = file.rewind();
            let _ = file.read_to_string(&mut text);
        }
        text
    }

    /// The process id (also its process group id).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let group = Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits in i32"));
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
