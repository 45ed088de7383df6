//! The attachment plan of one pod, resolved and validated before anything is made: cluster
//! network, `defaultNetworks` (not in system namespaces), then the selected networks, each
//! with its interface name, delegate netconf, runtime config and `CNI_ARGS`.

use std::collections::HashSet;

use serde_json::{Map, Value};

use cni::{Error, Request};
use nad_crd::{parse_networks_annotation, NetworkSelection};

use super::attachment::Attachment;
use super::config::MetaConf;
use super::networks::{self, Network};

/// The pod's namespace: `K8S_POD_NAMESPACE`, else `default`.
pub(crate) fn pod_namespace(req: &Request) -> Result<String, Error> {
    let ns = req.args.get("K8S_POD_NAMESPACE").unwrap_or("default");
    if let Some(why) = nad_crd::names::namespace_problem(ns) {
        return Err(Error::invalid_config("K8S_POD_NAMESPACE", ns, why));
    }
    Ok(ns.to_string())
}

/// Puts the selection's `cni-args` under `args.cni` of every plugin of `conf`.
fn with_cni_args(mut conf: Value, cni_args: &Map<String, Value>) -> Value {
    let merge = |plugin: &mut Value| {
        let Some(obj) = plugin.as_object_mut() else {
            return;
        };
        let args = obj
            .entry("args")
            .or_insert_with(|| Value::Object(Map::new()));
        if !args.is_object() {
            *args = Value::Object(Map::new());
        }
        let cni = args
            .as_object_mut()
            .expect("made an object above")
            .entry("cni")
            .or_insert_with(|| Value::Object(Map::new()));
        if !cni.is_object() {
            *cni = Value::Object(Map::new());
        }
        let cni = cni.as_object_mut().expect("made an object above");
        for (k, v) in cni_args {
            cni.insert(k.clone(), v.clone());
        }
    };
    match conf.get_mut("plugins").and_then(Value::as_array_mut) {
        Some(plugins) => plugins.iter_mut().for_each(merge),
        None => merge(&mut conf),
    }
    conf
}

fn attachment(
    network: Network,
    ifname: String,
    cluster: bool,
    selection: Option<&NetworkSelection>,
    conf: &MetaConf,
    req: &Request,
) -> Attachment {
    let mut runtime = conf.runtime_config.clone();
    let mut args = req.args.clone();
    args.set("IgnoreUnknown", "1");
    let mut delegate = network.conf;
    let mut default_route = Vec::new();
    if let Some(sel) = selection {
        if !sel.ips.is_empty() {
            let ips: Vec<String> = sel.ips.iter().map(|ip| ip.to_string()).collect();
            args.set("IP", &ips.join(","));
            runtime.insert("ips".into(), ips.into());
        }
        if let Some(mac) = &sel.mac {
            args.set("MAC", &mac.to_string());
            runtime.insert("mac".into(), mac.to_string().into());
        }
        if !sel.port_mappings.is_empty() {
            runtime.insert("portMappings".into(), sel.port_mappings.clone().into());
        }
        if let Some(bw) = &sel.bandwidth {
            runtime.insert("bandwidth".into(), bw.clone());
        }
        if let Some(guid) = &sel.infiniband_guid {
            runtime.insert("infinibandGUID".into(), guid.clone().into());
        }
        if let Some(id) = &sel.device_id {
            runtime.insert("deviceID".into(), id.clone().into());
        }
        if let Some(cni_args) = &sel.cni_args {
            delegate = with_cni_args(delegate, cni_args);
        }
        default_route = sel.default_route.clone();
    }
    Attachment {
        network: network.name,
        ifname,
        cluster,
        conf: delegate,
        runtime_config: runtime,
        cni_args: args.to_env(),
        default_route,
        result: None,
    }
}

/// Resolves every attachment of the pod, in order; fails (code 7) before anything is made.
pub(crate) fn build(conf: &MetaConf, req: &Request) -> Result<Vec<Attachment>, Error> {
    let pod_ns = pod_namespace(req)?;
    let mut networks: Vec<(Network, Option<NetworkSelection>)> = Vec::new();
    match &conf.cluster_network {
        Some(reference) => networks.push((networks::from_reference(conf, reference)?, None)),
        None => {
            for delegate in &conf.delegates {
                let name = delegate
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                networks.push((
                    Network {
                        name,
                        conf: delegate.clone(),
                    },
                    None,
                ));
            }
        }
    }
    if !conf.system_namespaces.contains(&pod_ns) {
        for reference in &conf.default_networks {
            networks.push((networks::from_reference(conf, reference)?, None));
        }
    }
    let selections = match &conf.networks {
        None => Vec::new(),
        Some(v) => parse_networks_annotation(&v.to_string(), &pod_ns).map_err(|e| {
            Error::invalid_config(
                &format!(
                    "networks{}",
                    e.field().map(|f| format!(" {f}")).unwrap_or_default()
                ),
                e.value(),
                &e,
            )
        })?,
    };
    for sel in selections {
        if conf.namespace_isolation
            && sel.namespace != pod_ns
            && !conf.global_namespaces.contains(&sel.namespace)
        {
            return Err(Error::invalid_config(
                "networks",
                sel.qualified_name(),
                format!(
                    "namespaceIsolation: a pod in {pod_ns} may use networks of its own \
                     namespace or of {:?} only",
                    conf.global_namespaces
                ),
            ));
        }
        let network = networks::from_nad(conf, &sel.namespace, &sel.name)?.ok_or_else(|| {
            Error::invalid_config(
                "networks",
                sel.qualified_name(),
                format!("no such NAD in {}", conf.nad_dir.display()),
            )
        })?;
        networks.push((network, Some(sel)));
    }

    let mut seen = HashSet::new();
    let mut plan = Vec::with_capacity(networks.len());
    for (index, (network, sel)) in networks.into_iter().enumerate() {
        let ifname = if index == 0 {
            req.ifname.clone()
        } else {
            sel.as_ref()
                .and_then(|s| s.interface.clone())
                .unwrap_or_else(|| format!("net{index}"))
        };
        if !seen.insert(ifname.clone()) {
            return Err(Error::invalid_config(
                "interface",
                &ifname,
                format!(
                    "network {} asks for an interface name already taken",
                    network.name
                ),
            ));
        }
        network.conflist()?;
        plan.push(attachment(
            network,
            ifname,
            index == 0,
            sel.as_ref(),
            conf,
            req,
        ));
    }
    let mut gateways = Vec::new();
    for att in &plan {
        for gw in &att.default_route {
            if let Some((other, _)) = gateways
                .iter()
                .find(|(_, g): &&(String, std::net::IpAddr)| g.is_ipv4() == gw.is_ipv4())
            {
                return Err(Error::invalid_config(
                    "default-route",
                    gw,
                    format!(
                        "network {} already holds the {} default route",
                        other,
                        if gw.is_ipv4() { "IPv4" } else { "IPv6" }
                    ),
                ));
            }
            gateways.push((att.network.clone(), *gw));
        }
    }
    Ok(plan)
}
