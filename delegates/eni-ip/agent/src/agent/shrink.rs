//! Shrinking the pool in EC2: whole free blocks given back (`DeallocCidrs`), and free ENIs
//! detached then deleted (`tryFreeENI`, `FreeENI`).

use std::time::{Duration, Instant};

use eni_ip::warm_pool::Release;

use super::{cloud_err, Agent, PoolError, PoolOps};

/// Attempts at deleting a detached ENI (ipamd retries `FreeENI` 12 times).
const DELETE_TRIES: u32 = 12;

impl Agent {
    /// Takes the blocks out of the datastore first (so no ADD picks them meanwhile), then
    /// unassigns them in EC2; on failure they go back into the datastore.
    pub(super) async fn release_blocks(
        &self,
        ops: &mut PoolOps,
        releases: &[Release],
    ) -> Result<(), PoolError> {
        for release in releases {
            let removed: Vec<_> = {
                let mut state = self.lock();
                release
                    .cidrs
                    .iter()
                    .copied()
                    .filter(|c| state.ds.remove_cidr(&release.eni_id, *c, false).is_ok())
                    .collect()
            };
            if removed.is_empty() {
                continue;
            }
            let until = Instant::now() + self.settings.timers.reconcile_cooldown;
            for c in &removed {
                ops.reconcile_cooldown.insert(*c, until);
            }
            if let Err(err) = self.cloud.unassign(&release.eni_id, &removed).await {
                let mut state = self.lock();
                for c in &removed {
                    ops.reconcile_cooldown.remove(c);
                    let _ = state.ds.add_cidr(&release.eni_id, *c);
                }
                return Err(cloud_err(format!(
                    "giving back {} block(s) of {}",
                    removed.len(),
                    release.eni_id
                ))(err));
            }
            tracing::info!(eni = %release.eni_id, blocks = ?removed, "blocks given back");
        }
        self.update_gauges();
        Ok(())
    }

    /// Frees `eni_id` if it is still deletable: out of the datastore, then out of EC2.
    pub(super) async fn free_eni(&self, eni_id: &str) -> Result<(), PoolError> {
        let attachment = {
            let mut state = self.lock();
            let targets = self.settings.warm_pool.deletable_targets();
            if let Err(why) = state.ds.check_deletable(eni_id, &targets) {
                tracing::debug!(eni = eni_id, %why, "ENI kept");
                return Ok(());
            }
            if state.ds.remove_eni(eni_id, false).is_err() {
                return Ok(());
            }
            state.macs.remove(eni_id);
            (
                state.attachments.remove(eni_id),
                state.secondaries.remove(eni_id),
            )
        };
        let (attachment, secondary) = attachment;
        if let Some(secondary) = &secondary {
            self.teardown_eni_network(secondary).await;
        }
        self.update_gauges();
        if !self.free_in_ec2(eni_id, attachment.as_deref()).await {
            return Err(PoolError::NotFreed {
                eni: eni_id.to_string(),
            });
        }
        Ok(())
    }

    /// Detaches (when attached) and deletes an ENI; "not found" counts as done. Returns
    /// whether the ENI is gone.
    pub(super) async fn free_in_ec2(&self, eni_id: &str, attachment: Option<&str>) -> bool {
        let attachment = match attachment {
            Some(a) => Some(a.to_string()),
            None => match self
                .cloud
                .describe_enis(&[eni_id.to_string()], self.node.subnet_cidr)
                .await
            {
                Ok(enis) => enis.first().and_then(|e| e.attachment_id.clone()),
                Err(err) if err.is_not_found() => return true,
                Err(err) => {
                    tracing::warn!(eni = eni_id, %err, "could not read the ENI's attachment");
                    None
                }
            },
        };
        if let Some(attachment) = attachment {
            match self.cloud.detach(&attachment).await {
                Ok(()) => {}
                Err(err) if err.is_not_found() => {}
                Err(err) => {
                    tracing::error!(eni = eni_id, %err, "could not detach the ENI");
                    return false;
                }
            }
            tokio::time::sleep(self.settings.timers.detach_wait).await;
        }
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=DELETE_TRIES {
            match self.cloud.delete_eni(eni_id).await {
                Ok(()) => {
                    tracing::info!(eni = eni_id, "ENI freed");
                    return true;
                }
                Err(err) if err.is_not_found() => return true,
                Err(err) => {
                    let failure = cloud_err(format!("deleting {eni_id}"))(err);
                    tracing::warn!(eni = eni_id, attempt, %failure, "ENI delete failed; retrying");
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        tracing::error!(
            eni = eni_id,
            "ENI not deleted after {DELETE_TRIES} attempts"
        );
        false
    }
}
