//! The node-wide datapath, made as the pool changes (`SetupHostNetwork` at start,
//! `setupENINetwork` for each secondary ENI, its rule removed when the ENI is freed). The
//! netlink and nft work is synchronous, so it runs on tokio's blocking threads, in the
//! agent's own network namespace (the node's).

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use eni_ip::naming::{host_veth_name, PodName};
use eni_ip::IpamKey;
use eni_node_network::{
    setup_eni, setup_host, teardown_eni, EniNetwork, Error as NetError, HostNetwork, CONNMARK,
};
use ipnet::Ipv4Net;
use kernel::Netlink;

use super::Agent;

/// How long a just-attached ENI may take to appear as an interface (ipamd: 5 × 3 s).
const LINK_WAIT: Duration = Duration::from_secs(15);
const LINK_POLL: Duration = Duration::from_millis(100);

/// What the node-wide datapath needs of one secondary ENI.
#[derive(Debug, Clone)]
pub(super) struct SecondaryEni {
    pub(super) id: String,
    pub(super) mac: String,
    pub(super) device_index: u32,
    pub(super) primary_ip: Option<Ipv4Addr>,
    pub(super) subnet: Ipv4Net,
}

/// A node-network step that failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeNetworkError {
    /// The kernel refused, or the ENI's interface never appeared.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The ENI's MAC or primary address is unknown or malformed.
    #[error("ENI {eni}: {what}")]
    Facts {
        /// The ENI.
        eni: String,
        /// What is missing.
        what: String,
    },
    /// The checkpoint could not be rewritten after pruning.
    #[error(transparent)]
    Checkpoint(#[from] eni_ip::checkpoint::CheckpointError),
    /// The blocking task did not finish (the runtime is shutting down).
    #[error("the node-network task did not finish: {0}")]
    Task(String),
}

impl Agent {
    /// The host rules (rule 1024, rp_filter, SNAT and connmark table) and every secondary
    /// ENI's routing, at start. Nothing when the node's network is not ours to manage.
    pub(super) async fn setup_node_network(
        &self,
        secondaries: Vec<SecondaryEni>,
    ) -> Result<(), NodeNetworkError> {
        if !self.settings.manage_node_network {
            return Ok(());
        }
        let primary_mac = parse_mac(&self.node.primary_eni_id, &self.node.primary_mac)?;
        let mut host = HostNetwork {
            primary_ifname: String::new(),
            node_ip: self.node.primary_ip,
            vpc_cidrs: self.node.vpc_cidrs.clone(),
            external_snat: self.settings.use_external_snat,
            veth_prefix: self.settings.veth_prefix.clone(),
            connmark: CONNMARK,
        };
        blocking(move || {
            let mut nl = netlink()?;
            host.primary_ifname = nl
                .links()
                .map_err(|e| NetError::Kernel {
                    doing: "list links to find the primary ENI by MAC".into(),
                    source: e,
                })?
                .into_iter()
                .find(|link| link.mac == Some(primary_mac))
                .map(|link| link.name)
                .ok_or_else(|| NetError::NoLinkWithMac {
                    eni: "(primary)".into(),
                    mac: kernel::format_mac(&primary_mac),
                })?;
            setup_host(&mut nl, &host)?;
            tracing::info!(primary = %host.primary_ifname, "node network set up");
            Ok(())
        })
        .await?;
        for eni in secondaries {
            self.setup_eni_network(&eni).await?;
        }
        Ok(())
    }

    /// Releases the restored allocations whose pod's host veth is gone (the pod was deleted
    /// while the agent was down: its DEL removed the veth but could not reach the agent), as
    /// upstream normalises its checkpoint against the veths at start.
    pub(super) async fn prune_allocations_without_veth(&self) -> Result<(), NodeNetworkError> {
        if !self.settings.manage_node_network {
            return Ok(());
        }
        let links: HashSet<String> = blocking(|| {
            let mut nl = netlink()?;
            let links = nl.links().map_err(|e| NetError::Kernel {
                doing: "list links to find the pods' host veths".into(),
                source: e,
            })?;
            Ok(links.into_iter().map(|link| link.name).collect())
        })
        .await?;
        let prefix = &self.settings.veth_prefix;
        let mut state = self.lock();
        let gone: Vec<(IpamKey, String)> = state
            .ds
            .allocations()
            .filter_map(|(key, allocation)| {
                let meta = &allocation.metadata;
                let pod =
                    (!meta.pod_namespace.is_empty() && !meta.pod_name.is_empty()).then(|| {
                        PodName {
                            namespace: &meta.pod_namespace,
                            name: &meta.pod_name,
                        }
                    });
                let veth = host_veth_name(prefix, pod, &key.container_id, &key.if_name);
                (!links.contains(&veth)).then(|| (key.clone(), veth))
            })
            .collect();
        if gone.is_empty() {
            return Ok(());
        }
        for (key, veth) in &gone {
            if let Some(allocation) = state.ds.release(key) {
                tracing::info!(key = %key, address = %allocation.address, %veth, "allocation released: its pod's veth is gone");
            }
        }
        self.write_checkpoint(&state)?;
        Ok(())
    }

    /// A secondary ENI's address, table and rule 32765, waiting for its interface to
    /// appear (a hot-plugged NIC takes a moment).
    pub(super) async fn setup_eni_network(
        &self,
        eni: &SecondaryEni,
    ) -> Result<(), NodeNetworkError> {
        if !self.settings.manage_node_network {
            return Ok(());
        }
        let network = self.eni_network(eni)?;
        let deadline = tokio::time::Instant::now() + LINK_WAIT;
        loop {
            let attempt = network.clone();
            let outcome = blocking(move || {
                let mut nl = netlink()?;
                Ok(setup_eni(&mut nl, &attempt)?)
            })
            .await;
            match outcome {
                Ok(ifname) => {
                    tracing::info!(eni = %eni.id, %ifname, table = network.device_index + 1, "ENI network set up");
                    return Ok(());
                }
                Err(NodeNetworkError::Net(NetError::NoLinkWithMac { .. }))
                    if tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(LINK_POLL).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Removes a freed ENI's rule 32765 and table; a failure is logged, not fatal (the
    /// rule names an address no interface has any more).
    pub(super) async fn teardown_eni_network(&self, eni: &SecondaryEni) {
        if !self.settings.manage_node_network {
            return;
        }
        let network = match self.eni_network(eni) {
            Ok(network) => network,
            Err(err) => {
                tracing::warn!(eni = %eni.id, %err, "ENI network not torn down");
                return;
            }
        };
        let outcome = blocking(move || {
            let mut nl = netlink()?;
            Ok(teardown_eni(&mut nl, &network)?)
        })
        .await;
        if let Err(err) = outcome {
            tracing::warn!(eni = %eni.id, %err, "ENI network not torn down");
        }
    }

    fn eni_network(&self, eni: &SecondaryEni) -> Result<EniNetwork, NodeNetworkError> {
        let primary_ip = eni.primary_ip.ok_or_else(|| NodeNetworkError::Facts {
            eni: eni.id.clone(),
            what: "its primary address is unknown".into(),
        })?;
        Ok(EniNetwork {
            id: eni.id.clone(),
            mac: parse_mac(&eni.id, &eni.mac)?,
            device_index: eni.device_index,
            primary_ip,
            subnet: eni.subnet,
            mtu: self.settings.eni_mtu,
        })
    }
}

/// A netlink socket in the agent's namespace (the node's).
fn netlink() -> Result<Netlink, NetError> {
    Netlink::new().map_err(|e| NetError::Kernel {
        doing: "open a netlink socket".into(),
        source: e,
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NodeNetworkError> + Send + 'static,
) -> Result<T, NodeNetworkError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NodeNetworkError::Task(e.to_string()))?
}

fn parse_mac(eni: &str, text: &str) -> Result<[u8; 6], NodeNetworkError> {
    let bad = || NodeNetworkError::Facts {
        eni: eni.to_string(),
        what: format!("its MAC {text:?} is not a MAC"),
    };
    let bytes = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>, _>>()?;
    bytes.try_into().map_err(|_| bad())
}
