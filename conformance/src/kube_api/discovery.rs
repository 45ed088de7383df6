//! API discovery, as kube-apiserver serves it unaggregated (`/api`, `/apis`, `/api/v1`,
//! `/apis/{group}/{version}`): the stand-in's own kinds, and any others a test declares so
//! that a client such as `kubectl apply --dry-run=client` can map its manifests.

use std::collections::BTreeSet;

use serde_json::{json, Value};

/// A kind the stand-in lists in discovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiResource {
    /// The API group; `""` for the core group.
    pub group: &'static str,
    /// The version, e.g. `v1`.
    pub version: &'static str,
    /// The plural resource name in paths, e.g. `daemonsets`.
    pub plural: &'static str,
    /// The kind, e.g. `DaemonSet`.
    pub kind: &'static str,
    /// Whether objects of this kind live in a namespace.
    pub namespaced: bool,
}

/// The kinds the stand-in serves objects of.
pub(crate) const SERVED: [ApiResource; 6] = [
    ApiResource {
        group: "",
        version: "v1",
        plural: "pods",
        kind: "Pod",
        namespaced: true,
    },
    ApiResource {
        group: "k8s.cni.cncf.io",
        version: "v1",
        plural: "network-attachment-definitions",
        kind: "NetworkAttachmentDefinition",
        namespaced: true,
    },
    ApiResource {
        group: "",
        version: "v1",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
    },
    ApiResource {
        group: "k8s.cni.cncf.io",
        version: "v1beta1",
        plural: "multi-networkpolicies",
        kind: "MultiNetworkPolicy",
        namespaced: true,
    },
    ApiResource {
        group: "resource.k8s.io",
        version: "v1",
        plural: "resourceclaims",
        kind: "ResourceClaim",
        namespaced: true,
    },
    ApiResource {
        group: "resource.k8s.io",
        version: "v1",
        plural: "resourceslices",
        kind: "ResourceSlice",
        namespaced: false,
    },
];

/// The discovery document at `path` for `kinds`; `None` if `path` is not a discovery path.
pub(crate) fn document(kinds: &[ApiResource], path: &str) -> Option<Value> {
    let group_versions: BTreeSet<(&str, &str)> =
        kinds.iter().map(|k| (k.group, k.version)).collect();
    let resources = |group: &str, version: &str| -> Vec<Value> {
        kinds
            .iter()
            .filter(|k| k.group == group && k.version == version)
            .map(|k| {
                json!({"name": k.plural, "singularName": k.kind.to_lowercase(),
                    "namespaced": k.namespaced, "kind": k.kind,
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]})
            })
            .collect()
    };
    match path.trim_end_matches('/') {
        "/api" => Some(json!({"kind": "APIVersions", "versions": ["v1"]})),
        "/apis" => Some(json!({"kind": "APIGroupList", "apiVersion": "v1",
            "groups": group_versions.iter().filter(|(g, _)| !g.is_empty()).map(|(g, v)| {
                let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                json!({"name": g, "versions": [gv], "preferredVersion": gv})
            }).collect::<Vec<_>>()})),
        "/api/v1" => Some(json!({"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": "v1", "resources": resources("", "v1")})),
        other => {
            let gv = other.strip_prefix("/apis/")?;
            let (group, version) = gv.split_once('/')?;
            group_versions.contains(&(group, version)).then(|| {
                json!({"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": gv, "resources": resources(group, version)})
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_and_resource_lists() {
        let apis = document(&SERVED, "/apis").unwrap();
        assert_eq!(apis["groups"][0]["name"], "k8s.cni.cncf.io");
        let core = document(&SERVED, "/api/v1").unwrap();
        assert_eq!(core["resources"][0]["kind"], "Pod");
        let nads = document(&SERVED, "/apis/k8s.cni.cncf.io/v1/").unwrap();
        assert_eq!(
            nads["resources"][0]["name"],
            "network-attachment-definitions"
        );
        assert_eq!(document(&SERVED, "/apis/apps/v1"), None);
        assert_eq!(document(&SERVED, "/api/v1/namespaces/default/pods"), None);
    }
}
