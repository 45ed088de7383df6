//! The pool manager (`StartNodeIPPoolManager`, `updateIPPoolIfRequired`): every pool
//! interval, grow if the pool is too low, give blocks back if too high (at most once per
//! decrease interval), free an ENI the rules allow, and reconcile with IMDS/EC2 once per
//! reconcile interval. A failed tick backs off exponentially on top of the SDK's retries.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eni_ip::warm_pool::{self, Grow};
use tokio::sync::watch;

use super::{Agent, PoolError};

/// The longest back-off between failed ticks, in pool intervals.
const MAX_BACKOFF_FACTOR: u32 = 32;

/// What one tick did.
#[derive(Debug, Default, PartialEq, Eq)]
struct TickOutcome {
    /// It grew the pool: the next tick runs at once (pre-scaling reaches the targets fast).
    grew: bool,
}

/// Runs the pool manager until `shutdown` turns true; a tick in progress is finished first.
pub async fn run_pool_loop(agent: Arc<Agent>, mut shutdown: watch::Receiver<bool>) {
    let interval = agent.settings.timers.pool_interval;
    let mut failures = 0u32;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let wait = match agent.tick().await {
            Ok(outcome) => {
                failures = 0;
                if outcome.grew {
                    Duration::ZERO
                } else {
                    interval
                }
            }
            Err(err) => {
                failures = failures.saturating_add(1);
                let factor = 2u32.saturating_pow(failures.min(5)).min(MAX_BACKOFF_FACTOR);
                let wait = interval * factor;
                tracing::warn!(%err, failures, backoff_ms = wait.as_millis() as u64, "pool tick failed");
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

impl Agent {
    /// One pass of the pool manager.
    async fn tick(&self) -> Result<TickOutcome, PoolError> {
        let mut ops = self.pool_ops.lock().await;
        let plan = {
            let state = self.lock();
            warm_pool::plan(
                &self.settings.warm_pool,
                &self.limits,
                &state.ds,
                self.max_pods,
            )
        };
        let mut outcome = TickOutcome::default();
        match plan.grow {
            Some(Grow::AtEniLimit) => {
                tracing::debug!("pool below target but at the ENI limit");
            }
            // Growth waits out the insufficient-CIDR cooldown.
            Some(step) if ops.grow_blocked_for().is_none() => {
                self.grow(&mut ops, step).await?;
                outcome.grew = true;
            }
            Some(_) | None => {}
        }
        if !plan.release.is_empty()
            && ops.last_decrease.elapsed() >= self.settings.timers.decrease_interval
        {
            self.release_blocks(&mut ops, &plan.release).await?;
            ops.last_decrease = Instant::now();
        }
        if let Some(eni) = plan.free_eni {
            self.free_eni(&eni).await?;
        }
        if ops.last_reconcile.elapsed() >= self.settings.timers.reconcile_interval {
            self.reconcile(&mut ops).await?;
            ops.last_reconcile = Instant::now();
        }
        Ok(outcome)
    }
}
