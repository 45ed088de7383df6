//! The daemon's command line: `meta-cni-daemon [--socket PATH] [--kubeconfig PATH]
//! [--service-account-dir PATH] [--node-name NAME] [--metrics-address ADDR]
//! [--max-concurrent N] [--sequential] [--api-timeout-seconds S] [--api-retries N]
//! [--cni-dir PATH]... [--no-policy-updates]`. Every value is checked here, naming the flag,
//! before anything is started.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the socket is when `--socket` is not given (the node agents' directory).
pub(crate) const DEFAULT_SOCKET: &str = "/run/meta-cni/daemon.sock";
/// Health and metrics: loopback only.
const DEFAULT_METRICS: &str = "127.0.0.1:9695";
/// Calls served at once by default; more wait in the socket's backlog.
const DEFAULT_MAX_CONCURRENT: usize = 16;
const MAX_MAX_CONCURRENT: usize = 256;
/// The meta netconf's default `cniDir`: the policy updater always follows it.
const DEFAULT_CNI_DIR: &str = "/var/lib/cni/multus";

/// A flag's value is missing or wrong.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SettingsError {
    /// An argument that is no flag of the daemon.
    #[error("unknown argument {0:?}")]
    Unknown(String),
    /// A flag given without its value.
    #[error("{0} needs a value")]
    Missing(&'static str),
    /// A flag's value does not parse or is out of range.
    #[error("invalid {flag} {value:?}: {why}")]
    Invalid {
        /// The flag.
        flag: &'static str,
        /// Its value as given.
        value: String,
        /// What it must be.
        why: &'static str,
    },
}

/// The daemon's settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    /// `--socket`: the Unix socket the shims connect to.
    pub(crate) socket: PathBuf,
    /// `--kubeconfig`: watches and the API for calls whose netconf names the same file.
    /// Without it, in a pod (`KUBERNETES_SERVICE_HOST` set), the pod's service account
    /// serves the watches and the calls whose netconf names no kubeconfig, as Multus's
    /// thick daemon runs; elsewhere the daemon serves standalone calls only (and any other
    /// call reads the API itself).
    pub(crate) kubeconfig: Option<PathBuf>,
    /// `--service-account-dir`: where the pod's service account is mounted (default the
    /// kubelet's `/var/run/secrets/kubernetes.io/serviceaccount`).
    pub(crate) service_account_dir: Option<PathBuf>,
    /// `--node-name` (default `$NODE_NAME`): the pods watched are this node's
    /// (`spec.nodeName`); without it no pod is cached and every lookup is a GET.
    pub(crate) node_name: Option<String>,
    /// `--metrics-address`: `/healthz`, `/readyz` and `/metrics`, on a loopback address.
    pub(crate) metrics: SocketAddr,
    /// `--max-concurrent`: calls run at once.
    pub(crate) max_concurrent: usize,
    /// `--sequential`: attachments one after another even when their order does not matter.
    pub(crate) sequential: bool,
    /// `--api-timeout-seconds`: one API request's bound (live GETs, the PATCH).
    pub(crate) api_timeout: Duration,
    /// `--api-retries`: retries of a transient API failure.
    pub(crate) api_retries: u32,
    /// The default `cniDir`, then each `--cni-dir`: the cache directories whose attachments
    /// get policy updates from the start (those an ADD served by the daemon uses are added
    /// as they come).
    pub(crate) cni_dirs: Vec<PathBuf>,
    /// Off with `--no-policy-updates`: no policy watches (every namespace, every pod of the
    /// cluster), no updates of running pods; ADDs list the policy objects live.
    pub(crate) policy_updates: bool,
}

impl Settings {
    /// Parses the arguments after the program name; `node_env` is `$NODE_NAME`.
    pub(crate) fn parse(
        args: impl IntoIterator<Item = String>,
        node_env: Option<String>,
    ) -> Result<Settings, SettingsError> {
        let mut settings = Settings {
            socket: DEFAULT_SOCKET.into(),
            kubeconfig: None,
            service_account_dir: None,
            node_name: node_env.filter(|n| !n.is_empty()),
            metrics: DEFAULT_METRICS.parse().expect("the default address parses"),
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            sequential: false,
            api_timeout: Duration::from_secs(10),
            api_retries: 4,
            cni_dirs: vec![DEFAULT_CNI_DIR.into()],
            policy_updates: true,
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let flag: &'static str = match arg.as_str() {
                "--sequential" => {
                    settings.sequential = true;
                    continue;
                }
                "--no-policy-updates" => {
                    settings.policy_updates = false;
                    continue;
                }
                "--cni-dir" => "--cni-dir",
                "--socket" => "--socket",
                "--kubeconfig" => "--kubeconfig",
                "--service-account-dir" => "--service-account-dir",
                "--node-name" => "--node-name",
                "--metrics-address" => "--metrics-address",
                "--max-concurrent" => "--max-concurrent",
                "--api-timeout-seconds" => "--api-timeout-seconds",
                "--api-retries" => "--api-retries",
                _ => return Err(SettingsError::Unknown(arg)),
            };
            let value = args.next().ok_or(SettingsError::Missing(flag))?;
            let invalid = |why| SettingsError::Invalid {
                flag,
                value: value.clone(),
                why,
            };
            match flag {
                "--socket" | "--kubeconfig" | "--cni-dir" | "--service-account-dir" => {
                    let path = PathBuf::from(&value);
                    if !path.is_absolute() {
                        return Err(invalid("must be an absolute path"));
                    }
                    match flag {
                        "--socket" => settings.socket = path,
                        "--kubeconfig" => settings.kubeconfig = Some(path),
                        "--cni-dir" => settings.cni_dirs.push(path),
                        _ => settings.service_account_dir = Some(path),
                    }
                }
                "--node-name" => {
                    if nad_crd::names::nad_name_problem(&value).is_some() {
                        return Err(invalid("must be a DNS-1123 subdomain"));
                    }
                    settings.node_name = Some(value);
                }
                "--metrics-address" => {
                    let addr: SocketAddr = value
                        .parse()
                        .map_err(|_| invalid("must be an address and a port"))?;
                    if !addr.ip().is_loopback() {
                        return Err(invalid("must be a loopback address"));
                    }
                    settings.metrics = addr;
                }
                "--max-concurrent" => {
                    settings.max_concurrent = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_MAX_CONCURRENT).contains(n))
                        .ok_or_else(|| invalid("must be a number from 1 to 256"))?;
                }
                "--api-timeout-seconds" => {
                    let s: f64 = value
                        .parse()
                        .ok()
                        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 3600.0)
                        .ok_or_else(|| invalid("must be a number of seconds in (0, 3600]"))?;
                    settings.api_timeout = Duration::from_secs_f64(s);
                }
                _ => {
                    settings.api_retries = value
                        .parse()
                        .ok()
                        .filter(|n| *n <= 20)
                        .ok_or_else(|| invalid("must be a number from 0 to 20"))?;
                }
            }
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Settings, SettingsError> {
        Settings::parse(args.iter().map(|a| a.to_string()), None)
    }

    #[test]
    fn defaults_and_flags() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!((s.max_concurrent, s.sequential), (16, false));
        assert!(s.policy_updates);
        assert_eq!(s.cni_dirs, [PathBuf::from(DEFAULT_CNI_DIR)]);
        let s = parse(&[
            "--socket",
            "/tmp/d.sock",
            "--max-concurrent",
            "4",
            "--sequential",
            "--node-name",
            "node-1",
            "--metrics-address",
            "[::1]:0",
            "--cni-dir",
            "/var/lib/other",
            "--no-policy-updates",
        ])
        .unwrap();
        assert!(!s.policy_updates);
        assert_eq!(s.cni_dirs[1], PathBuf::from("/var/lib/other"));
        assert_eq!(s.socket, PathBuf::from("/tmp/d.sock"));
        assert_eq!((s.max_concurrent, s.sequential), (4, true));
        assert_eq!(s.node_name.as_deref(), Some("node-1"));
        let env = Settings::parse(Vec::new(), Some("node-2".into())).unwrap();
        assert_eq!(env.node_name.as_deref(), Some("node-2"));
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (args, flag) in [
            (&["--socket", "d.sock"][..], "--socket"),
            (&["--max-concurrent", "0"][..], "--max-concurrent"),
            (&["--metrics-address", "0.0.0.0:9"][..], "--metrics-address"),
            (&["--api-retries", "x"][..], "--api-retries"),
            (&["--node-name", "Bad_Name"][..], "--node-name"),
            (&["--kubeconfig"][..], "--kubeconfig"),
            (&["--cni-dir", "cache"][..], "--cni-dir"),
            (
                &["--service-account-dir", "sa"][..],
                "--service-account-dir",
            ),
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(e.contains(flag), "{e}");
        }
        assert!(matches!(parse(&["--frob"]), Err(SettingsError::Unknown(_))));
    }
}
