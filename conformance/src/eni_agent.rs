//! The ENI agent under test: `eni-ipamd` started against an [`Ec2Emulator`], with a private
//! directory for its socket, checkpoint and log.
//!
//! ```no_run
//! use conformance::ec2_emulator::{Ec2Emulator, NodeSpec};
//! use conformance::eni_agent::EniAgent;
//!
//! let cloud = Ec2Emulator::start();
//! let node = cloud.seed_node(&NodeSpec::new("t3.medium"));
//! let mut agent = EniAgent::start(&cloud, &[("WARM_IP_TARGET", "2")]);
//! let pool = agent.get("/v1/pool");
//! agent.kill9();
//! agent.restart();
//! ```
//!
//! The agent runs with short timers (see [`FAST_TIMERS`]); a test overrides any variable by
//! passing it again. Dropping the handle (also while a test panics) kills the agent.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use eni_ip::protocol::client::Client;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

use crate::ec2_emulator::{request, Ec2Emulator, HttpResponse};
use crate::emulated_vpc::EmulatedVpc;

/// How long the agent may take to learn the node and print its ready line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The timers the tests run with: ipamd's, scaled down so a scenario takes seconds.
pub const FAST_TIMERS: &[(&str, &str)] = &[
    ("ENI_IPAMD_POOL_INTERVAL_MS", "100"),
    ("ENI_IPAMD_RECONCILE_INTERVAL_MS", "1000"),
    ("ENI_IPAMD_DECREASE_INTERVAL_MS", "300"),
    ("ENI_IPAMD_INSUFFICIENT_CIDR_COOLDOWN_MS", "2000"),
    ("ENI_IPAMD_MIN_ENI_LIFETIME_MS", "500"),
    ("ENI_IPAMD_RECONCILE_COOLDOWN_MS", "1000"),
    ("ENI_IPAMD_DETACH_WAIT_MS", "20"),
    ("IP_COOLDOWN_PERIOD", "1"),
];

/// The `eni-ipamd` binary under test: `$ENI_IPAMD_BIN`, else the one cargo built next to
/// the running test (`cargo test --workspace` builds it before any test runs).
pub fn eni_ipamd_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("ENI_IPAMD_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("current test executable");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("eni-ipamd"))
        .expect("test executable lives in target/<profile>/deps");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build -p eni-ipamd`) first, \
         or set ENI_IPAMD_BIN",
        bin.display()
    );
    bin
}

/// A running (or stopped) `eni-ipamd`.
#[derive(Debug)]
pub struct EniAgent {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    child: Option<Child>,
    introspection: Option<SocketAddr>,
    /// The node namespace it runs in, when it runs in an emulated VPC's node.
    netns: Option<kernel::Netns>,
}

impl EniAgent {
    /// Starts the agent against `cloud` with `env` on top of [`FAST_TIMERS`]; panics with its
    /// log if it does not become ready. It runs in the test's namespace, so it leaves the
    /// node's network alone (`ENI_IPAMD_MANAGE_NODE_NETWORK=false`): these runs test the pool.
    #[track_caller]
    pub fn start(cloud: &Ec2Emulator, env: &[(&str, &str)]) -> EniAgent {
        let mut agent = EniAgent::new(cloud, env);
        if let Err(e) = agent.spawn() {
            panic!("eni-ipamd did not start: {e}\n{}", agent.log());
        }
        agent
    }

    /// Starts the agent in the (first) node namespace of `vpc`, managing the node's network
    /// as in production (rule 1024, SNAT, each secondary ENI's routing), with `env` on top of
    /// [`FAST_TIMERS`]; panics with its log if it does not become ready.
    #[track_caller]
    pub fn start_in(vpc: &EmulatedVpc, env: &[(&str, &str)]) -> EniAgent {
        EniAgent::start_on(vpc, 0, env)
    }

    /// [`EniAgent::start_in`] on node `node` of `vpc`: it reaches EC2 and IMDS through the
    /// VPC, and IMDS answers it with that node's instance.
    #[track_caller]
    pub fn start_on(vpc: &EmulatedVpc, node: usize, env: &[(&str, &str)]) -> EniAgent {
        let mut agent = EniAgent::new(vpc.cloud(), env);
        agent.netns = Some(
            vpc.nodes()[node]
                .netns()
                .netns()
                .expect("open the node namespace"),
        );
        agent.set_env("AWS_EC2_ENDPOINT", &vpc.ec2_url());
        agent.set_env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &vpc.imds_url());
        agent.set_env("ENI_IPAMD_MANAGE_NODE_NETWORK", "true");
        if let Err(e) = agent.spawn() {
            panic!("eni-ipamd did not start: {e}\n{}", agent.log());
        }
        agent
    }

    /// Starts the agent and returns its exit status if it stops before it is ready.
    pub fn try_start(
        cloud: &Ec2Emulator,
        env: &[(&str, &str)],
    ) -> Result<EniAgent, (String, String)> {
        let mut agent = EniAgent::new(cloud, env);
        match agent.spawn() {
            Ok(()) => Ok(agent),
            Err(e) => Err((e, agent.log())),
        }
    }

    fn new(cloud: &Ec2Emulator, env: &[(&str, &str)]) -> EniAgent {
        let dir = tempfile::Builder::new()
            .prefix("eni-agent")
            .tempdir()
            .expect("temp dir");
        let mut all: Vec<(String, String)> = vec![
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_EC2_ENDPOINT".into(), cloud.ec2_url()),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT".into(), cloud.imds_url()),
            ("RUST_LOG".into(), "info,aws_smithy_runtime=warn".into()),
            ("ENI_IPAMD_MANAGE_NODE_NETWORK".into(), "false".into()),
        ];
        all.extend(
            FAST_TIMERS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        EniAgent {
            dir,
            env: all,
            child: None,
            introspection: None,
            netns: None,
        }
    }

    /// The plugin socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/eni-ipamd.sock")
    }

    /// The checkpoint file.
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.path().join("state/ipam.json")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    /// Everything the agent (every run of it) logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The agent's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("log file: {e}"))?;
        let mut command = Command::new(eni_ipamd_binary());
        command
            .arg("--socket")
            .arg(self.socket())
            .arg("--checkpoint")
            .arg(self.checkpoint())
            .arg("--introspection")
            .arg("127.0.0.1:0")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let spawned = match &self.netns {
            Some(netns) => netns
                .run(|| command.spawn())
                .map_err(|e| format!("enter the node namespace: {e}"))?,
            None => command.spawn(),
        };
        let mut child = spawned.map_err(|e| format!("spawn: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        self.child = Some(child);
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) if !line.trim().is_empty() => line,
            Ok(_) => {
                let status = self.child.as_mut().and_then(|c| c.wait().ok());
                self.child = None;
                return Err(format!("exited before it was ready: {status:?}"));
            }
            Err(_) => return Err(format!("no ready line within {READY_TIMEOUT:?}")),
        };
        let ready: Value =
            serde_json::from_str(line.trim()).map_err(|e| format!("ready line {line:?}: {e}"))?;
        if ready["socket"] != self.socket().display().to_string() {
            return Err(format!("ready line names another socket: {ready}"));
        }
        let addr = ready["introspection"]
            .as_str()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("ready line without introspection: {ready}"))?;
        self.introspection = Some(addr);
        Ok(())
    }

    /// A plugin-side client of the agent's socket.
    pub fn client(&self) -> Client {
        Client::new(self.socket(), "conformance").with_timeout(Duration::from_secs(60))
    }

    /// The introspection address.
    pub fn introspection(&self) -> SocketAddr {
        self.introspection.expect("the agent has started")
    }

    /// `GET path` on the introspection server.
    #[track_caller]
    pub fn get_raw(&self, path: &str) -> HttpResponse {
        let get = || request(self.introspection(), "GET", path, &[], b"");
        let answer = match &self.netns {
            Some(netns) => netns.run(get).expect("enter the node namespace"),
            None => get(),
        };
        answer.unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log()))
    }

    /// `GET path` on the introspection server, as JSON (panics unless 200).
    #[track_caller]
    pub fn get(&self, path: &str) -> Value {
        let answer = self.get_raw(path);
        assert_eq!(answer.status, 200, "GET {path}: {answer:?}");
        serde_json::from_str(&answer.body)
            .unwrap_or_else(|e| panic!("GET {path}: {e}: {}", answer.body))
    }

    /// Polls `cond` every 50 ms until it holds; panics after `timeout` naming `what`.
    #[track_caller]
    pub fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, and wait for the process to go.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and wait for the graceful exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the agent runs");
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        child.wait().expect("wait for the agent")
    }

    /// Sets an environment variable for the next (re)start.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Starts the agent again with the same directory and environment.
    #[track_caller]
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the agent first");
        if let Err(e) = self.spawn() {
            panic!("eni-ipamd did not restart: {e}\n{}", self.log());
        }
    }

    /// The checkpoint's content, as JSON.
    pub fn read_checkpoint(&self) -> Value {
        let file = File::open(self.checkpoint()).expect("the checkpoint exists");
        serde_json::from_reader(file).expect("the checkpoint is JSON")
    }
}

impl Drop for EniAgent {
    fn drop(&mut self) {
        self.kill9();
    }
}
