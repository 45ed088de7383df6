//! The latency driver: several scenarios measured pod by pod in turns, so load from
//! elsewhere on the machine (other builds, other agents) lands on all of them alike and the
//! ratios between them hold within one run.

use std::time::Duration;

use super::stats::{Samples, Timings};

/// One way of giving a pod its interfaces. Every call enters the scenario's own namespaces
/// itself (outside the timed part), so the driver can run scenarios in turns on one thread.
pub(crate) trait Scenario {
    /// The scenario's name in the table and the JSON.
    fn name(&self) -> String;
    /// Gives pod `k` its interfaces; returns the time it took.
    fn add(&self, k: usize) -> Duration;
    /// Takes them away again; returns the time it took.
    fn del(&self, k: usize) -> Duration;
}

/// ADD of pods `0..pods` in every scenario, then DEL of all of them, scenario by scenario in
/// turns (starting with a different one for each pod, so no scenario always runs right after
/// the same other one). Returns each scenario's timings, in the order given.
pub(crate) fn in_turns(scenarios: &[&dyn Scenario], pods: usize) -> Vec<Timings> {
    let n = scenarios.len();
    let mut add = vec![Samples::default(); n];
    let mut del = vec![Samples::default(); n];
    for k in 0..pods {
        for i in (0..n).map(|i| (i + k) % n) {
            add[i].push(scenarios[i].add(k));
        }
    }
    for k in 0..pods {
        for i in (0..n).map(|i| (i + k) % n) {
            del[i].push(scenarios[i].del(k));
        }
    }
    add.into_iter()
        .zip(del)
        .map(|(add, del)| Timings { add, del })
        .collect()
}
