//! The agent's settings: command-line flags, the AWS VPC CNI's environment variables
//! (through the core's [`WarmPoolConfig`]) and the timers, whose defaults are ipamd's and
//! which tests shorten through `ENI_IPAMD_*_MS`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use eni_ip::checkpoint::DEFAULT_CHECKPOINT_PATH;
use eni_ip::protocol::DEFAULT_SOCKET;
use eni_ip::{ConfigError, WarmPoolConfig};

use crate::cloud::CloudOptions;

/// The default introspection address (ipamd's `127.0.0.1:61679`).
pub const DEFAULT_INTROSPECTION: &str = "127.0.0.1:61679";

/// The settings could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A warm-pool variable is invalid.
    #[error(transparent)]
    WarmPool(#[from] ConfigError),
    /// A timer or count variable is not a non-negative integer.
    #[error("{key}={value:?}: not a non-negative integer")]
    NotAnInteger {
        /// The variable.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// A boolean variable is neither true nor false.
    #[error("{key}={value:?}: not true or false")]
    NotABoolean {
        /// The variable.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// A flag the agent does not know.
    #[error("unknown argument {0:?} (try --help)")]
    UnknownArgument(String),
    /// A flag without its value.
    #[error("{0} needs a value")]
    MissingValue(&'static str),
    /// `--introspection` is not `ADDR:PORT` on loopback.
    #[error("--introspection {0:?}: not a loopback ADDR:PORT (introspection stays on the node)")]
    Introspection(String),
}

/// The pool manager's timers (`pkg/ipamd/ipamd.go`'s constants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Between two pool-manager ticks (ipamd: 5 s).
    pub pool_interval: Duration,
    /// Between two reconciles with IMDS/EC2 (ipamd: 60 s).
    pub reconcile_interval: Duration,
    /// Between two give-backs of free blocks (ipamd: 30 s).
    pub decrease_interval: Duration,
    /// No growth after `InsufficientFreeAddressesInSubnet`/`InsufficientCidrBlocks`
    /// (ipamd: 120 s).
    pub insufficient_cidr_cooldown: Duration,
    /// An ENI younger than this is not freed (ipamd: 60 s).
    pub min_eni_lifetime: Duration,
    /// Reconcile ignores a just-unassigned block still shown by IMDS (ipamd: 60 s).
    pub reconcile_cooldown: Duration,
    /// Between the detach and the delete of a freed ENI (ipamd: 2 s).
    pub detach_wait: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            pool_interval: Duration::from_secs(5),
            reconcile_interval: Duration::from_secs(60),
            decrease_interval: Duration::from_secs(30),
            insufficient_cidr_cooldown: Duration::from_secs(120),
            min_eni_lifetime: Duration::from_secs(60),
            reconcile_cooldown: Duration::from_secs(60),
            detach_wait: Duration::from_secs(2),
        }
    }
}

/// Everything the agent is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The warm-pool targets and limits.
    pub warm_pool: WarmPoolConfig,
    /// The timers.
    pub timers: Timers,
    /// `AWS_VPC_K8S_CNI_EXTERNALSNAT`: an external NAT does egress SNAT.
    pub use_external_snat: bool,
    /// The node-wide datapath (rule 1024, SNAT, each secondary ENI's table and rule 32765)
    /// is the agent's to make (`ENI_IPAMD_MANAGE_NODE_NETWORK`, default true; false only
    /// where something else owns the node's network, e.g. the pool tests).
    pub manage_node_network: bool,
    /// The pods' host veth prefix, as the plugin's `vethPrefix` (`AWS_VPC_K8S_CNI_VETHPREFIX`,
    /// default `eni`): the connmark rules match it.
    pub veth_prefix: String,
    /// Secondary ENIs' MTU (`AWS_VPC_ENI_MTU`, default 9001).
    pub eni_mtu: u32,
    /// `--socket`.
    pub socket: PathBuf,
    /// `--checkpoint`.
    pub checkpoint: PathBuf,
    /// `--introspection`.
    pub introspection: SocketAddr,
    /// Connections served at once (`ENI_IPAMD_MAX_CONNECTIONS`, default 64).
    pub max_connections: usize,
    /// Where EC2 and IMDS are.
    pub cloud: CloudOptions,
}

/// The `--help` text.
pub const USAGE: &str = "\
usage: eni-ipamd [--socket PATH] [--checkpoint PATH] [--introspection ADDR:PORT]

The ENI-IP node agent: keeps the node's warm pool of ENI addresses as the AWS VPC CNI's
ipamd does and hands addresses to the eni-ip plugin over a Unix socket.

  --socket PATH            the plugin socket (default /run/eni-ipamd/eni-ipamd.sock)
  --checkpoint PATH        the vpc-cni-ipam/1 state file (default /var/run/aws-node/ipam.json)
  --introspection ADDR     loopback address of /v1/enis, /v1/pods, /v1/pool, /metrics,
                           /healthz, /readyz (default 127.0.0.1:61679; port 0: any)

Environment: WARM_ENI_TARGET, WARM_IP_TARGET, MINIMUM_IP_TARGET, WARM_PREFIX_TARGET, MAX_ENI,
ENABLE_PREFIX_DELEGATION, IP_COOLDOWN_PERIOD, AWS_VPC_K8S_CNI_EXTERNALSNAT,
AWS_VPC_K8S_CNI_VETHPREFIX, AWS_VPC_ENI_MTU, ENI_IPAMD_MANAGE_NODE_NETWORK, AWS_REGION,
AWS_EC2_ENDPOINT, AWS_EC2_METADATA_SERVICE_ENDPOINT, ENI_IPAMD_EC2_MAX_ATTEMPTS, and the timers
ENI_IPAMD_{POOL_INTERVAL,RECONCILE_INTERVAL,DECREASE_INTERVAL,INSUFFICIENT_CIDR_COOLDOWN,
MIN_ENI_LIFETIME,RECONCILE_COOLDOWN,DETACH_WAIT}_MS.
";

fn int(key: &'static str, value: &str) -> Result<u64, SettingsError> {
    value
        .trim()
        .parse()
        .map_err(|_| SettingsError::NotAnInteger {
            key,
            value: value.to_string(),
        })
}

impl Settings {
    /// Reads the flags (without the program name) and environment-like pairs.
    pub fn parse<A, V, K, S>(args: A, vars: V) -> Result<Settings, SettingsError>
    where
        A: IntoIterator<Item = String>,
        V: IntoIterator<Item = (K, S)>,
        K: AsRef<str>,
        S: AsRef<str>,
    {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
            .collect();
        let warm_pool = WarmPoolConfig::from_vars(vars.iter().map(|(k, v)| (k, v)))?;
        let get = |key: &str| {
            vars.iter()
                .rev()
                .find(|(k, v)| k == key && !v.trim().is_empty())
                .map(|(_, v)| v.clone())
        };
        let mut timers = Timers::default();
        for (key, slot) in [
            ("ENI_IPAMD_POOL_INTERVAL_MS", &mut timers.pool_interval),
            (
                "ENI_IPAMD_RECONCILE_INTERVAL_MS",
                &mut timers.reconcile_interval,
            ),
            (
                "ENI_IPAMD_DECREASE_INTERVAL_MS",
                &mut timers.decrease_interval,
            ),
            (
                "ENI_IPAMD_INSUFFICIENT_CIDR_COOLDOWN_MS",
                &mut timers.insufficient_cidr_cooldown,
            ),
            (
                "ENI_IPAMD_MIN_ENI_LIFETIME_MS",
                &mut timers.min_eni_lifetime,
            ),
            (
                "ENI_IPAMD_RECONCILE_COOLDOWN_MS",
                &mut timers.reconcile_cooldown,
            ),
            ("ENI_IPAMD_DETACH_WAIT_MS", &mut timers.detach_wait),
        ] {
            if let Some(v) = get(key) {
                *slot = Duration::from_millis(int(key, &v)?);
            }
        }
        // A zero pool interval would spin.
        timers.pool_interval = timers.pool_interval.max(Duration::from_millis(10));
        let boolean = |key: &'static str, default: bool| match get(key) {
            None => Ok(default),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(SettingsError::NotABoolean { key, value: v }),
            },
        };
        let use_external_snat = boolean("AWS_VPC_K8S_CNI_EXTERNALSNAT", false)?;
        let manage_node_network = boolean("ENI_IPAMD_MANAGE_NODE_NETWORK", true)?;
        let veth_prefix = get("AWS_VPC_K8S_CNI_VETHPREFIX").unwrap_or_else(|| "eni".into());
        let eni_mtu = match get("AWS_VPC_ENI_MTU") {
            Some(v) => int("AWS_VPC_ENI_MTU", &v)?.clamp(576, 9001) as u32,
            None => 9001,
        };
        let max_connections = match get("ENI_IPAMD_MAX_CONNECTIONS") {
            Some(v) => int("ENI_IPAMD_MAX_CONNECTIONS", &v)?.clamp(1, 4096) as usize,
            None => 64,
        };
        let ec2_max_attempts = match get("ENI_IPAMD_EC2_MAX_ATTEMPTS") {
            Some(v) => int("ENI_IPAMD_EC2_MAX_ATTEMPTS", &v)?.clamp(1, 20) as u32,
            None => 5,
        };
        let cloud = CloudOptions {
            region: get("AWS_REGION").or_else(|| get("AWS_DEFAULT_REGION")),
            ec2_endpoint: get("AWS_EC2_ENDPOINT"),
            imds_endpoint: get("AWS_EC2_METADATA_SERVICE_ENDPOINT"),
            ec2_max_attempts,
        };
        let mut settings = Settings {
            warm_pool,
            timers,
            use_external_snat,
            manage_node_network,
            veth_prefix,
            eni_mtu,
            socket: PathBuf::from(DEFAULT_SOCKET),
            checkpoint: PathBuf::from(DEFAULT_CHECKPOINT_PATH),
            introspection: DEFAULT_INTROSPECTION.parse().expect("a valid default"),
            max_connections,
            cloud,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &'static str| {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or(SettingsError::MissingValue(name))
            };
            match flag.as_str() {
                "--socket" => settings.socket = PathBuf::from(value("--socket")?),
                "--checkpoint" => settings.checkpoint = PathBuf::from(value("--checkpoint")?),
                "--introspection" => {
                    let v = value("--introspection")?;
                    let addr: SocketAddr = v
                        .parse()
                        .map_err(|_| SettingsError::Introspection(v.clone()))?;
                    if !addr.ip().is_loopback() {
                        return Err(SettingsError::Introspection(v));
                    }
                    settings.introspection = addr;
                }
                _ => return Err(SettingsError::UnknownArgument(arg)),
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        Settings::parse(
            args.iter().map(|s| s.to_string()),
            vars.iter().map(|(k, v)| (*k, *v)),
        )
    }

    #[test]
    fn defaults_are_ipamds() {
        let s = parse(&[], &[]).unwrap();
        assert_eq!(s.timers, Timers::default());
        assert_eq!(s.timers.pool_interval, Duration::from_secs(5));
        assert_eq!(s.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(s.checkpoint, PathBuf::from(DEFAULT_CHECKPOINT_PATH));
        assert_eq!(s.introspection.port(), 61679);
        assert!(!s.use_external_snat);
        assert_eq!(s.warm_pool, WarmPoolConfig::default());
    }

    #[test]
    fn flags_and_timers_are_read() {
        let s = parse(
            &[
                "--socket",
                "/tmp/s",
                "--checkpoint=/tmp/c",
                "--introspection",
                "127.0.0.1:0",
            ],
            &[
                ("ENI_IPAMD_POOL_INTERVAL_MS", "100"),
                ("ENI_IPAMD_MIN_ENI_LIFETIME_MS", "0"),
                ("AWS_VPC_K8S_CNI_EXTERNALSNAT", "true"),
                ("WARM_IP_TARGET", "3"),
                ("AWS_EC2_ENDPOINT", "http://127.0.0.1:1"),
            ],
        )
        .unwrap();
        assert_eq!(s.socket, PathBuf::from("/tmp/s"));
        assert_eq!(s.checkpoint, PathBuf::from("/tmp/c"));
        assert_eq!(s.introspection.port(), 0);
        assert_eq!(s.timers.pool_interval, Duration::from_millis(100));
        assert_eq!(s.timers.min_eni_lifetime, Duration::ZERO);
        assert!(s.use_external_snat);
        assert_eq!(s.warm_pool.warm_ip_target, 3);
        assert_eq!(s.cloud.ec2_endpoint.as_deref(), Some("http://127.0.0.1:1"));
    }

    #[test]
    fn bad_input_is_refused_by_name() {
        let err = |args: &[&str], vars: &[(&str, &str)]| parse(args, vars).unwrap_err().to_string();
        assert_eq!(
            err(&[], &[("ENI_IPAMD_DECREASE_INTERVAL_MS", "soon")]),
            "ENI_IPAMD_DECREASE_INTERVAL_MS=\"soon\": not a non-negative integer"
        );
        assert_eq!(
            err(&[], &[("AWS_VPC_K8S_CNI_EXTERNALSNAT", "maybe")]),
            "AWS_VPC_K8S_CNI_EXTERNALSNAT=\"maybe\": not true or false"
        );
        assert!(err(&["--introspection", "0.0.0.0:61679"], &[]).contains("not a loopback"));
        assert_eq!(err(&["--socket"], &[]), "--socket needs a value");
        assert!(err(&["--frobnicate"], &[]).contains("unknown argument"));
        assert!(err(&[], &[("WARM_IP_TARGET", "x")]).contains("WARM_IP_TARGET"));
    }
}
