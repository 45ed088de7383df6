//! The objects the stand-in serves, by kind, namespace and name, with one revision counter
//! for all of them (etcd's revision: every write gets the next `resourceVersion`), and the
//! history of every write, which watches replay from any revision (nothing is compacted, so
//! no watch is ever told its revision is too old).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Notify;

use super::field_selector::FieldSelector;

use serde_json::{json, Map, Value};

/// The kinds of object the stand-in serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// `v1` `Pod`.
    Pod,
    /// `k8s.cni.cncf.io/v1` `NetworkAttachmentDefinition`.
    Nad,
    /// `v1` `Namespace` (cluster-scoped: stored under the namespace `""`).
    Namespace,
    /// `k8s.cni.cncf.io/v1beta1` `MultiNetworkPolicy`.
    MultiNetworkPolicy,
    /// `resource.k8s.io/v1` `ResourceClaim` (DRA), with a `status` subresource.
    ResourceClaim,
    /// `resource.k8s.io/v1` `ResourceSlice` (DRA; cluster-scoped).
    ResourceSlice,
}

impl Kind {
    /// The resource name in URLs.
    pub(crate) fn plural(self) -> &'static str {
        match self {
            Kind::Pod => "pods",
            Kind::Nad => "network-attachment-definitions",
            Kind::Namespace => "namespaces",
            Kind::MultiNetworkPolicy => "multi-networkpolicies",
            Kind::ResourceClaim => "resourceclaims",
            Kind::ResourceSlice => "resourceslices",
        }
    }

    /// The API group; `None` for the core group.
    pub(crate) fn group(self) -> Option<&'static str> {
        match self {
            Kind::Pod | Kind::Namespace => None,
            Kind::Nad | Kind::MultiNetworkPolicy => Some("k8s.cni.cncf.io"),
            Kind::ResourceClaim | Kind::ResourceSlice => Some("resource.k8s.io"),
        }
    }

    /// `apiVersion` of objects and lists of this kind.
    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Kind::Pod | Kind::Namespace => "v1",
            Kind::Nad => "k8s.cni.cncf.io/v1",
            Kind::MultiNetworkPolicy => "k8s.cni.cncf.io/v1beta1",
            Kind::ResourceClaim | Kind::ResourceSlice => "resource.k8s.io/v1",
        }
    }

    /// `kind` of one object.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Kind::Pod => "Pod",
            Kind::Nad => "NetworkAttachmentDefinition",
            Kind::Namespace => "Namespace",
            Kind::MultiNetworkPolicy => "MultiNetworkPolicy",
            Kind::ResourceClaim => "ResourceClaim",
            Kind::ResourceSlice => "ResourceSlice",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub(crate) fn namespaced(self) -> bool {
        !matches!(self, Kind::Namespace | Kind::ResourceSlice)
    }

    /// Whether objects of this kind have a `status` subresource.
    pub(crate) fn has_status(self) -> bool {
        matches!(self, Kind::Pod | Kind::ResourceClaim)
    }

    /// The resource as error messages name it: `pods`,
    /// `network-attachment-definitions.k8s.cni.cncf.io`.
    pub(crate) fn qualified(self) -> String {
        match self.group() {
            None => self.plural().to_owned(),
            Some(group) => format!("{}.{group}", self.plural()),
        }
    }
}

/// Key of one stored object.
type Key = (Kind, String, String);

/// What one write did, as a watch event names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChangeType {
    /// `ADDED`.
    Added,
    /// `MODIFIED`.
    Modified,
    /// `DELETED`.
    Deleted,
}

impl ChangeType {
    /// The event's `type`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChangeType::Added => "ADDED",
            ChangeType::Modified => "MODIFIED",
            ChangeType::Deleted => "DELETED",
        }
    }
}

/// One write, as watches see it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    /// The revision it made.
    pub(crate) revision: u64,
    /// The object's kind.
    pub(crate) kind: Kind,
    /// Its namespace (`""` when cluster-scoped).
    pub(crate) namespace: String,
    /// What happened.
    pub(crate) change: ChangeType,
    /// The object after the write (for a deletion, as it was, at the deletion's revision).
    pub(crate) object: Value,
}

/// Every stored object, the revision of the last write, and every write.
#[derive(Debug, Default)]
pub(crate) struct Store {
    objects: BTreeMap<Key, Value>,
    revision: u64,
    uids: u64,
    history: Vec<Change>,
    /// Woken on every write.
    changed: Arc<Notify>,
}

impl Store {
    /// Stores `object` as if it had just been created, replacing any object of that kind,
    /// namespace and name: `apiVersion` and `kind` are set, `metadata.namespace` defaults to
    /// `default`, `uid` and `creationTimestamp` are kept when present and filled in
    /// otherwise, and `resourceVersion` is the next revision. Returns the stored object.
    ///
    /// Panics when `object` is not an object or has no `metadata.name`: test data is wrong.
    pub(crate) fn create(&mut self, kind: Kind, object: Value) -> Value {
        let Value::Object(mut object) = object else {
            panic!("a {} must be a JSON object, not {object}", kind.kind());
        };
        let name = object
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("a {} needs metadata.name", kind.kind()))
            .to_owned();
        object.insert("apiVersion".into(), kind.api_version().into());
        object.insert("kind".into(), kind.kind().into());
        // Kubernetes serialises apiVersion and kind first.
        let mut ordered = Map::new();
        for key in ["apiVersion", "kind"] {
            if let Some(v) = object.shift_remove(key) {
                ordered.insert(key.into(), v);
            }
        }
        ordered.extend(object);
        let mut object = Value::Object(ordered);

        let metadata = &mut object["metadata"];
        if kind.namespaced() && metadata["namespace"].as_str().is_none() {
            metadata["namespace"] = "default".into();
        }
        if metadata["uid"].as_str().is_none() {
            self.uids += 1;
            metadata["uid"] = new_uid(self.uids).into();
        }
        if metadata["creationTimestamp"].as_str().is_none() {
            metadata["creationTimestamp"] = creation_timestamp().into();
        }
        let namespace = metadata["namespace"].as_str().unwrap_or("").to_owned();
        self.put(kind, &namespace, &name, object)
    }

    /// Replaces a stored object with `object` at the next revision; returns what was stored.
    pub(crate) fn put(&mut self, kind: Kind, namespace: &str, name: &str, object: Value) -> Value {
        let mut object = object;
        self.revision += 1;
        object["metadata"]["resourceVersion"] = self.revision.to_string().into();
        let replaced = self
            .objects
            .insert((kind, namespace.into(), name.into()), object.clone());
        let change = match replaced {
            Some(_) => ChangeType::Modified,
            None => ChangeType::Added,
        };
        self.record(kind, namespace, change, object.clone());
        object
    }

    fn record(&mut self, kind: Kind, namespace: &str, change: ChangeType, object: Value) {
        self.history.push(Change {
            revision: self.revision,
            kind,
            namespace: namespace.into(),
            change,
            object,
        });
        self.changed.notify_waiters();
    }

    /// The revision of the last write.
    pub(crate) fn revision(&self) -> u64 {
        self.revision
    }

    /// Every write after `revision`, in order.
    pub(crate) fn changes_since(&self, revision: u64) -> &[Change] {
        let first = self.history.partition_point(|c| c.revision <= revision);
        &self.history[first..]
    }

    /// Every stored object of `kind`, in `namespace` or in all, in list order.
    pub(crate) fn objects(&self, kind: Kind, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|((k, ns, _), _)| *k == kind && namespace.is_none_or(|want| want == ns))
            .map(|(_, object)| object)
            .collect()
    }

    /// What wakes watches on every write.
    pub(crate) fn changed(&self) -> Arc<Notify> {
        Arc::clone(&self.changed)
    }

    /// The stored object, if any.
    pub(crate) fn get(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Value> {
        self.objects.get(&(kind, namespace.into(), name.into()))
    }

    /// Removes an object; returns it if it existed. Deleting is a write: it takes a revision.
    pub(crate) fn remove(&mut self, kind: Kind, namespace: &str, name: &str) -> Option<Value> {
        let removed = self.objects.remove(&(kind, namespace.into(), name.into()));
        if let Some(object) = &removed {
            self.revision += 1;
            let mut gone = object.clone();
            gone["metadata"]["resourceVersion"] = self.revision.to_string().into();
            self.record(kind, namespace, ChangeType::Deleted, gone);
        }
        removed
    }

    /// A `<Kind>List` of the objects of `kind` that `selector` selects, in `namespace` or
    /// in all namespaces, sorted by namespace and name as the real server returns them.
    pub(crate) fn list_selected(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        selector: &FieldSelector,
    ) -> Value {
        let items: Vec<Value> = self
            .objects(kind, namespace)
            .into_iter()
            .filter(|object| selector.selects(object))
            .cloned()
            .collect();
        json!({
            "apiVersion": kind.api_version(),
            "kind": format!("{}List", kind.kind()),
            "metadata": { "resourceVersion": self.revision.to_string() },
            "items": items,
        })
    }
}

/// The current time as Kubernetes writes a `creationTimestamp`: RFC 3339 in UTC, whole
/// seconds, e.g. `2025-03-14T09:26:53Z`.
fn creation_timestamp() -> String {
    let now = jiff::Timestamp::now();
    // Truncated to the second: a whole-second timestamp prints with no fraction.
    jiff::Timestamp::from_second(now.as_second())
        .expect("the current second is a valid timestamp")
        .to_string()
}

/// A version-4-shaped UUID that is unique within the process.
fn new_uid(serial: u64) -> String {
    let pid = u64::from(std::process::id());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        nanos,
        pid & 0xffff,
        (pid >> 16) & 0xfff,
        serial >> 48 & 0xfff,
        serial & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::{FieldSelector, Kind, Store};
    use serde_json::json;

    #[test]
    fn create_fills_metadata_and_counts_revisions() {
        let mut store = Store::default();
        let pod = store.create(Kind::Pod, json!({"metadata": {"name": "p"}, "spec": {}}));
        assert_eq!(pod["apiVersion"], "v1");
        assert_eq!(pod["kind"], "Pod");
        assert_eq!(pod["metadata"]["namespace"], "default");
        assert_eq!(pod["metadata"]["resourceVersion"], "1");
        assert!(
            pod["metadata"]["uid"].as_str().unwrap().len() == 36,
            "{pod}"
        );
        // RFC 3339 in UTC, whole seconds, as kube-apiserver writes it.
        let created = pod["metadata"]["creationTimestamp"].as_str().unwrap();
        let parsed: jiff::Timestamp = created.parse().unwrap();
        assert_eq!(parsed.subsec_nanosecond(), 0, "{created}");
        assert!(created.len() == 20 && created.ends_with('Z'), "{created}");
        let keys: Vec<&String> = pod.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);

        let nad = store.create(
            Kind::Nad,
            json!({"metadata": {"name": "n", "namespace": "x", "uid": "u"}}),
        );
        assert_eq!(nad["metadata"]["uid"], "u");
        assert_eq!(nad["metadata"]["resourceVersion"], "2");
        assert_eq!(
            store.list_selected(Kind::Nad, None, &FieldSelector::default())["metadata"]
                ["resourceVersion"],
            "2"
        );
        assert_eq!(
            store.list_selected(Kind::Nad, Some("default"), &FieldSelector::default())["items"],
            json!([])
        );
        assert_eq!(
            store.list_selected(Kind::Pod, Some("default"), &FieldSelector::default())["items"][0],
            pod
        );
    }
}
