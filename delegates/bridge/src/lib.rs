//! The `bridge` plugin: each container gets a veth pair whose host end is a port of a Linux
//! bridge on the node; a drop-in replacement for the reference containernetworking plugin.
//!
//! - ADD validates everything first (code 7 naming the field), then finds or creates the
//!   bridge, creates the veth pair in one request (host end enslaved and up, container end
//!   made directly in the container's namespace), runs IPAM, configures the container, puts
//!   the gateway on the bridge (`isGateway`), and adds nftables rules for `ipMasq` and
//!   `macspoofchk`. A failure at any step undoes the steps before it, the IPAM reservation
//!   included, and reports the failure.
//! - Kernel state as the reference leaves it (`conformance/tests/bridge_kernel_state.rs`
//!   compares the two and lists every difference kept, with its reason):
//!   - the ADD that puts a gateway on the bridge pins the bridge's MAC to the one it had
//!     before the ADD's port joined (its own random MAC when new), so its
//!     `addr_assign_type` is "set": it no longer follows the lowest MAC among its ports,
//!     and pods keep a valid gateway MAC as other pods come and go. Pinning flushes the
//!     bridge's neighbour table, so later ADDs leave the pinned bridge alone; a bridge
//!     that someone else gave the gateway address is left as the reference leaves it;
//!   - the container interface gets `arp_notify=1` and `accept_dad=0` (`accept_dad=1`,
//!     `enhanced_dad=1` with `enabledad`) before it comes up, in IPAM mode, whatever the
//!     address families, and ADD returns once its IPv6 addresses are no longer
//!     tentative; the host end and the bridge get `accept_ra=0`;
//!   - deliberately not as the reference (Debian's 1.1.1): both veth ends keep the
//!     kernel's transmit queue length (1000) where the reference sets 0, which makes
//!     FIFO qdiscs attached to them default to a one-packet limit (later reference
//!     releases keep the kernel's value too); masquerading is nftables, not iptables.
//! - DEL releases the IPAM reservation, deletes the container interface (its host end goes
//!   with it) and the attachment's nftables rules; whatever is already gone is success.
//! - CHECK compares the kernel with `prevResult`: bridge (its MAC too when it is pinned,
//!   i.e. with `isGateway`), both veth ends and their pairing, addresses, routes and
//!   nftables rules, after the IPAM plugin's own CHECK.
//! - STATUS and GC are passed to the IPAM plugin; GC also removes nftables rules of
//!   attachments not in `cni.dev/valid-attachments`.
//!
//! IPAM runs through a [`cni::chain::Executor`], so the multi-call binary can run its own
//! IPAM plugins in-process and exec any other.

mod bridge_link;
mod check;
mod config;
mod container;
mod gateway;
mod ipam;
mod masquerade;
mod rule_tag;
mod spoof_check;
mod veth;
mod vlan;

use std::collections::HashSet;

use cni::chain::{self, Executor};
use cni::{CniResult, Command, Error, Interface, Plugin, Request};
use ipnet::IpNet;
use kernel::{Family, Netlink, Netns};

use config::{Config, Teardown};
use ipam::Ipam;

pub use config::DEFAULT_BRIDGE;

/// The bridge plugin, running IPAM through `ipam`.
pub struct Bridge {
    ipam: &'static (dyn Executor + Sync),
}

impl Bridge {
    /// A bridge plugin whose IPAM plugins are run by `ipam`.
    pub const fn new(ipam: &'static (dyn Executor + Sync)) -> Self {
        Bridge { ipam }
    }
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").finish_non_exhaustive()
    }
}

/// Index of the container interface in the result: after the bridge and the host end.
const CONTAINER_INTERFACE: usize = 2;

/// What an ADD has made so far, to undo on failure.
#[derive(Default)]
struct Made {
    container_index: Option<u32>,
    ipam: bool,
    masquerade: bool,
    spoof_check: bool,
}

fn container_netns(req: &Request) -> Result<Netns, Error> {
    req.open_netns(Netns::open, kernel::Error::is_not_found)
}

fn interface(name: &str, mac: &str, sandbox: &str) -> Interface {
    Interface {
        name: name.to_string(),
        mac: mac.to_string(),
        sandbox: sandbox.to_string(),
        ..Interface::default()
    }
}

fn netlink_here() -> Result<Netlink, Error> {
    Netlink::new().map_err(|e| Error::io("open a netlink socket", e))
}

fn netlink_in(ns: &Netns) -> Result<Netlink, Error> {
    Netlink::in_netns(ns).map_err(|e| Error::io("open a netlink socket in the container", e))
}

impl Bridge {
    fn add_steps(
        &self,
        req: &Request,
        config: &Config,
        made: &mut Made,
    ) -> Result<CniResult, Error> {
        let netns = container_netns(req)?;
        let mut host_nl = netlink_here()?;
        let mut cont_nl = netlink_in(&netns)?;
        // A container interface already named CNI_IFNAME makes the pair's creation fail
        // with EEXIST, which `veth::create` reports as such (code 4) before anything of the
        // pod is made; the reference, too, only finds out there. No lookup beforehand.
        let bridge = bridge_link::ensure(&mut host_nl, config)?;
        let pair = veth::create(
            &mut host_nl,
            &mut cont_nl,
            &netns,
            config,
            &req.inv.ifname,
            bridge.index,
        )?;
        made.container_index = Some(pair.container.index);
        let host_veth = pair.host.name.clone();
        if config.hairpin {
            host_nl
                .set_port_hairpin(pair.host.index, true)
                .map_err(|e| Error::io(format!("set hairpin mode on {host_veth}"), e))?;
        }
        if config.vlan_filtering() {
            vlan::configure_port(&mut host_nl, pair.host.index, &host_veth, config)?;
        }
        let container_mac = pair.container.mac_string().unwrap_or_default();
        if config.mac_spoof_check {
            made.spoof_check = true;
            spoof_check::add(
                &config.network,
                &req.inv.container_id,
                &req.inv.ifname,
                &host_veth,
                &container_mac,
            )
            .map_err(|e| Error::io("set up the MAC spoof check", e))?;
        }
        let mut result = match &config.ipam_type {
            Some(t) => {
                let r = Ipam::new(self.ipam, t, req).add()?;
                made.ipam = true;
                if r.ips.is_empty() {
                    return Err(Error::new(
                        cni::ErrorCode::DELEGATE_FAILED,
                        format!("IPAM plugin {t} returned no IP configuration"),
                        "the bridge plugin needs at least one address in IPAM mode",
                    ));
                }
                r
            }
            None => CniResult::default(),
        };
        for ip in &mut result.ips {
            ip.interface = Some(CONTAINER_INTERFACE);
        }
        let gateways = gateway::plan(config, &mut result)?;
        if !result.ips.is_empty() {
            container::configure(
                &mut cont_nl,
                &netns,
                &req.inv.ifname,
                pair.container.index,
                &result,
                config.enable_dad,
            )?;
        } else if !config.disable_container_interface {
            // L2 mode: no parameters to set, as in the reference; just up.
            cont_nl
                .set_link_up(pair.container.index)
                .map_err(|e| Error::io(format!("set {} up", req.inv.ifname), e))?;
        }
        let mut added_gateway = false;
        for gw in &gateways {
            added_gateway |= gateway::ensure_on_bridge(
                &mut host_nl,
                &config.bridge,
                bridge.index,
                *gw,
                config.force_address,
            )?;
        }
        if added_gateway {
            gateway::pin_bridge_mac(&mut host_nl, &config.bridge, bridge.index, bridge.mac)?;
        }
        let mut families: Vec<Family> = gateways.iter().map(|g| Family::of(g.addr())).collect();
        families.dedup();
        for family in families {
            gateway::enable_forwarding(family)?;
        }
        if config.ip_masq && !result.ips.is_empty() {
            made.masquerade = true;
            let addrs: Vec<IpNet> = result.ips.iter().map(|ip| ip.address).collect();
            masquerade::add(
                &config.network,
                &req.inv.container_id,
                &req.inv.ifname,
                &addrs,
            )
            .map_err(|e| Error::io("set up IP masquerading", e))?;
        }
        // The bridge takes a port's MAC when its first port joins (and keeps it once pinned):
        // read it now.
        let bridge_mac = host_nl
            .link_by_index(bridge.index)
            .ok()
            .flatten()
            .and_then(|l| l.mac_string())
            .unwrap_or_default();
        result.interfaces = vec![
            interface(&config.bridge, &bridge_mac, ""),
            interface(&host_veth, &pair.host.mac_string().unwrap_or_default(), ""),
            interface(&req.inv.ifname, &container_mac, &req.inv.sandbox()),
        ];
        Ok(result)
    }

    /// Undoes what a failed ADD made, newest first; every step is tried.
    fn roll_back(&self, req: &Request, config: &Config, made: &Made) {
        if made.masquerade {
            if let Err(e) =
                masquerade::RULES.del(&config.network, &req.inv.container_id, &req.inv.ifname)
            {
                tracing::warn!("removing masquerade rules after a failed ADD: {e}");
            }
        }
        if made.spoof_check {
            if let Err(e) =
                spoof_check::RULES.del(&config.network, &req.inv.container_id, &req.inv.ifname)
            {
                tracing::warn!("removing the MAC spoof check after a failed ADD: {e}");
            }
        }
        if made.ipam {
            if let Some(t) = &config.ipam_type {
                if let Err(e) = Ipam::new(self.ipam, t, req).call(Command::Del) {
                    tracing::warn!("releasing the IPAM reservation after a failed ADD: {e}");
                }
            }
        }
        if let Some(index) = made.container_index {
            let deleted = container_netns(req)
                .and_then(|ns| netlink_in(&ns))
                .and_then(|mut nl| {
                    nl.del_link(index)
                        .or_else(|e| if e.is_not_found() { Ok(()) } else { Err(e) })
                        .map_err(|e| Error::io("delete the veth pair", e))
                });
            if let Err(e) = deleted {
                tracing::warn!("deleting the veth pair after a failed ADD: {e}");
            }
        }
    }
}

impl Plugin for Bridge {
    fn name(&self) -> &'static str {
        "bridge"
    }

    fn known_args(&self) -> &'static [&'static str] {
        &["MAC", "IP"]
    }

    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let config = Config::load(req)?;
        let mut made = Made::default();
        self.add_steps(req, &config, &mut made).inspect_err(|_| {
            self.roll_back(req, &config, &made);
        })
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        let config = Teardown::load(req);
        // Every step runs; the first failure is reported after all were tried.
        let mut failures: Vec<Error> = Vec::new();
        if let Some(t) = &config.ipam_type {
            if let Err(e) = Ipam::new(self.ipam, t, req).call(Command::Del) {
                failures.push(e);
            }
        }
        if let Some(path) = req.inv.netns.as_deref() {
            match Netns::open(path) {
                // The namespace is gone, and the veth pair with it.
                Err(e) if e.is_not_found() => {}
                Err(e) => failures.push(Error::netns(path, false, e)),
                Ok(ns) => {
                    if let Err(e) = delete_container_link(&ns, &req.inv.ifname) {
                        failures.push(e);
                    }
                }
            }
        }
        if config.ip_masq {
            if let Err(e) =
                masquerade::RULES.del(&config.network, &req.inv.container_id, &req.inv.ifname)
            {
                failures.push(Error::io("remove masquerade rules", e));
            }
        }
        if config.mac_spoof_check {
            if let Err(e) =
                spoof_check::RULES.del(&config.network, &req.inv.container_id, &req.inv.ifname)
            {
                failures.push(Error::io("remove the MAC spoof check", e));
            }
        }
        match failures.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let config = Config::load(req)?;
        let prev = req.netconf.check_prev_result(req.version)?;
        if let Some(t) = &config.ipam_type {
            Ipam::new(self.ipam, t, req).call(Command::Check)?;
        }
        let netns = container_netns(req)?;
        check::run(req, &config, &prev, &netns)
    }

    fn status(&self, req: &Request) -> Result<(), Error> {
        let config = Config::load(req)?;
        match &config.ipam_type {
            Some(t) => Ipam::new(self.ipam, t, req).call(Command::Status),
            None => Ok(()),
        }
    }

    fn gc(&self, req: &Request) -> Result<(), Error> {
        let config = Config::load(req)?;
        if let Some(t) = &config.ipam_type {
            Ipam::new(self.ipam, t, req).call(Command::Gc)?;
        }
        let valid = chain::valid_attachments(&req.netconf)?;
        let keep: HashSet<String> = valid
            .iter()
            .map(|a| rule_tag::attachment_digest(&config.network, &a.container_id, &a.ifname))
            .collect();
        let stale = |rules: Vec<(kernel::nft::NftRule, String)>| -> Vec<kernel::nft::NftRule> {
            rules
                .into_iter()
                .filter(|(_, att)| !keep.contains(att))
                .map(|(r, _)| r)
                .collect()
        };
        masquerade::RULES
            .network_rules(&config.network)
            .and_then(|r| masquerade::RULES.delete(&stale(r)))
            .map_err(|e| Error::io("remove stale masquerade rules", e))?;
        spoof_check::RULES
            .network_rules(&config.network)
            .and_then(|r| spoof_check::RULES.delete(&stale(r)))
            .map_err(|e| Error::io("remove stale MAC spoof checks", e))?;
        Ok(())
    }
}

/// Deletes `ifname` in the container (its veth peer goes with it); gone already is fine.
fn delete_container_link(ns: &Netns, ifname: &str) -> Result<(), Error> {
    let mut nl = netlink_in(ns)?;
    let Some(link) = nl
        .link_by_name(ifname)
        .map_err(|e| Error::io(format!("look up {ifname} in the container"), e))?
    else {
        return Ok(());
    };
    match nl.del_link(link.index) {
        Err(e) if !e.is_not_found() => Err(Error::io(format!("delete {ifname}"), e)),
        _ => Ok(()),
    }
}
