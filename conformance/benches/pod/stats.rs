//! Latency samples and their summary.

use std::time::Duration;

use serde_json::{json, Value};

/// The latencies of one operation over a run, in the order they were taken.
#[derive(Debug, Clone, Default)]
pub(crate) struct Samples(Vec<Duration>);

impl Samples {
    /// Adds one sample.
    pub(crate) fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// Every sample in milliseconds, sorted.
    pub(crate) fn sorted_ms(&self) -> Vec<f64> {
        let mut ms: Vec<f64> = self.0.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        ms
    }

    /// The `p`-th percentile (nearest rank) in milliseconds; NaN without samples.
    pub(crate) fn percentile(&self, p: f64) -> f64 {
        let ms = self.sorted_ms();
        if ms.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * ms.len() as f64).ceil() as usize;
        ms[rank.clamp(1, ms.len()) - 1]
    }

    /// The median in milliseconds.
    pub(crate) fn p50(&self) -> f64 {
        self.percentile(50.0)
    }

    /// The 99th percentile in milliseconds.
    pub(crate) fn p99(&self) -> f64 {
        self.percentile(99.0)
    }

    /// The mean in milliseconds.
    pub(crate) fn mean(&self) -> f64 {
        let ms = self.sorted_ms();
        ms.iter().sum::<f64>() / ms.len() as f64
    }

    /// Summary and raw samples, in milliseconds.
    pub(crate) fn to_json(&self) -> Value {
        let ms = self.sorted_ms();
        json!({
            "n": ms.len(),
            "p50_ms": round(self.p50()),
            "p99_ms": round(self.p99()),
            "mean_ms": round(self.mean()),
            "min_ms": ms.first().copied().map(round),
            "max_ms": ms.last().copied().map(round),
            "samples_ms": self.0.iter().map(|d| round(d.as_secs_f64() * 1e3)).collect::<Vec<_>>(),
        })
    }
}

/// The ADD and DEL latencies of one scenario.
#[derive(Debug, Clone, Default)]
pub(crate) struct Timings {
    /// One sample per pod ADD.
    pub(crate) add: Samples,
    /// One sample per pod DEL.
    pub(crate) del: Samples,
}

impl Timings {
    /// Both operations as JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({ "add": self.add.to_json(), "del": self.del.to_json() })
    }
}

/// Microsecond precision is plenty for millisecond figures, and keeps the JSON readable.
/// NaN (no samples) becomes null in JSON anyway.
pub(crate) fn round(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// `a / b`, the way the report states ratios.
pub(crate) fn ratio(a: f64, b: f64) -> f64 {
    (a / b * 100.0).round() / 100.0
}
