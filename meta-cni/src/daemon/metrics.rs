//! The daemon's Prometheus metrics. prometheus-client encodes OpenMetrics, which gives every
//! counter a `_total` suffix: `meta_cni_daemon_requests` is scraped as
//! `meta_cni_daemon_requests_total`.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// One label set: `(name, value)` pairs.
type Labels = Vec<(String, String)>;

/// Every metric the daemon keeps, and the registry that encodes them.
pub(crate) struct Metrics {
    registry: Registry,
    /// Calls served, by verb and result (`ok`, or `error` with the CNI code).
    requests: Family<Labels, Counter>,
    /// Call latency in seconds, by verb (the queue for a slot not included).
    request_seconds: Family<Labels, Histogram>,
    /// Delegate latency in seconds, by delegate type.
    delegate_seconds: Family<Labels, Histogram>,
    /// Requests sent to the Kubernetes API, by verb and resource (watches not counted).
    api_requests: Family<Labels, Counter>,
    /// Pod and NAD lookups, by resource and whether the watch cache answered.
    cache_lookups: Family<Labels, Counter>,
    /// Policy updates of running pods' interfaces, by result.
    policy_updates: Family<Labels, Counter>,
    /// Calls being served now.
    pub(crate) in_flight: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn seconds_histogram() -> Histogram {
    // 0.5 ms .. ~16 s: a bridge delegate takes milliseconds, an ADD with API retries seconds.
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero, registered.
    pub(crate) fn new() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<Labels, Counter>::default();
        let request_seconds = Family::<Labels, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        let delegate_seconds = Family::<Labels, Histogram>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        let api_requests = Family::<Labels, Counter>::default();
        let cache_lookups = Family::<Labels, Counter>::default();
        let policy_updates = Family::<Labels, Counter>::default();
        let in_flight = Gauge::default();
        registry.register(
            "meta_cni_daemon_requests",
            "CNI calls served, by verb and result",
            requests.clone(),
        );
        registry.register(
            "meta_cni_daemon_request_seconds",
            "CNI call latency, by verb",
            request_seconds.clone(),
        );
        registry.register(
            "meta_cni_daemon_delegate_seconds",
            "Delegate call latency, by delegate type",
            delegate_seconds.clone(),
        );
        registry.register(
            "meta_cni_daemon_api_requests",
            "Requests to the Kubernetes API (watches not counted), by verb and resource",
            api_requests.clone(),
        );
        registry.register(
            "meta_cni_daemon_cache_lookups",
            "Pod and NAD lookups, by resource and result (hit: the watch cache answered)",
            cache_lookups.clone(),
        );
        registry.register(
            "meta_cni_daemon_policy_updates",
            "Policy updates of running pods' interfaces, by result (installed, removed, error)",
            policy_updates.clone(),
        );
        registry.register(
            "meta_cni_daemon_in_flight",
            "CNI calls being served",
            in_flight.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            delegate_seconds,
            api_requests,
            cache_lookups,
            policy_updates,
            in_flight,
        }
    }

    /// One call of `verb` served in `took`; `code` is its CNI error code, if it failed.
    pub(crate) fn request(&self, verb: &str, code: Option<u32>, took: Duration) {
        let code = code.map(|c| c.to_string());
        let result = match &code {
            None => labels(&[("verb", verb), ("result", "ok")]),
            Some(code) => labels(&[("verb", verb), ("result", "error"), ("code", code)]),
        };
        self.requests.get_or_create(&result).inc();
        self.request_seconds
            .get_or_create(&labels(&[("verb", verb)]))
            .observe(took.as_secs_f64());
    }

    /// One delegate call of `plugin_type` that took `took`.
    pub(crate) fn delegate(&self, plugin_type: &str, took: Duration) {
        self.delegate_seconds
            .get_or_create(&labels(&[("type", plugin_type)]))
            .observe(took.as_secs_f64());
    }

    /// One request to the API (`GET`, `PATCH`) for `resource` (`pods`, ...).
    pub(crate) fn api_request(&self, verb: &str, resource: &str) {
        self.api_requests
            .get_or_create(&labels(&[("verb", verb), ("resource", resource)]))
            .inc();
    }

    /// One lookup of `resource` that the cache answered (`hit`) or not.
    pub(crate) fn cache_lookup(&self, resource: &str, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache_lookups
            .get_or_create(&labels(&[("resource", resource), ("result", result)]))
            .inc();
    }

    /// One interface's policy update with `result` (`installed`, `removed`, `error`).
    pub(crate) fn policy_update(&self, result: &str) {
        self.policy_updates
            .get_or_create(&labels(&[("result", result)]))
            .inc();
    }

    /// The OpenMetrics text of every metric.
    pub(crate) fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_appear_in_the_text() {
        let m = Metrics::new();
        m.request("ADD", None, Duration::from_millis(3));
        m.request("ADD", None, Duration::from_millis(4));
        m.request("DEL", Some(101), Duration::from_millis(1));
        m.cache_lookup("pods", true);
        m.api_request("PATCH", "pods");
        m.delegate("bridge", Duration::from_millis(2));
        m.policy_update("installed");
        let text = m.encode();
        for line in [
            r#"meta_cni_daemon_requests_total{verb="ADD",result="ok"} 2"#,
            r#"meta_cni_daemon_requests_total{verb="DEL",result="error",code="101"} 1"#,
            r#"meta_cni_daemon_cache_lookups_total{resource="pods",result="hit"} 1"#,
            r#"meta_cni_daemon_api_requests_total{verb="PATCH",resource="pods"} 1"#,
            r#"meta_cni_daemon_request_seconds_count{verb="ADD"} 2"#,
            r#"meta_cni_daemon_delegate_seconds_count{type="bridge"} 1"#,
            r#"meta_cni_daemon_policy_updates_total{result="installed"} 1"#,
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }
}
