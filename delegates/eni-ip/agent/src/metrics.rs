//! The agent's Prometheus metrics, under the AWS VPC CNI's names where they mean the same
//! (`utils/prometheusmetrics`). prometheus-client encodes OpenMetrics, which gives every
//! counter a `_total` suffix: `awscni_add_ip_req_count` is scraped as
//! `awscni_add_ip_req_count_total`.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// One label set: `(name, value)` pairs.
type Labels = Vec<(String, String)>;

/// Every metric the agent keeps, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    /// ENIs attached (`awscni_eni_allocated`).
    pub eni_allocated: Gauge,
    /// The ENI limit (`awscni_eni_max`).
    pub eni_max: Gauge,
    /// The most pod addresses the node can hold (`awscni_ip_max`).
    pub ip_max: Gauge,
    /// Addresses in the pool (`awscni_total_ip_addresses`).
    pub total_ip_addresses: Gauge,
    /// Addresses handed out (`awscni_assigned_ip_addresses`).
    pub assigned_ip_addresses: Gauge,
    /// Delegated /28 prefixes (`awscni_total_ipv4_prefixes`).
    pub total_ipv4_prefixes: Gauge,
    /// AddNetwork calls (`awscni_add_ip_req_count`).
    pub add_ip_req_count: Counter,
    /// DelNetwork calls, by reason (`awscni_del_ip_req_count{reason}`).
    pub del_ip_req_count: Family<Labels, Counter>,
    /// AddNetwork calls that found no address (`awscni_no_available_ip_addresses`).
    pub no_available_ip_addresses: Counter,
    /// Reconciles with IMDS/EC2 (`awscni_reconcile_count`).
    pub reconcile_count: Counter,
    /// EC2 calls, by operation (`awscni_ec2api_req_count{fn}`).
    pub ec2api_req_count: Family<Labels, Counter>,
    /// Failed EC2 calls, by operation and error code (`awscni_ec2api_error_count{fn,error}`).
    pub ec2api_error_count: Family<Labels, Counter>,
    /// EC2 call latency, retries included (`awscni_aws_api_latency_ms{fn}`).
    pub aws_api_latency_ms: Family<Labels, Histogram>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~33 s: an EC2 call with its retries can take tens of seconds.
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

impl Metrics {
    /// A registry holding every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::<i64, AtomicI64Compat>::default();
            registry.register(name, help, g.clone());
            g
        };
        let eni_allocated = gauge(&mut registry, "awscni_eni_allocated", "ENIs attached");
        let eni_max = gauge(
            &mut registry,
            "awscni_eni_max",
            "the most ENIs the node may attach",
        );
        let ip_max = gauge(
            &mut registry,
            "awscni_ip_max",
            "the most pod addresses the node can hold",
        );
        let total_ip_addresses = gauge(
            &mut registry,
            "awscni_total_ip_addresses",
            "addresses in the pool",
        );
        let assigned_ip_addresses = gauge(
            &mut registry,
            "awscni_assigned_ip_addresses",
            "addresses handed out",
        );
        let total_ipv4_prefixes = gauge(
            &mut registry,
            "awscni_total_ipv4_prefixes",
            "delegated /28 prefixes",
        );
        let counter = |registry: &mut Registry, name: &str, help: &str| {
            let c = Counter::<u64, AtomicU64>::default();
            registry.register(name, help, c.clone());
            c
        };
        let add_ip_req_count =
            counter(&mut registry, "awscni_add_ip_req_count", "AddNetwork calls");
        let no_available_ip_addresses = counter(
            &mut registry,
            "awscni_no_available_ip_addresses",
            "AddNetwork calls that found no address",
        );
        let reconcile_count = counter(
            &mut registry,
            "awscni_reconcile_count",
            "reconciles with IMDS and EC2",
        );
        let del_ip_req_count = Family::<Labels, Counter>::default();
        registry.register(
            "awscni_del_ip_req_count",
            "DelNetwork calls, by reason",
            del_ip_req_count.clone(),
        );
        let ec2api_req_count = Family::<Labels, Counter>::default();
        registry.register(
            "awscni_ec2api_req_count",
            "EC2 calls, by operation",
            ec2api_req_count.clone(),
        );
        let ec2api_error_count = Family::<Labels, Counter>::default();
        registry.register(
            "awscni_ec2api_error_count",
            "failed EC2 calls, by operation and error code",
            ec2api_error_count.clone(),
        );
        let aws_api_latency_ms = Family::<Labels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "awscni_aws_api_latency_ms",
            "EC2 call latency in milliseconds, retries included",
            aws_api_latency_ms.clone(),
        );
        Metrics {
            registry,
            eni_allocated,
            eni_max,
            ip_max,
            total_ip_addresses,
            assigned_ip_addresses,
            total_ipv4_prefixes,
            add_ip_req_count,
            del_ip_req_count,
            no_available_ip_addresses,
            reconcile_count,
            ec2api_req_count,
            ec2api_error_count,
            aws_api_latency_ms,
        }
    }

    /// Records one EC2 call: its operation, how long it took, and its error code if it failed.
    pub fn ec2_call(&self, api: &str, took: Duration, error: Option<&str>) {
        let op = vec![("fn".to_string(), api.to_string())];
        self.ec2api_req_count.get_or_create(&op).inc();
        self.aws_api_latency_ms
            .get_or_create(&op)
            .observe(took.as_secs_f64() * 1000.0);
        if let Some(code) = error {
            let labels = vec![
                ("fn".to_string(), api.to_string()),
                ("error".to_string(), code.to_string()),
            ];
            self.ec2api_error_count.get_or_create(&labels).inc();
        }
    }

    /// Counts one DelNetwork by its reason.
    pub fn del_request(&self, reason: &str) {
        self.del_ip_req_count
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc();
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// The gauges' atomic: prometheus-client's default for `i64`.
type AtomicI64Compat = std::sync::atomic::AtomicI64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_names_are_encoded() {
        let m = Metrics::new();
        m.eni_allocated.set(2);
        m.add_ip_req_count.inc();
        m.del_request("PodDeleted");
        m.ec2_call(
            "AssignPrivateIpAddresses",
            Duration::from_millis(3),
            Some("RequestLimitExceeded"),
        );
        let text = m.encode();
        for needle in [
            "awscni_eni_allocated 2",
            "awscni_add_ip_req_count_total 1",
            "awscni_del_ip_req_count_total{reason=\"PodDeleted\"} 1",
            "awscni_ec2api_req_count_total{fn=\"AssignPrivateIpAddresses\"} 1",
            "awscni_ec2api_error_count_total{fn=\"AssignPrivateIpAddresses\",error=\"RequestLimitExceeded\"} 1",
            "awscni_aws_api_latency_ms_count{fn=\"AssignPrivateIpAddresses\"} 1",
        ] {
            assert!(text.contains(needle), "{needle} not in\n{text}");
        }
    }
}
