//! The periodic reconcile with IMDS and EC2 (`nodeIPPoolReconcile`): ENIs attached or
//! detached behind the agent's back, and blocks assigned or unassigned outside it. IMDS is
//! read first; where it differs from the datastore EC2 decides (IMDS may lag). Blocks the
//! agent itself unassigned lately are ignored in IMDS during the reconcile cooldown.

use std::collections::BTreeSet;
use std::time::{Instant, SystemTime};

use eni_ip::Eni;
use ipnet::Ipv4Net;

use super::{cloud_err, Agent, PoolError, PoolOps};
use crate::node::EniFacts;

impl Agent {
    pub(super) async fn reconcile(&self, ops: &mut PoolOps) -> Result<(), PoolError> {
        self.metrics.reconcile_count.inc();
        let now = Instant::now();
        ops.reconcile_cooldown.retain(|_, until| *until > now);
        let imds = self
            .cloud
            .enis_from_imds()
            .await
            .map_err(cloud_err("reconcile: listing the ENIs in IMDS"))?;
        let known: BTreeSet<String> = {
            let state = self.lock();
            state.ds.enis().iter().map(|e| e.id.clone()).collect()
        };
        let in_imds: BTreeSet<String> = imds.iter().map(|e| e.id.clone()).collect();
        // ENIs to ask EC2 about: new ones, and known ones whose blocks differ.
        let mut check: Vec<String> = Vec::new();
        {
            let state = self.lock();
            for facts in &imds {
                match state.ds.eni(&facts.id) {
                    None => check.push(facts.id.clone()),
                    Some(eni) => {
                        let ours: BTreeSet<Ipv4Net> = eni.cidrs().map(|c| c.net()).collect();
                        let theirs: BTreeSet<Ipv4Net> = facts
                            .cidrs()
                            .into_iter()
                            .filter(|c| !ops.reconcile_cooldown.contains_key(c))
                            .collect();
                        if ours != theirs {
                            check.push(facts.id.clone());
                        }
                    }
                }
            }
        }
        let mut dropped = 0usize;
        for gone in known.difference(&in_imds) {
            let mut state = self.lock();
            if let Ok((_, allocations)) = state.ds.remove_eni(gone, true) {
                dropped += allocations.len();
                state.macs.remove(gone);
                state.attachments.remove(gone);
                tracing::warn!(eni = %gone, pods = allocations.len(), "ENI left the node: removed");
            }
        }
        if !check.is_empty() {
            let ec2 = self
                .cloud
                .describe_enis(&check, self.node.subnet_cidr)
                .await
                .map_err(cloud_err("reconcile: confirming ENIs with EC2"))?;
            for facts in &ec2 {
                let imds_facts = imds.iter().find(|e| e.id == facts.id);
                dropped += self.apply_ec2_view(ops, facts, imds_facts);
            }
        }
        if dropped > 0 {
            let state = self.lock();
            self.write_checkpoint(&state)?;
        }
        self.update_gauges();
        Ok(())
    }

    /// Makes the datastore's view of one ENI EC2's. Returns the allocations dropped.
    fn apply_ec2_view(&self, ops: &PoolOps, facts: &EniFacts, imds: Option<&EniFacts>) -> usize {
        let mut state = self.lock();
        if facts.no_manage {
            return 0;
        }
        if state.ds.eni(&facts.id).is_none() {
            let Some(imds) = imds else { return 0 };
            let mut eni = Eni::new(
                &facts.id,
                imds.device_index,
                facts.id == self.node.primary_eni_id,
                imds.subnet,
                facts.attached_at.unwrap_or_else(SystemTime::now),
            );
            eni.trunk = facts.trunk;
            eni.efa = facts.efa;
            if let Err(err) = state.ds.add_eni(eni) {
                tracing::warn!(eni = %facts.id, %err, "new ENI not added");
                return 0;
            }
            state.macs.insert(facts.id.clone(), imds.mac.clone());
            if let Some(a) = &facts.attachment_id {
                state.attachments.insert(facts.id.clone(), a.clone());
            }
            tracing::info!(eni = %facts.id, "ENI found attached: added");
        }
        let ours: BTreeSet<Ipv4Net> = state
            .ds
            .eni(&facts.id)
            .map(|e| e.cidrs().map(|c| c.net()).collect())
            .unwrap_or_default();
        let theirs: BTreeSet<Ipv4Net> = facts.cidrs().into_iter().collect();
        for added in theirs.difference(&ours) {
            if ops.reconcile_cooldown.contains_key(added) {
                continue;
            }
            match state.ds.add_cidr(&facts.id, *added) {
                Ok(()) => {
                    tracing::info!(eni = %facts.id, block = %added, "block found in EC2: added")
                }
                Err(err) => {
                    tracing::warn!(eni = %facts.id, block = %added, %err, "block not added")
                }
            }
        }
        let mut dropped = 0;
        for removed in ours.difference(&theirs) {
            if let Ok(allocations) = state.ds.remove_cidr(&facts.id, *removed, true) {
                dropped += allocations.len();
                tracing::warn!(eni = %facts.id, block = %removed, pods = allocations.len(), "block gone from EC2: removed");
            }
        }
        dropped
    }
}
