//! Which resource a request path names, the way kube-apiserver lays its paths out.

use super::store::Kind;

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// A collection: `.../namespaces/{ns}/{plural}`, or every namespace's (`.../{plural}`).
    Collection {
        /// The kind listed.
        kind: Kind,
        /// `None` for the cluster-wide list.
        namespace: Option<&'a str>,
    },
    /// One object, or its `status` subresource.
    Object {
        /// The object's kind.
        kind: Kind,
        /// Its namespace (`""` for a cluster-scoped kind).
        namespace: &'a str,
        /// Its name.
        name: &'a str,
        /// True for `.../{name}/status`.
        status: bool,
    },
}

/// The group-version prefix (as path segments) under which `kind` is served.
fn prefix(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Pod | Kind::Namespace => &["api", "v1"],
        Kind::Nad => &["apis", "k8s.cni.cncf.io", "v1"],
        Kind::MultiNetworkPolicy => &["apis", "k8s.cni.cncf.io", "v1beta1"],
        Kind::ResourceClaim | Kind::ResourceSlice => &["apis", "resource.k8s.io", "v1"],
    }
}

/// Parses a request path; `None` when the server has nothing there.
pub(crate) fn parse(path: &str) -> Option<Target<'_>> {
    let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return None;
    }
    [
        Kind::Pod,
        Kind::Nad,
        Kind::Namespace,
        Kind::MultiNetworkPolicy,
        Kind::ResourceClaim,
        Kind::ResourceSlice,
    ]
    .into_iter()
    .find_map(|kind| parse_kind(kind, &segments))
}

fn parse_kind<'a>(kind: Kind, segments: &[&'a str]) -> Option<Target<'a>> {
    let rest = segments.strip_prefix(prefix(kind))?;
    let plural = kind.plural();
    if !kind.namespaced() {
        return match *rest {
            [p] if p == plural => Some(Target::Collection {
                kind,
                namespace: None,
            }),
            [p, name] if p == plural => Some(Target::Object {
                kind,
                namespace: "",
                name,
                status: false,
            }),
            _ => None,
        };
    }
    match *rest {
        [p] if p == plural => Some(Target::Collection {
            kind,
            namespace: None,
        }),
        ["namespaces", namespace, p] if p == plural => Some(Target::Collection {
            kind,
            namespace: Some(namespace),
        }),
        ["namespaces", namespace, p, name] if p == plural => Some(Target::Object {
            kind,
            namespace,
            name,
            status: false,
        }),
        // NetworkAttachmentDefinitions have no status subresource.
        ["namespaces", namespace, p, name, "status"] if p == plural && kind.has_status() => {
            Some(Target::Object {
                kind,
                namespace,
                name,
                status: true,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, Kind, Target};

    #[test]
    fn paths() {
        assert_eq!(
            parse("/api/v1/namespaces/default/pods/p1"),
            Some(Target::Object {
                kind: Kind::Pod,
                namespace: "default",
                name: "p1",
                status: false
            })
        );
        assert_eq!(
            parse("/api/v1/namespaces/default/pods/p1/status"),
            Some(Target::Object {
                kind: Kind::Pod,
                namespace: "default",
                name: "p1",
                status: true
            })
        );
        assert_eq!(
            parse("/api/v1/namespaces/tenant-a"),
            Some(Target::Object {
                kind: Kind::Namespace,
                namespace: "",
                name: "tenant-a",
                status: false
            })
        );
        assert_eq!(
            parse("/api/v1/namespaces"),
            Some(Target::Collection {
                kind: Kind::Namespace,
                namespace: None
            })
        );
        assert_eq!(
            parse("/apis/k8s.cni.cncf.io/v1beta1/namespaces/default/multi-networkpolicies"),
            Some(Target::Collection {
                kind: Kind::MultiNetworkPolicy,
                namespace: Some("default")
            })
        );
        assert_eq!(
            parse("/apis/k8s.cni.cncf.io/v1/network-attachment-definitions"),
            Some(Target::Collection {
                kind: Kind::Nad,
                namespace: None
            })
        );
        assert_eq!(
            parse("/apis/k8s.cni.cncf.io/v1/namespaces/kube-system/network-attachment-definitions"),
            Some(Target::Collection {
                kind: Kind::Nad,
                namespace: Some("kube-system")
            })
        );
        assert_eq!(
            parse("/apis/resource.k8s.io/v1/namespaces/default/resourceclaims/c/status"),
            Some(Target::Object {
                kind: Kind::ResourceClaim,
                namespace: "default",
                name: "c",
                status: true
            })
        );
        assert_eq!(
            parse("/apis/resource.k8s.io/v1/resourceslices"),
            Some(Target::Collection {
                kind: Kind::ResourceSlice,
                namespace: None
            })
        );
        for nothing in [
            "",
            "/",
            "/api",
            "/api/v1",
            "/api/v1/namespaces/default/pods/p1/log",
            "/api/v1/namespaces//pods/p1",
            "/api/v1/namespaces/default/pods/p1/",
            "/apis/k8s.cni.cncf.io/v1/namespaces/default/network-attachment-definitions/n/status",
            "/apis/k8s.cni.cncf.io/v2/network-attachment-definitions",
            "/api/v1/network-attachment-definitions",
        ] {
            assert_eq!(parse(nothing), None, "{nothing:?}");
        }
    }
}
