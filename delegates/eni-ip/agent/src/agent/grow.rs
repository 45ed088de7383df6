//! Growing the pool in EC2 (`tryAssignCidrs`, `tryAllocateENI`): more blocks on an ENI with
//! room, or a new ENI created, attached and marked delete-on-termination. Nothing is left
//! half-made: an ENI that fails to attach is deleted, one that fails the attribute change is
//! detached and deleted.

use std::time::{Duration, Instant, SystemTime};

use eni_ip::warm_pool::{CidrKind, Grow};
use eni_ip::Eni;
use ipnet::Ipv4Net;

use super::node_network::SecondaryEni;
use super::{cloud_err, Agent, PoolError, PoolOps};
use crate::cloud::{CloudError, PRIVATE_IP_LIMIT_EXCEEDED, REQUEST_LIMIT_EXCEEDED};

/// Reads of IMDS while waiting for a new ENI to show there (`WaitForENIAndIPsAttached`).
const IMDS_WAIT_TRIES: u32 = 8;

impl Agent {
    /// Performs one growth step. `Grow::AtEniLimit` does nothing.
    pub(super) async fn grow(&self, ops: &mut PoolOps, step: Grow) -> Result<(), PoolError> {
        if let Some((left, code)) = ops.grow_blocked_for() {
            return Err(PoolError::GrowBlocked {
                code: code.to_string(),
                secs: left.as_secs().max(1),
            });
        }
        let result = match step {
            Grow::Assign {
                eni_id,
                count,
                kind,
            } => self.assign_blocks(&eni_id, count, kind).await,
            Grow::AttachEni { count, kind } => self.attach_new_eni(count, kind).await,
            Grow::AtEniLimit => Ok(()),
        };
        if let Err(PoolError::Cloud { source, .. }) = &result {
            if source.is_insufficient_cidr() {
                let code = source.code().unwrap_or_default().to_string();
                let cooldown = self.settings.timers.insufficient_cidr_cooldown;
                tracing::warn!(%code, cooldown_s = cooldown.as_secs_f64(), "subnet exhausted: growth paused");
                ops.grow_blocked = Some((Instant::now() + cooldown, code));
            }
        }
        self.update_gauges();
        result
    }

    /// `AssignPrivateIpAddresses` of `count` blocks on `eni_id`, recorded in the datastore.
    async fn assign_blocks(
        &self,
        eni_id: &str,
        count: u32,
        kind: CidrKind,
    ) -> Result<(), PoolError> {
        let doing = || format!("assigning {count} {kind:?} to {eni_id}");
        let blocks = match self.cloud.assign(eni_id, count, kind).await {
            Ok(blocks) => blocks,
            Err(err) if err.code() == Some(PRIVATE_IP_LIMIT_EXCEEDED) => {
                // Our view of the ENI is behind EC2's: re-read it.
                self.sync_eni_from_ec2(eni_id).await;
                return Err(cloud_err(doing())(err));
            }
            Err(err)
                if count > 1
                    && !err.is_insufficient_cidr()
                    && err.code() != Some(REQUEST_LIMIT_EXCEEDED)
                    && matches!(err, CloudError::Ec2 { code: Some(_), .. }) =>
            {
                // As ipamd: after another refusal, try for a single block.
                tracing::warn!(%err, eni = eni_id, "retrying the assignment with 1 block");
                self.cloud
                    .assign(eni_id, 1, kind)
                    .await
                    .map_err(cloud_err(doing()))?
            }
            Err(err) => return Err(cloud_err(doing())(err)),
        };
        self.record_blocks(eni_id, &blocks);
        tracing::info!(eni = eni_id, count = blocks.len(), ?kind, "blocks assigned");
        Ok(())
    }

    fn record_blocks(&self, eni_id: &str, blocks: &[Ipv4Net]) {
        let mut state = self.lock();
        for block in blocks {
            if let Err(err) = state.ds.add_cidr(eni_id, *block) {
                tracing::warn!(eni = eni_id, %block, %err, "block not recorded");
            }
        }
    }

    /// Makes our view of `eni_id` EC2's: blocks EC2 has that we lack are added (those we
    /// hold that EC2 lacks are left to the reconcile, which drops their allocations).
    async fn sync_eni_from_ec2(&self, eni_id: &str) {
        match self
            .cloud
            .describe_enis(&[eni_id.to_string()], self.node.subnet_cidr)
            .await
        {
            Ok(enis) => {
                if let Some(facts) = enis.first() {
                    let mut state = self.lock();
                    let prefix_mode = state.ds.prefix_delegation();
                    for cidr in facts.cidrs() {
                        let known = state
                            .ds
                            .eni(eni_id)
                            .is_some_and(|e| e.cidrs().any(|c| c.net() == cidr));
                        if !known && (cidr.prefix_len() != 32) == prefix_mode {
                            let _ = state.ds.add_cidr(eni_id, cidr);
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(eni = eni_id, %err, "could not re-read the ENI"),
        }
    }

    /// Creates, attaches and records a new ENI with `count` blocks.
    async fn attach_new_eni(&self, count: u32, kind: CidrKind) -> Result<(), PoolError> {
        let node = &self.node;
        let device_index = self
            .cloud
            .free_device_index(&node.instance_id)
            .await
            .map_err(cloud_err("finding a free device index"))?;
        let created = self
            .cloud
            .create_eni(node, count, kind)
            .await
            .map_err(cloud_err(format!("creating an ENI with {count} {kind:?}")))?;
        let eni_id = created.facts.id.clone();
        let attachment_id = match self
            .cloud
            .attach_eni(&eni_id, &node.instance_id, device_index)
            .await
        {
            Ok(id) => id,
            Err(err) => {
                // Nothing half-made: the new ENI goes.
                if let Err(del) = self.cloud.delete_eni(&eni_id).await {
                    tracing::error!(eni = %eni_id, %del, "could not delete the ENI that failed to attach");
                }
                return Err(cloud_err(format!(
                    "attaching {eni_id} at device index {device_index}"
                ))(err));
            }
        };
        if let Err(err) = self
            .cloud
            .set_delete_on_termination(&eni_id, &attachment_id)
            .await
        {
            self.free_in_ec2(&eni_id, Some(&attachment_id)).await;
            return Err(cloud_err(format!("marking {eni_id} delete-on-termination"))(err));
        }
        self.wait_in_imds(&eni_id).await;
        let secondary = SecondaryEni {
            id: eni_id.clone(),
            mac: created.facts.mac.clone(),
            device_index,
            primary_ip: created.facts.primary_ip,
            subnet: created.facts.subnet,
        };
        if let Err(source) = self.setup_eni_network(&secondary).await {
            // Nothing half-made: an ENI the node cannot route goes back.
            self.teardown_eni_network(&secondary).await;
            self.free_in_ec2(&eni_id, Some(&attachment_id)).await;
            return Err(PoolError::NodeNetwork {
                eni: eni_id,
                source,
            });
        }
        let mut state = self.lock();
        let eni = Eni::new(
            &eni_id,
            device_index,
            false,
            created.facts.subnet,
            SystemTime::now(),
        );
        if let Err(err) = state.ds.add_eni(eni) {
            tracing::error!(eni = %eni_id, %err, "new ENI not recorded");
        }
        for block in created.facts.cidrs() {
            if let Err(err) = state.ds.add_cidr(&eni_id, block) {
                tracing::warn!(eni = %eni_id, %block, %err, "block not recorded");
            }
        }
        state.macs.insert(eni_id.clone(), created.facts.mac.clone());
        state.attachments.insert(eni_id.clone(), attachment_id);
        state.secondaries.insert(eni_id.clone(), secondary);
        tracing::info!(eni = %eni_id, device_index, count, ?kind, "ENI attached");
        Ok(())
    }

    /// Waits (bounded) until IMDS lists the new ENI, as ipamd does before using it. EC2
    /// already confirmed it, so a slow IMDS only delays, never fails, the growth.
    async fn wait_in_imds(&self, eni_id: &str) {
        let mut delay = Duration::from_millis(50);
        for _ in 0..IMDS_WAIT_TRIES {
            match self.cloud.enis_from_imds().await {
                Ok(enis) if enis.iter().any(|e| e.id == eni_id) => return,
                Ok(_) => {}
                Err(err) => tracing::debug!(%err, "IMDS read while waiting for a new ENI"),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
        tracing::warn!(
            eni = eni_id,
            "the new ENI is not in IMDS yet; using EC2's view"
        );
    }
}
