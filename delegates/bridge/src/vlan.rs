//! VLANs of the host veth's bridge port: `vlan` makes it an access port (the VLAN as PVID,
//! untagged), `vlanTrunk` a trunk port (the VLANs tagged); `preserveDefaultVlan: false`
//! removes the bridge's default VLAN 1 from the port.

use cni::Error;
use kernel::{BridgeVlan, Netlink};

use crate::config::Config;

/// The bridge's default PVID, which every new port gets.
const DEFAULT_VLAN: u16 = 1;

/// Applies the config's VLANs to port `index` (named `name`, for errors).
pub(crate) fn configure_port(
    nl: &mut Netlink,
    index: u32,
    name: &str,
    config: &Config,
) -> Result<(), Error> {
    let err = |vid: u16| move |e| Error::io(format!("set VLAN {vid} on bridge port {name}"), e);
    if !config.preserve_default_vlan {
        match nl.del_bridge_vlan(index, DEFAULT_VLAN, false) {
            Err(e) if !e.is_not_found() => return Err(err(DEFAULT_VLAN)(e)),
            _ => {}
        }
    }
    if let Some(vid) = config.vlan {
        let access = BridgeVlan {
            vid,
            pvid: true,
            untagged: true,
        };
        nl.add_bridge_vlan(index, access, false).map_err(err(vid))?;
    }
    for range in &config.vlan_trunk {
        for vid in range.min..=range.max {
            let tagged = BridgeVlan {
                vid,
                pvid: false,
                untagged: false,
            };
            nl.add_bridge_vlan(index, tagged, false).map_err(err(vid))?;
        }
    }
    Ok(())
}
