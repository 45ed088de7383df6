//! The attachment plan of one pod, resolved and validated before anything is made: cluster
//! network (or the pod's `v1.multus-cni.io/default-network`), `defaultNetworks` (not in
//! system namespaces), the pod's `k8s.v1.cni.cncf.io/networks`, then the netconf's static
//! `networks`, each with its interface name, delegate netconf, runtime config and `CNI_ARGS`,
//! and its device: a selection's `deviceID`, or for a NAD naming a `resourceName` the next
//! device the kubelet allocated to the pod of that resource (ADD and DEL only).

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Map, Value};

use cni::{Command, ConfList, Request};
use kernel::{Netlink, Netns};
use nad_crd::{
    parse_default_network_annotation, parse_networks_annotation, AnnotationError, NetworkSelection,
    DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION,
};

use super::attachment::Attachment;
use super::config::MetaConf;
use super::devices::{Allocations, Device};
use super::error::PlanError;
use super::networks::{self, Network};
use super::pod_object::PodObject;
use super::source::Source;

/// A selection that does not parse, naming where it came from (`what`), the entry's field
/// and (through the error) the offending value.
fn selection_error(what: &str, source: AnnotationError) -> PlanError {
    let mut field = what.to_string();
    if let Some(index) = source.index() {
        field.push_str(&format!(" entry {index}"));
    }
    if let Some(f) = source.field() {
        field.push_str(&format!(" {f}"));
    }
    PlanError::Selection {
        field,
        source: Box::new(source),
    }
}

/// The pod's namespace: `K8S_POD_NAMESPACE`, else `default`.
pub(crate) fn pod_namespace(req: &Request) -> Result<String, PlanError> {
    let ns = req.inv.args.get("K8S_POD_NAMESPACE").unwrap_or("default");
    if let Some(why) = nad_crd::names::namespace_problem(ns) {
        return Err(PlanError::PodNamespace {
            namespace: ns.to_string(),
            why,
        });
    }
    Ok(ns.to_string())
}

/// Puts the selection's `cni-args` under `args.cni` of every plugin of `list`.
fn with_cni_args(mut list: ConfList, cni_args: &Map<String, Value>) -> ConfList {
    for plugin in &mut list.plugins {
        let args = plugin
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
    }
    list
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
    let mut args = req.inv.args.clone();
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
        cni_args: args,
        default_route,
        result: None,
        device: None,
    }
}

/// Gives each attachment its device: the selection's `deviceID`, else, for a NAD naming a
/// `resourceName`, the next device of that resource the kubelet allocated to the pod. The
/// pod's claims and the kubelet are asked once, and only for ADD and for DEL without a cache
/// (STATUS and GC run no device's delegates).
fn give_devices(
    conf: &MetaConf,
    req: &Request,
    (source, pod, pod_ns): (&Source<'_>, Option<&PodObject>, &str),
    plan: &mut [Attachment],
    wanted: Vec<(Option<String>, Option<String>)>,
) -> Result<(), PlanError> {
    let mut allocations: Option<Allocations> = None;
    let looks_up = matches!(req.inv.command, Command::Add | Command::Del);
    for (att, (selected, resource)) in plan.iter_mut().zip(wanted) {
        let (id, resource, claim) = match (selected, resource) {
            (Some(id), _) => (id, None, None),
            (None, Some(resource)) if looks_up => {
                let allocations = match &mut allocations {
                    Some(a) => a,
                    None => allocations.insert(Allocations::new(conf, req, source, pod, pod_ns)?),
                };
                let (id, claim) = allocations.take(&att.network, &resource)?;
                (id, Some(resource), claim)
            }
            _ => continue,
        };
        let device = Device::new(
            conf,
            &req.inv.container_id,
            (&att.network, &att.ifname),
            id,
            resource,
        );
        att.give_device(device.through(claim));
    }
    Ok(())
}

/// The cluster network: the pod's `default-network` override if it has one, else
/// `clusterNetwork`, else the netconf's `delegates` (all of them, the first being the
/// cluster network).
fn cluster_networks(
    conf: &MetaConf,
    source: &Source<'_>,
    override_selection: Option<&NetworkSelection>,
) -> Result<Vec<Network>, PlanError> {
    if let Some(sel) = override_selection {
        let network = networks::from_nad(conf, source, &sel.namespace, &sel.name)?
            .ok_or_else(|| no_such_nad(DEFAULT_NETWORK_ANNOTATION, sel, source))?;
        return Ok(vec![network]);
    }
    if let Some(reference) = &conf.cluster_network {
        return Ok(vec![networks::from_reference(conf, source, reference)?]);
    }
    let networks: Vec<Network> = conf
        .delegates
        .iter()
        .map(|delegate| {
            let name = delegate
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            Network::new(name, delegate.clone())
        })
        .collect::<Result<_, _>>()?;
    Ok(networks)
}

/// The NAD `sel` selected under `field` does not exist.
fn no_such_nad(field: &'static str, sel: &NetworkSelection, source: &Source<'_>) -> PlanError {
    PlanError::NoSuchNad {
        field,
        network: sel.qualified_name(),
        looked: source.where_missing(&sel.namespace, &sel.name),
    }
}

/// Every NAD the plan may read, so they can be fetched at once: the cluster network (or its
/// override) and `defaultNetworks` when given as NAD names, and the selections that
/// `namespaceIsolation` allows.
fn nad_refs(
    conf: &MetaConf,
    pod_ns: &str,
    override_selection: Option<&NetworkSelection>,
    with_defaults: bool,
    selections: &[NetworkSelection],
) -> Vec<(String, String)> {
    let by_name = |reference: &String| {
        (!reference.contains('/')).then(|| (conf.multus_namespace.clone(), reference.clone()))
    };
    let mut refs: Vec<(String, String)> = match override_selection {
        Some(sel) => vec![(sel.namespace.clone(), sel.name.clone())],
        None => conf.cluster_network.iter().filter_map(by_name).collect(),
    };
    if with_defaults {
        refs.extend(conf.default_networks.iter().filter_map(by_name));
    }
    refs.extend(
        selections
            .iter()
            .filter(|sel| conf.may_use(pod_ns, &sel.namespace))
            .map(|sel| (sel.namespace.clone(), sel.name.clone())),
    );
    refs
}

/// Resolves every attachment of the pod, in order; fails (code 7) before anything is made.
pub(crate) fn build(
    conf: &MetaConf,
    req: &Request,
    source: &Source<'_>,
    pod: Option<&PodObject>,
) -> Result<Vec<Attachment>, PlanError> {
    let pod_ns = pod_namespace(req)?;
    let override_selection = match pod.and_then(|p| p.default_network.as_deref()) {
        None => None,
        Some(value) => parse_default_network_annotation(value, &conf.multus_namespace)
            .map_err(|e| selection_error(DEFAULT_NETWORK_ANNOTATION, e))?,
    };
    let with_defaults = !conf.system_namespaces.contains(&pod_ns);
    let mut selections = match pod.and_then(|p| p.networks.as_deref()) {
        None => Vec::new(),
        Some(value) => parse_networks_annotation(value, &pod_ns)
            .map_err(|e| selection_error(NETWORKS_ANNOTATION, e))?,
    };
    if let Some(v) = &conf.networks {
        selections.extend(
            parse_networks_annotation(&v.to_string(), &pod_ns)
                .map_err(|e| selection_error("networks", e))?,
        );
    }
    source.prefetch(&nad_refs(
        conf,
        &pod_ns,
        override_selection.as_ref(),
        with_defaults,
        &selections,
    ));

    let mut networks: Vec<(Network, Option<NetworkSelection>)> =
        cluster_networks(conf, source, override_selection.as_ref())?
            .into_iter()
            .map(|n| (n, None))
            .collect();
    if with_defaults {
        for reference in &conf.default_networks {
            networks.push((networks::from_reference(conf, source, reference)?, None));
        }
    }
    for sel in selections {
        if !conf.may_use(&pod_ns, &sel.namespace) {
            return Err(PlanError::Isolated {
                network: sel.qualified_name(),
                pod_namespace: pod_ns,
                global_namespaces: conf.global_namespaces.clone(),
            });
        }
        let network = networks::from_nad(conf, source, &sel.namespace, &sel.name)?
            .ok_or_else(|| no_such_nad("networks", &sel, source))?;
        networks.push((network, Some(sel)));
    }

    let mut seen = HashSet::new();
    let mut plan = Vec::with_capacity(networks.len());
    let mut devices = Vec::with_capacity(networks.len());
    for (index, (network, sel)) in networks.into_iter().enumerate() {
        let ifname = if index == 0 {
            req.inv.ifname.clone()
        } else {
            sel.as_ref()
                .and_then(|s| s.interface.clone())
                .unwrap_or_else(|| format!("net{index}"))
        };
        if !seen.insert(ifname.clone()) {
            return Err(PlanError::InterfaceTaken {
                ifname,
                network: network.name,
            });
        }
        devices.push((
            sel.as_ref().and_then(|s| s.device_id.clone()),
            network.resource_name.clone(),
        ));
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
            if let Some((holder, _)) = gateways
                .iter()
                .find(|(_, g): &&(String, std::net::IpAddr)| g.is_ipv4() == gw.is_ipv4())
            {
                return Err(PlanError::DefaultRouteTaken {
                    gateway: *gw,
                    holder: holder.clone(),
                });
            }
            gateways.push((att.network.clone(), *gw));
        }
    }
    give_devices(conf, req, (source, pod, &pod_ns), &mut plan, devices)?;
    Ok(plan)
}

/// The pod's network namespace, `CNI_NETNS`: code 3 when it does not exist, 5 when it
/// cannot be opened.
pub(crate) fn open_pod_netns(req: &Request) -> Result<Netns, PlanError> {
    let path = req.inv.netns.as_deref().unwrap_or(Path::new(""));
    Netns::open(path).map_err(|source| PlanError::Netns {
        path: path.to_path_buf(),
        source,
    })
}

/// Fails (code 4) when an interface the plan would make already exists in the pod, so a name
/// clash stops the ADD before anything is made rather than at attachment k.
pub(crate) fn check_names_free(req: &Request, plan: &[Attachment]) -> Result<(), PlanError> {
    let netns = open_pod_netns(req)?;
    let links = Netlink::in_netns(&netns)
        .and_then(|mut nl| nl.links())
        .map_err(|source| PlanError::ListLinks { source })?;
    for att in plan {
        if links.iter().any(|l| l.name == att.ifname) {
            return Err(PlanError::InterfaceExists {
                ifname: att.ifname.clone(),
                network: att.network.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The plan against a fixed set of NADs: no root, no files, no API.

    use std::collections::HashMap;

    use cni::{Command, Error, ErrorCode, Version};
    use nad_crd::NetworkAttachmentDefinition;
    use serde_json::json;

    use super::*;
    use crate::meta::pod_object::PodObject;

    fn nad(namespace: &str, name: &str, bridge: &str) -> NetworkAttachmentDefinition {
        let config = json!({"cniVersion": "1.0.0", "type": "bridge", "bridge": bridge,
            "ipam": {"type": "host-local", "subnet": "10.9.0.0/24"}});
        let mut nad = NetworkAttachmentDefinition::new(name, config.to_string());
        nad.metadata.namespace = Some(namespace.to_string());
        nad
    }

    fn nads() -> Vec<NetworkAttachmentDefinition> {
        vec![
            nad("kube-system", "cluster", "br-c"),
            nad("kube-system", "extra", "br-e"),
            nad("default", "net-a", "br-a"),
            nad("default", "net-b", "br-b"),
            nad("other", "net-o", "br-o"),
        ]
    }

    /// An ADD request with the meta netconf `conf` and `CNI_ARGS` `args`.
    fn request(conf: serde_json::Value, args: &str) -> Request {
        let mut netconf = json!({"cniVersion": "1.0.0", "name": "meta", "type": "meta-cni",
            "clusterNetwork": "cluster"});
        for (k, v) in conf.as_object().into_iter().flatten() {
            netconf[k] = v.clone();
        }
        let env = HashMap::from([
            ("CNI_CONTAINERID", "c1".to_string()),
            ("CNI_NETNS", "/var/run/netns/c1".to_string()),
            ("CNI_IFNAME", "eth0".to_string()),
            ("CNI_PATH", "/opt/cni/bin".to_string()),
            ("CNI_ARGS", args.to_string()),
        ]);
        let lookup = |k: &str| env.get(k).cloned();
        let stdin = serde_json::to_vec(&netconf).unwrap();
        Request::parse(Command::Add, &lookup, &stdin, &Version::ALL).unwrap()
    }

    /// The plan, or its failure as the runtime sees it.
    fn plan(req: &Request, pod: Option<&PodObject>) -> Result<Vec<Attachment>, Error> {
        let conf = MetaConf::load(req)?;
        Ok(build(&conf, req, &Source::fixed(&conf, nads()), pod)?)
    }

    fn pod(networks: &str) -> PodObject {
        PodObject {
            namespace: "default".into(),
            name: "p".into(),
            networks: Some(networks.into()),
            default_network: None,
            labels: Default::default(),
            container_ports: Vec::new(),
            resource_claims: Vec::new(),
        }
    }

    fn names(plan: &[Attachment]) -> Vec<(String, String)> {
        plan.iter()
            .map(|a| (a.network.clone(), a.ifname.clone()))
            .collect()
    }

    #[test]
    fn cluster_defaults_annotation_then_static_networks_in_order() {
        let req = request(
            json!({"defaultNetworks": ["extra"],
                   "networks": [{"name": "net-b", "interface": "data0"}]}),
            "",
        );
        let plan = plan(&req, Some(&pod("net-a"))).unwrap();
        assert_eq!(
            names(&plan),
            [
                ("kube-system/cluster".to_string(), "eth0".to_string()),
                ("kube-system/extra".into(), "net1".into()),
                ("default/net-a".into(), "net2".into()),
                ("default/net-b".into(), "data0".into()),
            ]
        );
        assert!(plan[0].cluster && plan[1..].iter().all(|a| !a.cluster));
    }

    #[test]
    fn pods_of_system_namespaces_get_no_default_networks() {
        let req = request(
            json!({"defaultNetworks": ["extra"]}),
            "K8S_POD_NAMESPACE=kube-system",
        );
        assert_eq!(plan(&req, None).unwrap().len(), 1);
    }

    #[test]
    fn namespace_isolation_allows_own_and_global_namespaces_only() {
        let isolated = json!({"namespaceIsolation": true, "globalNamespaces": ["kube-system"]});
        let req = request(isolated.clone(), "");
        let e = plan(&req, Some(&pod("other/net-o"))).unwrap_err();
        assert_eq!(e.code, ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(e.msg.contains("other/net-o"), "{e:?}");
        assert!(e.details.contains("namespaceIsolation"), "{e:?}");
        let ok = plan(&req, Some(&pod("net-a, kube-system/extra"))).unwrap();
        assert_eq!(ok.len(), 3);
        // Without isolation any namespace goes.
        let req = request(json!({}), "");
        assert_eq!(plan(&req, Some(&pod("other/net-o"))).unwrap().len(), 2);
    }

    #[test]
    fn the_default_network_annotation_replaces_the_cluster_network() {
        let req = request(json!({}), "");
        let mut p = pod("net-a");
        p.default_network = Some("default/net-b".into());
        let plan = plan(&req, Some(&p)).unwrap();
        assert_eq!(
            names(&plan),
            [
                ("default/net-b".to_string(), "eth0".to_string()),
                ("default/net-a".into(), "net1".into())
            ]
        );
    }

    #[test]
    fn a_missing_nad_is_code_7_naming_it_and_where_it_was_looked_for() {
        let req = request(json!({}), "");
        let e = plan(&req, Some(&pod("net-z"))).unwrap_err();
        assert_eq!(e.code, ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(e.msg.contains("default/net-z"), "{e:?}");
        assert!(e.details.contains("no fixed NAD default/net-z"), "{e:?}");
    }

    #[test]
    fn interface_names_must_be_unique() {
        let req = request(json!({}), "");
        let e = plan(&req, Some(&pod("net-a@eth0"))).unwrap_err();
        assert_eq!(e.code, ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(e.msg.contains("eth0"), "{e:?}");
    }

    #[test]
    fn a_selection_reaches_its_delegates_as_args_runtime_config_and_cni_args() {
        let req = request(json!({}), "IgnoreUnknown=1;K8S_POD_NAME=p");
        let p = pod(
            r#"[{"name": "net-a", "ips": ["10.9.0.7/24"], "mac": "02:00:00:00:00:07",
                "cni-args": {"note": "x"}}]"#,
        );
        let plan = plan(&req, Some(&p)).unwrap();
        let a = &plan[1];
        let args = &a.cni_args;
        assert_eq!(args.get("IP"), Some("10.9.0.7/24"));
        assert_eq!(args.get("MAC"), Some("02:00:00:00:00:07"));
        assert_eq!(args.get("K8S_POD_NAME"), Some("p"));
        assert_eq!(args.get("IgnoreUnknown"), Some("1"));
        assert_eq!(a.runtime_config["ips"], json!(["10.9.0.7/24"]));
        assert_eq!(a.runtime_config["mac"], json!("02:00:00:00:00:07"));
        assert_eq!(a.conf.plugins[0]["args"]["cni"]["note"], json!("x"));
        // The cluster network gets none of it.
        assert!(!plan[0].runtime_config.contains_key("ips"));
    }

    /// A NAD `default/<name>` of the device-plugin resource `resource`.
    fn resource_nad(name: &str, resource: &str) -> NetworkAttachmentDefinition {
        let mut nad = nad("default", name, "unused");
        nad.spec.config = json!({"cniVersion": "1.0.0", "type": "host-device",
            "ipam": {"type": "static"}})
        .to_string();
        nad.metadata.annotations = Some(
            [(
                nad_crd::RESOURCE_NAME_ANNOTATION.to_string(),
                resource.to_string(),
            )]
            .into(),
        );
        nad
    }

    /// The plan of pod `p` (UID `uid-p`), whose devices are in a checkpoint only (no
    /// PodResources socket), with `extra` NADs.
    fn device_plan(
        networks: &str,
        extra: Vec<NetworkAttachmentDefinition>,
    ) -> Result<Vec<Attachment>, Error> {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = dir.path().join("kubelet_internal_checkpoint");
        let entry = |resource: &str, ids: &[&str]| {
            json!({"PodUID": "uid-p", "ContainerName": "app", "ResourceName": resource,
                   "DeviceIDs": {"-1": ids}, "AllocResp": ""})
        };
        let file = json!({"Data": {"PodDeviceEntries": [
            entry("example.com/vf", &["0000:81:00.3", "0000:81:00.2"]),
            entry("example.com/vhost", &["vhu0"])],
            "RegisteredDevices": {}}, "Checksum": 0});
        std::fs::write(&checkpoint, file.to_string()).unwrap();
        let req = request(
            json!({"podResourcesSocket": dir.path().join("absent.sock"),
                   "deviceCheckpoint": checkpoint,
                   "deviceInfoDir": "/run/devinfo"}),
            "K8S_POD_NAMESPACE=default;K8S_POD_NAME=p;K8S_POD_UID=uid-p",
        );
        let conf = MetaConf::load(&req)?;
        let mut all = nads();
        all.extend(extra);
        Ok(build(
            &conf,
            &req,
            &Source::fixed(&conf, all),
            Some(&pod(networks)),
        )?)
    }

    #[test]
    fn a_resource_name_gives_each_nad_the_next_allocated_device() {
        let plan = device_plan(
            r#"[{"name": "data-a"}, {"name": "data-b"}, {"name": "vhost"},
                {"name": "data-c", "deviceID": "0000:82:00.7"}]"#,
            vec![
                resource_nad("data-a", "example.com/vf"),
                resource_nad("data-b", "example.com/vf"),
                resource_nad("vhost", "example.com/vhost"),
                resource_nad("data-c", "example.com/vf"),
            ],
        )
        .unwrap();
        let ids: Vec<Option<&str>> = plan
            .iter()
            .map(|a| a.device.as_ref().map(|d| d.id.as_str()))
            .collect();
        // Sorted as Multus sorts them; a selection's deviceID wins and takes none.
        assert_eq!(
            ids,
            [
                None,
                Some("0000:81:00.2"),
                Some("0000:81:00.3"),
                Some("vhu0"),
                Some("0000:82:00.7")
            ]
        );
        let a = &plan[1];
        assert_eq!(a.conf.plugins[0]["deviceID"], json!("0000:81:00.2"));
        assert_eq!(a.conf.plugins[0]["pciBusID"], json!("0000:81:00.2"));
        assert_eq!(a.runtime_config["deviceID"], json!("0000:81:00.2"));
        assert_eq!(
            a.runtime_config["CNIDeviceInfoFile"],
            json!("/run/devinfo/cni/default-data-a-c1_net1")
        );
        let device = a.device.as_ref().unwrap();
        assert_eq!(device.resource.as_deref(), Some("example.com/vf"));
        assert_eq!(
            device.dp_info_file.as_deref(),
            Some(Path::new(
                "/run/devinfo/dp/example.com-vf-0000:81:00.2-device.json"
            ))
        );
        assert_eq!(plan[4].device.as_ref().unwrap().dp_info_file, None);
        assert!(!plan[0].conf.plugins[0].contains_key("deviceID"));
    }

    #[test]
    fn more_nads_than_devices_is_code_7_naming_the_network_and_resource() {
        let e = device_plan(
            r#"[{"name": "vhost"}, {"name": "vhost2"}]"#,
            vec![
                resource_nad("vhost", "example.com/vhost"),
                resource_nad("vhost2", "example.com/vhost"),
            ],
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(e.msg.contains("default/vhost2"), "{e:?}");
        assert!(e.msg.contains("example.com/vhost"), "{e:?}");
        assert!(e.details.contains("has 1 devices"), "{e:?}");
    }

    #[test]
    fn no_kubelet_and_no_checkpoint_is_code_11_saying_both() {
        let dir = tempfile::tempdir().unwrap();
        let req = request(
            json!({"podResourcesSocket": dir.path().join("absent.sock"),
                   "deviceCheckpoint": dir.path().join("absent")}),
            "K8S_POD_NAMESPACE=default;K8S_POD_NAME=p;K8S_POD_UID=uid-p",
        );
        let conf = MetaConf::load(&req).unwrap();
        let mut all = nads();
        all.push(resource_nad("data-a", "example.com/vf"));
        let e: Error = build(
            &conf,
            &req,
            &Source::fixed(&conf, all),
            Some(&pod("data-a")),
        )
        .unwrap_err()
        .into();
        assert_eq!(e.code, ErrorCode::TRY_AGAIN_LATER);
        assert!(e.details.contains("socket does not exist"), "{e:?}");
        assert!(e.details.contains("absent"), "{e:?}");
    }

    #[test]
    fn one_default_route_per_family() {
        let req = request(json!({}), "");
        let p = pod(r#"[{"name": "net-a", "default-route": ["10.9.0.1"]},
                {"name": "net-b", "default-route": ["10.9.0.1"]}]"#);
        let e = plan(&req, Some(&p)).unwrap_err();
        assert!(e.msg.contains("default-route"), "{e:?}");
        assert!(e.details.contains("default/net-a"), "{e:?}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Any annotation text: a refusal reaches the runtime as code 7 naming the
        /// annotation, the entry and field at fault where there is one, and the value.
        #[test]
        fn any_annotation_refusal_is_a_cni_error_naming_where_it_is(value in ".{0,60}") {
            let refusals = [
                (NETWORKS_ANNOTATION, parse_networks_annotation(&value, "default").err()),
                (
                    DEFAULT_NETWORK_ANNOTATION,
                    parse_default_network_annotation(&value, "kube-system").err(),
                ),
            ];
            for (annotation, refusal) in refusals {
                let Some(refusal) = refusal else { continue };
                let (index, field) = (refusal.index(), refusal.field().map(str::to_owned));
                let offending = format!("{:?}", refusal.value());
                let e = Error::from(selection_error(annotation, refusal));
                proptest::prop_assert_eq!(e.code, ErrorCode::INVALID_NETWORK_CONFIG);
                proptest::prop_assert!(e.msg.contains(annotation), "{}", e.msg);
                proptest::prop_assert!(e.msg.contains(&offending), "{}", e.msg);
                if let Some(index) = index {
                    let entry = format!("entry {index}");
                    proptest::prop_assert!(e.msg.contains(&entry), "{}", e.msg);
                }
                if let Some(field) = field {
                    proptest::prop_assert!(e.msg.contains(&field), "{}", e.msg);
                }
            }
        }
    }
}
