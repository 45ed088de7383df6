//! `meta-cni explain`: the plan an ADD would run for a netconf and a pod, touching nothing
//! (no kernel, no cache, no IPAM; in Kubernetes mode only reads of the API): each
//! attachment's network, interface and delegates with the netconf each would get (after
//! capability filtering), what would refuse to run and why, or the plan's own refusal.

use std::path::{Path, PathBuf};

use cni::chain::Chain;
use cni::{CniArgs, Command, Error, Invocation, Request, Version};
use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::delegates::Delegates;

use super::config::MetaConf;
use super::plan_for_add;
use super::pod_object::PodObject;
use super::source::Source;

/// The plan of one ADD, or why ADD would refuse it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Explained {
    /// The attachments, in the order ADD runs them.
    pub(crate) attachments: Vec<Planned>,
    /// Why ADD would fail before making anything (code and message), if it would.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) refused: Option<String>,
}

/// One attachment of the plan.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Planned {
    /// The network (`<namespace>/<nad>` for a NAD).
    pub(crate) network: String,
    /// The interface in the pod.
    pub(crate) interface: String,
    /// Whether it is the cluster network.
    pub(crate) cluster: bool,
    /// Each delegate's netconf as it would receive it.
    pub(crate) delegates: Vec<Map<String, Value>>,
    /// Why a delegate of it would not run (unknown `cniVersion`, a plugin not installed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) problems: Vec<String>,
}

/// The meta plugin's netconf in `text`: the object itself, or the `meta-cni` plugin of a
/// conflist with the list's `name` and `cniVersion`, as libcni would hand it over.
pub(crate) fn meta_netconf(text: &str) -> Result<Map<String, Value>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut object) = value else {
        return Err("not a JSON object".into());
    };
    let Some(plugins) = object.remove("plugins") else {
        return Ok(object);
    };
    let mut plugin = plugins
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .find(|p| p.get("type").and_then(Value::as_str) == Some("meta-cni"))
        .cloned()
        .ok_or("plugins: no plugin of type meta-cni")?;
    for key in ["name", "cniVersion"] {
        if let Some(v) = object.get(key) {
            plugin.insert(key.into(), v.clone());
        }
    }
    Ok(plugin)
}

/// The request an ADD of `pod` (namespace, name) with `netconf` would be, for planning only:
/// no namespace is opened.
pub(crate) fn request(
    netconf: Map<String, Value>,
    pod: Option<(&str, &str)>,
    cni_path: Vec<PathBuf>,
) -> Result<Request, Error> {
    let mut args = CniArgs::default();
    if let Some((namespace, name)) = pod {
        args.set("K8S_POD_NAMESPACE", namespace);
        args.set("K8S_POD_NAME", name);
    }
    let inv = Invocation {
        command: Command::Add,
        container_id: "explain".into(),
        netns: Some(PathBuf::from("/proc/self/ns/net")),
        ifname: "eth0".into(),
        args,
        path: cni_path,
    };
    Request::from_invocation(&inv, netconf, &Version::ALL)
}

/// A Pod object from a YAML or JSON file: its namespace (default `default`), name and what
/// the plan needs of it.
pub(crate) fn pod_file(path: &Path) -> Result<PodObject, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let pod: Pod =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: not a Pod: {e}", path.display()))?;
    let namespace = pod
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = pod
        .metadata
        .name
        .clone()
        .ok_or_else(|| format!("{}: the Pod has no metadata.name", path.display()))?;
    Ok(PodObject::of(&namespace, &name, pod))
}

/// The plan of an ADD of `req` for `pod`.
pub(crate) fn explain(req: &Request, pod: Option<&PodObject>) -> Result<Explained, Error> {
    let conf = MetaConf::load(req)?;
    let source = Source::new(&conf);
    let attachments = match plan_for_add(&conf, req, &source, pod) {
        Ok(attachments) => attachments,
        Err(e) => {
            let e = Error::from(e);
            return Ok(Explained {
                attachments: Vec::new(),
                refused: Some(format!("code {}: {}: {}", e.code.0, e.msg, e.details)),
            });
        }
    };
    let delegates = Delegates::new(&conf.bin_dir, &req.inv.path);
    let mut planned = Vec::with_capacity(attachments.len());
    for att in &attachments {
        let mut problems = Vec::new();
        if let Err(e) = att.check_runnable(&delegates) {
            let e = Error::from(e);
            problems.push(format!("code {}: {}: {}", e.code.0, e.msg, e.details));
        }
        let configs = match Chain::new(&att.conf) {
            Ok(chain) => (0..att.conf.plugins.len())
                .map(|i| chain.plugin_config(i, None, &att.runtime_config, &[]))
                .collect::<Result<Vec<_>, _>>()?,
            // Refused above, by check_runnable: show the delegates as written.
            Err(_) => att.conf.plugins.clone(),
        };
        planned.push(Planned {
            network: att.network.clone(),
            interface: att.ifname.clone(),
            cluster: att.cluster,
            delegates: configs,
            problems,
        });
    }
    Ok(Explained {
        attachments: planned,
        refused: None,
    })
}
