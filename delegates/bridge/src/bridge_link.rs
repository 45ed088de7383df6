//! The bridge device on the node: reused when it exists, created (with the configured MTU,
//! VLAN filtering and promiscuous mode) when it does not.

use cni::Error;
use kernel::{BridgeRequest, Link, Netlink};

use crate::config::Config;

/// The bridge named by the config, up; a link of that name that is not a bridge is a
/// code-7 error.
pub(crate) fn ensure(nl: &mut Netlink, config: &Config) -> Result<Link, Error> {
    let name = &config.bridge;
    let lookup_err = |e| Error::io(format!("look up bridge {name}"), e);
    let mut link = match nl.link_by_name(name).map_err(lookup_err)? {
        Some(link) => link,
        None => {
            let req = BridgeRequest {
                name: name.clone(),
                mtu: config.mtu,
                vlan_filtering: config.vlan_filtering(),
                vlan_default_pvid: None,
            };
            match nl.create_bridge(&req) {
                // A concurrent ADD created it first: use theirs.
                Err(e) if !e.is_exists() => {
                    return Err(Error::io(format!("create bridge {name}"), e))
                }
                _ => {}
            }
            nl.link_by_name(name).map_err(lookup_err)?.ok_or_else(|| {
                Error::io(
                    format!("look up bridge {name}"),
                    "gone right after it was created",
                )
            })?
        }
    };
    if link.kind.as_deref() != Some("bridge") {
        return Err(Error::invalid_config(
            "bridge",
            name,
            format!(
                "{name} already exists but is not a bridge (it is a {})",
                link.kind.as_deref().unwrap_or("device without a kind")
            ),
        ));
    }
    // The plugin owns the bridge's routes: router advertisements must not add any. As the
    // reference, on every ADD (a bridge made by someone else too). An IPv6-less kernel has
    // no such key.
    let _ = kernel::sysctl::write_path(&["net", "ipv6", "conf", name, "accept_ra"], "0");
    if config.promisc && !link.promisc {
        nl.set_promisc(link.index, true)
            .map_err(|e| Error::io(format!("set bridge {name} promiscuous"), e))?;
        link.promisc = true;
    }
    if !link.up {
        nl.set_link_up(link.index)
            .map_err(|e| Error::io(format!("set bridge {name} up"), e))?;
        link.up = true;
    }
    Ok(link)
}
