//! The meta plugin's daemon (thick mode) for tests: `meta-cni-daemon` (a link to the binary
//! under test) started inside a test's node namespace, where its calls make their links,
//! with its socket in a private directory and its health and metrics on that namespace's
//! loopback (brought up here). Dropping it kills it; [`MetaDaemon::stop`] is the graceful SIGTERM.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use kernel::Netns;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::plugin_set::meta_cni_binary;

/// The port of the daemon's health and metrics, on its namespace's loopback.
pub const HEALTH_PORT: u16 = 9695;

/// A running daemon.
#[derive(Debug)]
pub struct MetaDaemon {
    child: Option<Child>,
    binary: PathBuf,
    socket: PathBuf,
    netns: Netns,
    log: PathBuf,
    log_level: String,
    args: Vec<String>,
    /// Environment variables on top of the test's (a pod's `KUBERNETES_SERVICE_HOST`, ...).
    env: Vec<(String, String)>,
    /// Holds the socket's directory, the link and the log.
    dir: tempfile::TempDir,
}

/// `meta-cni-daemon`, a link to `binary`, in `dir`.
fn daemon_link(dir: &Path, binary: &Path) -> PathBuf {
    let link = dir.join("meta-cni-daemon");
    if !link.exists() {
        std::os::unix::fs::symlink(binary, &link).expect("link meta-cni-daemon");
    }
    link
}

impl MetaDaemon {
    /// Starts the daemon in `netns` with `args` on top of its socket and health address,
    /// and waits until its socket accepts connections.
    pub fn start(netns: &Netns, args: &[&str]) -> MetaDaemon {
        MetaDaemon::start_binary(&meta_cni_binary(), netns, args)
    }

    /// As [`MetaDaemon::start`], of the multi-call binary `binary` (a benchmark's release
    /// build).
    pub fn start_binary(binary: &Path, netns: &Netns, args: &[&str]) -> MetaDaemon {
        MetaDaemon::start_binary_with_env(binary, netns, args, &[])
    }

    /// As [`MetaDaemon::start`], with `env` set in the daemon's environment (as the
    /// kubelet sets `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT` in a pod's).
    pub fn start_with_env(netns: &Netns, args: &[&str], env: &[(&str, String)]) -> MetaDaemon {
        MetaDaemon::start_binary_with_env(&meta_cni_binary(), netns, args, env)
    }

    fn start_binary_with_env(
        binary: &Path,
        netns: &Netns,
        args: &[&str],
        env: &[(&str, String)],
    ) -> MetaDaemon {
        let mut nl = kernel::Netlink::in_netns(netns).expect("netlink in the node namespace");
        let lo = nl.link_by_name("lo").expect("look lo up").expect("lo");
        nl.set_link_up(lo.index).expect("bring lo up");
        let dir = tempfile::tempdir().expect("temp dir");
        let mut daemon = MetaDaemon {
            child: None,
            binary: binary.to_path_buf(),
            socket: dir.path().join("run/daemon.sock"),
            netns: Netns::open(netns.path()).expect("open the node namespace"),
            log: dir.path().join("daemon.log"),
            log_level: std::env::var("META_CNI_LOG").unwrap_or_else(|_| "info".into()),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            dir,
        };
        daemon.restart();
        daemon
    }

    /// Starts the daemon again (after [`MetaDaemon::kill`] or [`MetaDaemon::stop`]), with
    /// the same socket, arguments and log file, and waits for its socket.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the daemon is running");
        let health = SocketAddr::from((Ipv4Addr::LOCALHOST, HEALTH_PORT)).to_string();
        let mut cmd = Command::new(daemon_link(self.dir.path(), &self.binary));
        cmd.args(["--socket", &self.socket.display().to_string()])
            .args(["--metrics-address", &health])
            .args(&self.args)
            // Standalone unless a test says otherwise, even when the suite runs in a pod.
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("KUBERNETES_SERVICE_PORT")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("META_CNI_LOG", &self.log_level)
            .env("META_CNI_LOG_FILE", &self.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = self
            .netns
            .run(|| cmd.spawn())
            .expect("enter the node namespace")
            .expect("spawn meta-cni-daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("the daemon exited ({status}): {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "no daemon socket: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Restarts the daemon logging at `level` (`debug`, ...; default `$META_CNI_LOG` or
    /// `info`).
    pub fn set_log_level(&mut self, level: &str) {
        self.log_level = level.to_string();
        self.kill();
        self.restart();
    }

    /// Peak resident memory so far (`VmHWM`), KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read the daemon's status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in the daemon's status")
    }

    /// The socket, for a netconf's `daemonSocket`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The daemon's process ID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the daemon is running").id()
    }

    /// Everything the daemon logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then waits for the exit (at most `timeout`); the exit status.
    pub fn stop(&mut self, timeout: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("the daemon is running");
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the daemon") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the daemon did not exit within {timeout:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `GET path` on the health port; the status code and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let text = self
            .netns
            .run(|| -> std::io::Result<String> {
                let mut stream =
                    TcpStream::connect(SocketAddr::from((Ipv4Addr::LOCALHOST, HEALTH_PORT)))?;
                stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                write!(
                    stream,
                    "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                )?;
                let mut text = String::new();
                stream.read_to_string(&mut text)?;
                Ok(text)
            })
            .expect("enter the node namespace")
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// The value of the metric sample `line_prefix` (a name with its labels, as the text
    /// shows it); `None` when there is no such sample.
    pub fn metric(&self, line_prefix: &str) -> Option<f64> {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(line_prefix)?.trim().parse().ok())
    }
}

impl Drop for MetaDaemon {
    fn drop(&mut self) {
        self.kill();
    }
}
