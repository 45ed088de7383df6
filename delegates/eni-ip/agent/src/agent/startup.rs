//! Start-up (`nodeInit`): learn the node and its ENIs from IMDS, confirm them with EC2, read
//! the limits, restore the checkpoint, and give back the other mode's free blocks.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use eni_ip::checkpoint::{self, CheckpointData, CheckpointError};
use eni_ip::{limits, DataStore, DataStoreError, Eni, PoolLimits, SystemClock};
use ipnet::Ipv4Net;

use super::node_network::SecondaryEni;
use super::{Agent, PoolOps, State};
use crate::cloud::{Cloud, CloudError};
use crate::metrics::Metrics;
use crate::settings::Settings;

/// The agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A cloud call failed.
    #[error("{doing}: {source}")]
    Cloud {
        /// What was being learnt.
        doing: &'static str,
        /// The failure.
        #[source]
        source: CloudError,
    },
    /// The checkpoint could not be read or rewritten.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The checkpoint's directory could not be made.
    #[error("creating {path}: {source}")]
    Directory {
        /// The directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The node-wide datapath could not be made.
    #[error("setting up the node's network: {0}")]
    NodeNetwork(#[from] super::NodeNetworkError),
    /// IMDS and EC2 describe ENIs the datastore refuses (overlapping blocks).
    #[error("ENI {eni}: {source}")]
    DataStore {
        /// The ENI.
        eni: String,
        /// The refusal.
        #[source]
        source: DataStoreError,
    },
}

fn at(doing: &'static str) -> impl FnOnce(CloudError) -> StartError {
    move |source| StartError::Cloud { doing, source }
}

impl Agent {
    /// Learns the node and restores the checkpoint; the agent is then ready to serve.
    pub async fn start(
        settings: Settings,
        cloud: Cloud,
        metrics: Arc<Metrics>,
    ) -> Result<Agent, StartError> {
        let region = cloud.region().to_string();
        let node = cloud
            .node_from_imds(&region)
            .await
            .map_err(at("learning the node from IMDS"))?;
        tracing::info!(
            instance = %node.instance_id,
            instance_type = %node.instance_type,
            az = %node.availability_zone,
            primary_eni = %node.primary_eni_id,
            subnet = %node.subnet_id,
            "node learnt from IMDS"
        );
        let (instance, vcpus) = cloud
            .instance_limits(&node.instance_type)
            .await
            .map_err(at("reading the instance type's limits"))?;
        let imds_enis = cloud
            .enis_from_imds()
            .await
            .map_err(at("listing the ENIs in IMDS"))?;
        let ids: Vec<String> = imds_enis.iter().map(|e| e.id.clone()).collect();
        // EC2 is the truth for each ENI's blocks (IMDS may lag), its tags and attachment.
        let ec2_enis = cloud
            .describe_enis(&ids, node.subnet_cidr)
            .await
            .map_err(at("confirming the ENIs with EC2"))?;
        let mut options = settings.warm_pool.datastore_options();
        options.min_eni_lifetime = settings.timers.min_eni_lifetime;
        let mut ds = DataStore::new(options, Arc::new(SystemClock));
        let mut macs = HashMap::new();
        let mut attachments = HashMap::new();
        let mut secondaries = HashMap::new();
        let mut unmanaged = 0u32;
        for imds in &imds_enis {
            let ec2 = ec2_enis.iter().find(|e| e.id == imds.id);
            if ec2.is_some_and(|e| e.no_manage) {
                unmanaged += 1;
                tracing::info!(eni = %imds.id, "ENI tagged no_manage: left alone");
                continue;
            }
            let facts = ec2.unwrap_or(imds);
            let mut eni = Eni::new(
                &imds.id,
                imds.device_index,
                imds.id == node.primary_eni_id,
                imds.subnet,
                facts.attached_at.unwrap_or_else(SystemTime::now),
            );
            eni.trunk = facts.trunk;
            eni.efa = facts.efa;
            ds.add_eni(eni).map_err(|source| StartError::DataStore {
                eni: imds.id.clone(),
                source,
            })?;
            for cidr in facts.cidrs() {
                ds.add_cidr(&imds.id, cidr)
                    .map_err(|source| StartError::DataStore {
                        eni: imds.id.clone(),
                        source,
                    })?;
            }
            macs.insert(imds.id.clone(), imds.mac.clone());
            if imds.id != node.primary_eni_id {
                secondaries.insert(
                    imds.id.clone(),
                    SecondaryEni {
                        id: imds.id.clone(),
                        mac: imds.mac.clone(),
                        device_index: imds.device_index,
                        primary_ip: facts.primary_ip.or(imds.primary_ip),
                        subnet: imds.subnet,
                    },
                );
            }
            if let Some(a) = &facts.attachment_id {
                attachments.insert(imds.id.clone(), a.clone());
            }
        }
        let mut pool_limits = PoolLimits::new(instance, &settings.warm_pool);
        pool_limits.max_enis = pool_limits.max_enis.saturating_sub(unmanaged);
        let max_pods = if settings.warm_pool.prefix_delegation {
            limits::max_pods_prefix_delegation(instance, vcpus)
        } else {
            limits::max_pods(instance)
        };
        restore_checkpoint(&settings.checkpoint, &mut ds)?;
        let now = Instant::now();
        let agent = Agent {
            cloud,
            metrics,
            node,
            instance,
            limits: pool_limits,
            max_pods,
            state: Mutex::new(State {
                ds,
                macs,
                attachments,
                secondaries: secondaries.clone(),
            }),
            pool_ops: tokio::sync::Mutex::new(PoolOps {
                last_decrease: now,
                last_reconcile: now,
                grow_blocked: None,
                reconcile_cooldown: HashMap::new(),
            }),
            settings,
        };
        {
            let state = agent.lock();
            agent.write_checkpoint(&state)?;
        }
        agent
            .setup_node_network(secondaries.into_values().collect())
            .await?;
        agent.prune_allocations_without_veth().await?;
        agent.unassign_other_mode().await;
        agent.update_gauges();
        Ok(agent)
    }

    /// `tryUnassignIPsFromENIs` / `tryUnassignPrefixesFromENIs`: after a mode switch, the
    /// free blocks of the other mode go back to EC2. A failure is logged and left for the
    /// next start, as upstream.
    async fn unassign_other_mode(&self) {
        let mut by_eni: BTreeMap<String, Vec<Ipv4Net>> = BTreeMap::new();
        {
            let mut state = self.lock();
            for (eni, cidr) in state.ds.other_mode_free_cidrs() {
                if state.ds.remove_cidr(&eni, cidr, false).is_ok() {
                    by_eni.entry(eni).or_default().push(cidr);
                }
            }
        }
        let mut ops = self.pool_ops.lock().await;
        for (eni, cidrs) in by_eni {
            let now = Instant::now();
            match self.cloud.unassign(&eni, &cidrs).await {
                Ok(()) => {
                    tracing::info!(%eni, count = cidrs.len(), "gave back the other mode's blocks");
                    for c in cidrs {
                        ops.reconcile_cooldown
                            .insert(c, now + self.settings.timers.reconcile_cooldown);
                    }
                }
                Err(err) => {
                    tracing::warn!(%eni, %err, "could not give back the other mode's blocks");
                    let mut state = self.lock();
                    for c in cidrs {
                        let _ = state.ds.add_cidr(&eni, c);
                    }
                }
            }
        }
    }
}

/// Puts the checkpoint's allocations back; those whose address left the ENIs are dropped.
fn restore_checkpoint(path: &std::path::Path, ds: &mut DataStore) -> Result<(), StartError> {
    crate::private_dir::create_parent(path)
        .map_err(|(path, source)| StartError::Directory { path, source })?;
    let Some(data): Option<CheckpointData> = checkpoint::read(path)? else {
        tracing::info!(path = %path.display(), "no checkpoint: starting empty");
        return Ok(());
    };
    let report = checkpoint::restore(ds, &data);
    for (entry, reason) in &report.dropped {
        tracing::warn!(
            network = %entry.network_name,
            container = %entry.container_id,
            ifname = %entry.if_name,
            address = %entry.ipv4,
            %reason,
            "checkpoint allocation dropped"
        );
    }
    tracing::info!(
        restored = report.restored.len(),
        dropped = report.dropped.len(),
        "checkpoint restored"
    );
    Ok(())
}
