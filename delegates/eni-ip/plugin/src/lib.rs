//! The `eni-ip` plugin: a pod gets a secondary private address of one of the node's ENIs
//! from the node agent (`eni-ipamd`), and the AWS VPC CNI's routed datapath for it, so the
//! pod's address is a real VPC address, without overlay or NAT inside the VPC.
//!
//! - ADD validates the netconf (code 7 naming the field), asks the agent for an address
//!   (key: network name, `CNI_CONTAINERID`, `CNI_IFNAME`; the pod's namespace and name as
//!   metadata), then builds the per-pod datapath ([`datapath`]): a veth whose host end
//!   `<vethPrefix><sha1 digits>` stays in the namespace the plugin runs in (the node) and
//!   whose pod end is `CNI_IFNAME`; in the pod the /32, a link route to 169.254.1.1, the
//!   default route via it and a permanent neighbour entry for it (the host veth's MAC); on
//!   the node the /32 route to the host veth, rule 512 `to <pod> lookup main`, and, for an
//!   address on a secondary ENI, rule 1536 `from <pod> lookup <ENI table>`. A pod that
//!   already has a default route (eni-ip as a secondary network, on `net1`) keeps it: the
//!   routes via 169.254.1.1 go in a table of the interface's own, chosen by a pod rule
//!   `from <pod> lookup <1000 + ifindex>` (priority 1, as upstream's extra interfaces),
//!   and the result's default route names that table. Any failure
//!   after the agent answered undoes what was made and returns the address to the agent
//!   (reason `SetupNSFailed`).
//! - DEL returns the address (reason `PodDeleted`) and removes the pod's rules and host
//!   veth, found from the agent's answer, `prevResult` (the meta plugin's cache) or the
//!   host veth's own /32 route. With the agent absent or unreachable the per-pod state is
//!   still removed and DEL succeeds: the agent reclaims the address when it comes back.
//!   A DEL of nothing succeeds.
//! - CHECK verifies every piece, and that the agent still holds the address.
//! - STATUS is code 50 while the agent is absent, not ready, or has no address to give.
//! - GC passes `cni.dev/valid-attachments` to the agent, and removes the rules of the
//!   addresses it released.
//!
//! Node-wide state (per-ENI route tables, the `from <ENI primary IP>` rules, SNAT and the
//! connmark rule 1024, `rp_filter`) is the agent's: it changes when ENIs come and go, not
//! when pods do. The plugin links neither an async runtime nor the AWS SDK.

mod agent;
mod check;
mod config;
mod datapath;
mod teardown;

use std::net::{IpAddr, Ipv4Addr};

use cni::{chain, CniResult, Error, ErrorCode, Interface, IpConfig, Plugin, Request};
use eni_ip::protocol::{AddNetwork, Assigned, DelNetwork, Gc, ValidAttachment};
use ipnet::{IpNet, Ipv4Net};
use kernel::{Netlink, Netns};

use config::Config;
use eni_ip::naming::{self, PodName};

/// The `eni-ip` plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct EniIp;

/// Index of the pod interface in the result: after the host end.
const POD_INTERFACE: usize = 1;

/// `DelNetwork` reasons, as upstream names them (the agent counts them by reason).
const REASON_DELETED: &str = "PodDeleted";
const REASON_SETUP_FAILED: &str = "SetupNSFailed";

fn pod_netns(req: &Request) -> Result<Netns, Error> {
    req.open_netns(Netns::open, kernel::Error::is_not_found)
}

fn netlink_here() -> Result<Netlink, Error> {
    Netlink::new().map_err(|e| Error::io("open a netlink socket", e))
}

/// The pod's namespace and name from `CNI_ARGS`, when the runtime passed both.
fn pod_name(req: &Request) -> Option<PodName<'_>> {
    let namespace = req
        .inv
        .args
        .get("K8S_POD_NAMESPACE")
        .filter(|s| !s.is_empty())?;
    let name = req.inv.args.get("K8S_POD_NAME").filter(|s| !s.is_empty())?;
    Some(PodName { namespace, name })
}

fn host_veth_name(config: &Config, req: &Request) -> String {
    naming::host_veth_name(
        &config.veth_prefix,
        pod_name(req),
        &req.inv.container_id,
        &req.inv.ifname,
    )
}

/// Refuses an answer whose table the datapath cannot use: 0 is no table, 253-255 are
/// the kernel's default, main and local tables (main is the primary ENI's and fine).
fn check_assigned(assigned: &Assigned) -> Result<(), Error> {
    let table = assigned.route_table;
    if table == 0 || table == 253 || table == kernel::RT_TABLE_LOCAL {
        return Err(Error::new(
            ErrorCode::INTERNAL,
            format!(
                "the ENI agent assigned {} with route table {table}, which no ENI can have",
                assigned.address
            ),
            "the agent and this plugin disagree on the route tables",
        ));
    }
    Ok(())
}

/// The ADD result: both veth ends, the /32 with its gateway, the default route (with its
/// table when it is not main).
fn result(
    pair: &datapath::Pair,
    req: &Request,
    address: Ipv4Addr,
    routes: datapath::PodRoutes,
) -> CniResult {
    let gateway = IpAddr::V4(datapath::GATEWAY);
    let sandbox = req.inv.sandbox();
    CniResult {
        interfaces: vec![
            Interface {
                name: pair.host.name.clone(),
                mac: pair.host.mac_string().unwrap_or_default(),
                ..Interface::default()
            },
            Interface {
                name: req.inv.ifname.clone(),
                mac: pair.pod.mac_string().unwrap_or_default(),
                sandbox,
                ..Interface::default()
            },
        ],
        ips: vec![IpConfig {
            interface: Some(POD_INTERFACE),
            address: datapath::pod_net(address),
            gateway: Some(gateway),
        }],
        routes: vec![cni::Route {
            table: match routes {
                datapath::PodRoutes::Main => None,
                datapath::PodRoutes::Table(t) => Some(t),
            },
            ..cni::Route::new(IpNet::V4(Ipv4Net::default()), Some(gateway))
        }],
        ..CniResult::default()
    }
}

impl EniIp {
    /// Builds the datapath for `assigned`; the caller undoes it on failure.
    fn set_up(
        req: &Request,
        config: &Config,
        netns: &Netns,
        nls: (&mut Netlink, &mut Netlink),
        host_name: &str,
        assigned: &Assigned,
    ) -> Result<CniResult, Error> {
        let (host_nl, pod_nl) = nls;
        check_assigned(assigned)?;
        let ifname = &req.inv.ifname;
        let pair = datapath::create_veth(host_nl, pod_nl, netns, host_name, ifname, config.mtu)?;
        let routes = datapath::configure_pod(pod_nl, &pair, ifname, assigned.address)?;
        datapath::configure_host(host_nl, &pair, assigned.address, assigned.route_table)?;
        Ok(result(&pair, req, assigned.address, routes))
    }

    /// Undoes a failed ADD: the pod's rules and veth, then the address goes back to the
    /// agent. Failures are logged: the ADD's own error is the one reported.
    fn roll_back(
        req: &Request,
        config: &Config,
        (nl, netns): (&mut Netlink, &Netns),
        host_name: &str,
        address: Ipv4Addr,
    ) {
        let mut failures = teardown::remove_pod_state(nl, &[address], host_name);
        failures.extend(teardown::remove_pod_rules(netns, &[address]).err());
        for e in failures {
            tracing::warn!("undoing a failed ADD: {e}");
        }
        let del = DelNetwork {
            key: agent::key(config, req),
            reason: REASON_SETUP_FAILED.into(),
        };
        if let Err(e) = agent::client(config).del_network(del) {
            tracing::warn!("returning {address} to the ENI agent after a failed ADD: {e}");
        }
    }
}

impl Plugin for EniIp {
    fn name(&self) -> &'static str {
        "eni-ip"
    }

    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let config = Config::load(req)?;
        let netns = pod_netns(req)?;
        let mut host_nl = netlink_here()?;
        let mut pod_nl = Netlink::in_netns(&netns)
            .map_err(|e| Error::io("open a netlink socket in the pod", e))?;
        // Checked before the agent is asked, so this failure leaves nothing to undo.
        if pod_nl
            .link_by_name(&req.inv.ifname)
            .map_err(|e| Error::io("look up CNI_IFNAME in the pod", e))?
            .is_some()
        {
            return Err(Error::environment(
                format!("pod interface {:?} already exists", req.inv.ifname),
                "CNI_IFNAME names an interface the pod already has",
            ));
        }
        let pod = pod_name(req);
        let add = AddNetwork {
            key: agent::key(&config, req),
            netns: netns.path().display().to_string(),
            pod_namespace: pod.map(|p| p.namespace.to_string()).unwrap_or_default(),
            pod_name: pod.map(|p| p.name.to_string()).unwrap_or_default(),
        };
        let assigned = agent::client(&config)
            .add_network(add)
            .map_err(|e| agent::to_cni("ask the ENI agent for an address", e))?;
        let host_name = host_veth_name(&config, req);
        let nls = (&mut host_nl, &mut pod_nl);
        Self::set_up(req, &config, &netns, nls, &host_name, &assigned).inspect_err(|_| {
            let nls = (&mut host_nl, &netns);
            Self::roll_back(req, &config, nls, &host_name, assigned.address);
        })
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        let config = Config::for_teardown(req);
        let host_name = host_veth_name(&config, req);
        let mut nl = netlink_here()?;
        let mut addresses: Vec<Ipv4Addr> = Vec::new();
        // What names the address, before anything is removed: the ADD result, the route
        // through the host veth, and the agent's answer.
        match req.netconf.prev_result(req.version) {
            Ok(Some(prev)) => addresses.extend(check::address_in(&prev, &req.inv.ifname)),
            Ok(None) => {}
            Err(e) => tracing::info!("DEL without a usable prevResult: {e}"),
        }
        addresses.extend(teardown::address_of_host_veth(&mut nl, &host_name));
        let mut failures = Vec::new();
        let del = DelNetwork {
            key: agent::key(&config, req),
            reason: REASON_DELETED.into(),
        };
        match agent::client(&config).del_network(del) {
            Ok(released) => addresses.extend(released.address),
            Err(e) if agent::is_unreachable(&e) => tracing::warn!(
                "the ENI agent was not told of this DEL ({e}); it reclaims the address when \
                 it comes back, as the pod's veth is gone"
            ),
            Err(e) => failures.push(agent::to_cni("return the address to the ENI agent", e)),
        }
        addresses.sort();
        addresses.dedup();
        failures.extend(teardown::remove_pod_state(&mut nl, &addresses, &host_name));
        // A namespace that is gone took the pod's own rules with it.
        let netns = req.inv.netns.as_deref().and_then(|p| Netns::open(p).ok());
        if let Some(netns) = netns.filter(|_| !addresses.is_empty()) {
            if let Err(e) = teardown::remove_pod_rules(&netns, &addresses) {
                failures.push(e);
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
        let netns = pod_netns(req)?;
        check::run(req, &config, &prev, &netns, &host_veth_name(&config, req))
    }

    fn status(&self, req: &Request) -> Result<(), Error> {
        let config = Config::load(req)?;
        let unavailable = |msg: String, details: String| {
            Error::new(ErrorCode::PLUGIN_NOT_AVAILABLE, msg, details)
        };
        match agent::client(&config).status() {
            Err(e) => {
                let e = agent::to_cni("ask the ENI agent for its status", e);
                Err(unavailable(e.msg, e.details))
            }
            Ok(s) if !s.ready => Err(unavailable(
                "the ENI agent is not ready".into(),
                "it is still learning the node's ENIs or restoring its checkpoint".into(),
            )),
            Ok(s) if s.available == 0 => Err(unavailable(
                "the ENI agent has no available addresses".into(),
                format!(
                    "{} of {} addresses assigned on {} ENIs (max pods {}); the pool grows \
                     when the instance's limits allow",
                    s.assigned, s.total, s.enis, s.max_pods
                ),
            )),
            Ok(_) => Ok(()),
        }
    }

    fn gc(&self, req: &Request) -> Result<(), Error> {
        let config = Config::load(req)?;
        let valid = chain::valid_attachments(&req.netconf)?
            .into_iter()
            .map(|a| ValidAttachment {
                container_id: a.container_id,
                ifname: a.ifname,
            })
            .collect();
        let gc = Gc {
            network: config.network.clone(),
            valid,
        };
        let collected = agent::client(&config)
            .gc(gc)
            .map_err(|e| agent::to_cni("ask the ENI agent to release stale addresses", e))?;
        // Their pods are gone, and their veths with their namespaces; their rules are not.
        let mut nl = netlink_here()?;
        for (_, address) in &collected.released {
            datapath::remove_rules(&mut nl, *address)?;
        }
        Ok(())
    }
}
