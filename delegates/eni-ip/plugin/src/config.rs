//! The eni-ip netconf, validated before anything is touched: each problem is a code-7 error
//! naming the field and the value.

use std::path::PathBuf;

use cni::{Error, Request};
use eni_ip::protocol::DEFAULT_SOCKET;

/// The host veth prefix unless configured (upstream's `vethPrefix` default).
pub(crate) const DEFAULT_VETH_PREFIX: &str = "eni";
/// Longest `vethPrefix`: with the 11 hex digits of the hash it fills IFNAMSIZ - 1.
pub(crate) const MAX_VETH_PREFIX: usize = 4;
/// The pod interface's MTU unless configured: a VPC carries jumbo frames.
pub(crate) const DEFAULT_MTU: u32 = 9001;
/// Smallest MTU the kernel accepts for an Ethernet device carrying IPv4.
const MIN_MTU: u32 = 68;
/// Largest MTU a veth takes.
const MAX_MTU: u32 = 65535;

/// The validated configuration of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Config {
    /// `name`: the network, part of the agent's allocation key.
    pub(crate) network: String,
    /// `agentSocket`: where the agent listens.
    pub(crate) agent_socket: PathBuf,
    /// `vethPrefix`: the start of the host veth's name.
    pub(crate) veth_prefix: String,
    /// `mtu` of both veth ends.
    pub(crate) mtu: u32,
}

impl Config {
    /// Reads and validates the netconf of `req`.
    pub(crate) fn load(req: &Request) -> Result<Config, Error> {
        let conf = &req.netconf;
        let agent_socket = match conf.field::<String>("agentSocket")? {
            None => PathBuf::from(DEFAULT_SOCKET),
            Some(s) if s.is_empty() || !s.starts_with('/') || s.contains('\0') => {
                return Err(Error::invalid_config(
                    "agentSocket",
                    &s,
                    "must be the absolute path of the agent's Unix socket",
                ))
            }
            Some(s) => PathBuf::from(s),
        };
        let veth_prefix = match conf.field::<String>("vethPrefix")? {
            None => DEFAULT_VETH_PREFIX.to_string(),
            Some(p) => {
                if let Some(why) = veth_prefix_problem(&p) {
                    return Err(Error::invalid_config("vethPrefix", &p, why));
                }
                p
            }
        };
        let mtu = match conf.field::<u64>("mtu")? {
            None => DEFAULT_MTU,
            Some(m) if (u64::from(MIN_MTU)..=u64::from(MAX_MTU)).contains(&m) => m as u32,
            Some(m) => {
                return Err(Error::invalid_config(
                    "mtu",
                    m,
                    format!("must be between {MIN_MTU} and {MAX_MTU} (default {DEFAULT_MTU})"),
                ))
            }
        };
        Ok(Config {
            network: conf.name.clone(),
            agent_socket,
            veth_prefix,
            mtu,
        })
    }

    /// What DEL needs (the network, the socket, the veth prefix), read so that it never
    /// fails: a value ADD would have refused falls back to its default, since an ADD
    /// refused for it made nothing, and DEL must still clean up what an ADD under the
    /// defaults made.
    pub(crate) fn for_teardown(req: &Request) -> Config {
        let conf = &req.netconf;
        let agent_socket = conf
            .field::<String>("agentSocket")
            .ok()
            .flatten()
            .filter(|s| s.starts_with('/') && !s.contains('\0'))
            .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from);
        let veth_prefix = conf
            .field::<String>("vethPrefix")
            .ok()
            .flatten()
            .filter(|p| veth_prefix_problem(p).is_none())
            .unwrap_or_else(|| DEFAULT_VETH_PREFIX.to_string());
        Config {
            network: conf.name.clone(),
            agent_socket,
            veth_prefix,
            mtu: DEFAULT_MTU,
        }
    }
}

/// Why `prefix` cannot start a host veth name, if it cannot.
fn veth_prefix_problem(prefix: &str) -> Option<String> {
    if prefix.is_empty() {
        return Some("must not be empty".into());
    }
    if prefix.len() > MAX_VETH_PREFIX {
        return Some(format!(
            "must be at most {MAX_VETH_PREFIX} characters (the host veth name is the prefix \
             and 11 hex digits, at most 15 characters)"
        ));
    }
    if !prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Some("may hold only letters, digits, '-' and '_'".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni::{Command, Invocation};
    use serde_json::{json, Value};

    fn request(conf: Value) -> Request {
        let mut c = json!({"cniVersion": "1.0.0", "name": "vpc", "type": "eni-ip"});
        for (k, v) in conf.as_object().unwrap() {
            c[k] = v.clone();
        }
        let inv = Invocation {
            command: Command::Add,
            container_id: "c1".into(),
            netns: Some("/var/run/netns/p".into()),
            ifname: "eth0".into(),
            args: Default::default(),
            path: vec!["/opt/cni/bin".into()],
        };
        Request::from_invocation(&inv, c.as_object().unwrap().clone(), &cni::Version::ALL).unwrap()
    }

    fn refused(conf: Value) -> Error {
        Config::load(&request(conf)).unwrap_err()
    }

    #[test]
    fn defaults_are_upstreams() {
        let c = Config::load(&request(json!({}))).unwrap();
        assert_eq!(
            c,
            Config {
                network: "vpc".into(),
                agent_socket: DEFAULT_SOCKET.into(),
                veth_prefix: "eni".into(),
                mtu: 9001,
            }
        );
    }

    #[test]
    fn every_field_is_read() {
        let c = Config::load(&request(
            json!({"agentSocket": "/run/a.sock", "vethPrefix": "vlan", "mtu": 1500}),
        ))
        .unwrap();
        assert_eq!(c.agent_socket, PathBuf::from("/run/a.sock"));
        assert_eq!(c.veth_prefix, "vlan");
        assert_eq!(c.mtu, 1500);
    }

    #[test]
    fn bad_values_are_code_7_naming_field_and_value() {
        for (conf, field, value) in [
            (json!({"vethPrefix": "toolong"}), "vethPrefix", "toolong"),
            (json!({"vethPrefix": ""}), "vethPrefix", ""),
            (json!({"vethPrefix": "e/1"}), "vethPrefix", "e/1"),
            (json!({"vethPrefix": 5}), "vethPrefix", "5"),
            (json!({"mtu": 67}), "mtu", "67"),
            (json!({"mtu": 65536}), "mtu", "65536"),
            (json!({"mtu": "9001"}), "mtu", "9001"),
            (
                json!({"agentSocket": "relative.sock"}),
                "agentSocket",
                "relative.sock",
            ),
            (json!({"agentSocket": ""}), "agentSocket", ""),
        ] {
            let e = refused(conf.clone());
            assert_eq!(
                e.code,
                cni::ErrorCode::INVALID_NETWORK_CONFIG,
                "{conf}: {e}"
            );
            assert_eq!(e.msg, format!("invalid {field} {value:?}"), "{conf}: {e}");
        }
    }

    #[test]
    fn teardown_never_fails_and_falls_back_to_defaults() {
        let c = Config::for_teardown(&request(
            json!({"vethPrefix": "toolong", "agentSocket": 3, "mtu": "x"}),
        ));
        assert_eq!(c.veth_prefix, "eni");
        assert_eq!(c.agent_socket, PathBuf::from(DEFAULT_SOCKET));
        let c = Config::for_teardown(&request(json!({"vethPrefix": "pod", "agentSocket": "/a"})));
        assert_eq!(
            (c.veth_prefix.as_str(), c.agent_socket),
            ("pod", "/a".into())
        );
    }
}
