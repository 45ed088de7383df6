//! The container's veth pair: the host end named `veth<8 hex>` and plugged into the bridge,
//! the container end created directly in the container's namespace under `CNI_IFNAME`.

use cni::Error;
use kernel::{Link, Netlink, Netns, VethRequest};

use crate::config::Config;

/// Attempts at a free random host name before giving up (a clash is already unlikely).
const NAME_ATTEMPTS: usize = 8;

fn random_host_name() -> Result<String, Error> {
    let n = getrandom::u32().map_err(|e| Error::io("get random bytes for a veth name", e))?;
    Ok(format!("veth{n:08x}"))
}

/// The two ends of a created pair.
pub(crate) struct Pair {
    pub(crate) host: Link,
    pub(crate) container: Link,
}

/// Creates the pair in one request (the host end enslaved to `bridge_index` and up, with
/// the requested MAC and MTU). The container end stays down: it is brought up once its
/// parameters are set (see `container`), or at once in L2 mode. The host end gets
/// `accept_ra=0`, as in the reference: the node owns the routes of its pod links.
pub(crate) fn create(
    host_nl: &mut Netlink,
    container_nl: &mut Netlink,
    netns: &Netns,
    config: &Config,
    ifname: &str,
    bridge_index: u32,
) -> Result<Pair, Error> {
    let mut last = None;
    for _ in 0..NAME_ATTEMPTS {
        let name = random_host_name()?;
        let req = VethRequest {
            name: name.clone(),
            peer_name: ifname.to_string(),
            peer_netns: Some(netns),
            mtu: config.mtu,
            mac: None,
            peer_mac: config.mac,
            master: Some(bridge_index),
            up: true,
        };
        match host_nl.create_veth(&req) {
            Ok(()) => {
                let host = lookup(host_nl, &name, "host")?;
                let container = lookup(container_nl, ifname, "container")?;
                // An IPv6-less kernel has no such key: nothing to turn off then.
                let _ =
                    kernel::sysctl::write_path(&["net", "ipv6", "conf", &name, "accept_ra"], "0");
                return Ok(Pair { host, container });
            }
            // EEXIST names no side: only retry when it is our random name that is taken.
            Err(e) if e.is_exists() && host_nl.link_by_name(&name).ok().flatten().is_some() => {
                last = Some(e);
            }
            Err(e) if e.is_exists() => {
                return Err(Error::environment(
                    format!("container interface {ifname:?} already exists"),
                    "CNI_IFNAME names an interface the container already has",
                ))
            }
            Err(e) => return Err(Error::io("create the veth pair", e)),
        }
    }
    Err(Error::io(
        "create the veth pair",
        last.map(|e| e.to_string())
            .unwrap_or_else(|| "no free host veth name".into()),
    ))
}

fn lookup(nl: &mut Netlink, name: &str, side: &str) -> Result<Link, Error> {
    nl.link_by_name(name)
        .map_err(|e| Error::io(format!("look up the {side} end {name}"), e))?
        .ok_or_else(|| {
            Error::io(
                format!("look up the {side} end {name}"),
                "gone right after it was created",
            )
        })
}
