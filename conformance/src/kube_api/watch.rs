//! Watches as kube-apiserver serves them (`GET <collection>?watch=true`): from
//! `resourceVersion` (unset or `0`: the current objects first, each as `ADDED`), every
//! later write to the collection that `fieldSelector` selects, as one JSON event per line
//! (`{"type": "ADDED" | "MODIFIED" | "DELETED", "object": ...}`), and, with
//! `allowWatchBookmarks=true`, `BOOKMARK` events carrying only the latest
//! `resourceVersion`. The server ends the watch after `timeoutSeconds` (default 1800 s, as
//! the real server's `--min-request-timeout` gives).

use std::time::Duration;

use serde_json::{json, Value};

use super::field_selector::FieldSelector;
use super::query::Query;
use super::store::{Kind, Store};

/// The real server's default bound of a watch without `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// Whether a request is a watch.
pub(crate) fn requested(query: Option<&str>) -> bool {
    Query::parse(query).flag("watch")
}

/// One watch, as asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Watch {
    kind: Kind,
    namespace: Option<String>,
    selector: FieldSelector,
    /// `None`: start with the current objects.
    from: Option<u64>,
    /// `allowWatchBookmarks`.
    pub(crate) bookmarks: bool,
    /// When the server ends the watch.
    pub(crate) timeout: Duration,
}

impl Watch {
    /// The watch of collection `kind`/`namespace` that `query` asks for; the message of a
    /// 400 when a parameter is wrong.
    pub(crate) fn parse(
        kind: Kind,
        namespace: Option<&str>,
        query: Option<&str>,
    ) -> Result<Watch, String> {
        let query = Query::parse(query);
        let selector = FieldSelector::parse(query.get("fieldSelector").unwrap_or(""))?;
        let from = match query.get("resourceVersion").unwrap_or("") {
            "" | "0" => None,
            rv => Some(
                rv.parse()
                    .map_err(|_| format!("invalid resourceVersion {rv:?}"))?,
            ),
        };
        let timeout = match query.get("timeoutSeconds") {
            None => DEFAULT_TIMEOUT,
            Some(s) => Duration::from_secs(
                s.parse()
                    .map_err(|_| format!("invalid timeoutSeconds {s:?}"))?,
            ),
        };
        Ok(Watch {
            kind,
            namespace: namespace.map(str::to_string),
            selector,
            from,
            bookmarks: query.flag("allowWatchBookmarks"),
            timeout,
        })
    }

    /// The first events, and the revision they bring the watch to.
    pub(crate) fn start(&self, store: &Store) -> (Vec<Value>, u64) {
        match self.from {
            Some(revision) => self.since(store, revision),
            None => {
                let events = store
                    .objects(self.kind, self.namespace.as_deref())
                    .into_iter()
                    .filter(|object| self.selector.selects(object))
                    .map(|object| json!({"type": "ADDED", "object": object}))
                    .collect();
                (events, store.revision())
            }
        }
    }

    /// The events of the writes after `revision`, and the revision of the last write.
    pub(crate) fn since(&self, store: &Store, revision: u64) -> (Vec<Value>, u64) {
        let events = store
            .changes_since(revision)
            .iter()
            .filter(|c| c.kind == self.kind)
            .filter(|c| self.namespace.as_ref().is_none_or(|ns| *ns == c.namespace))
            .filter(|c| self.selector.selects(&c.object))
            .map(|c| json!({"type": c.change.as_str(), "object": c.object}))
            .collect();
        (events, store.revision())
    }

    /// A `BOOKMARK` at `revision`: an object of the watched kind with nothing but its
    /// `resourceVersion`, as the real server sends it.
    pub(crate) fn bookmark(&self, revision: u64) -> Value {
        json!({"type": "BOOKMARK", "object": {
            "kind": self.kind.kind(),
            "apiVersion": self.kind.api_version(),
            "metadata": {"resourceVersion": revision.to_string()},
        }})
    }
}

#[cfg(test)]
mod tests {
    use super::{requested, Watch};
    use crate::kube_api::store::{Kind, Store};
    use serde_json::json;

    #[test]
    fn events_from_a_revision_and_from_now() {
        let mut store = Store::default();
        let on = |node: &str, name: &str| json!({"metadata": {"name": name}, "spec": {"nodeName": node}});
        store.create(Kind::Pod, on("n1", "a"));
        store.create(Kind::Pod, on("n2", "b"));
        store.create(Kind::Nad, json!({"metadata": {"name": "x"}}));
        assert!(requested(Some("watch=true&resourceVersion=0")));
        assert!(!requested(Some("limit=500")));
        let watch = Watch::parse(
            Kind::Pod,
            None,
            Some("watch=1&fieldSelector=spec.nodeName%3Dn1&allowWatchBookmarks=true"),
        )
        .unwrap();
        assert!(watch.bookmarks);
        let (events, revision) = watch.start(&store);
        assert_eq!(revision, 3);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0]["type"], "ADDED");
        assert_eq!(events[0]["object"]["metadata"]["name"], "a");

        let mut a = store.get(Kind::Pod, "default", "a").unwrap().clone();
        a["metadata"]["labels"] = json!({"x": "y"});
        store.put(Kind::Pod, "default", "a", a);
        store.remove(Kind::Pod, "default", "b");
        store.remove(Kind::Pod, "default", "a");
        let (events, revision) = watch.since(&store, 3);
        let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["MODIFIED", "DELETED"]);
        assert_eq!(revision, 6);
        assert_eq!(events[1]["object"]["metadata"]["resourceVersion"], "6");

        let from = Watch::parse(Kind::Pod, Some("default"), Some("resourceVersion=4")).unwrap();
        let (events, _) = from.start(&store);
        assert_eq!(events.len(), 2, "b and a deleted after 4");
        assert_eq!(
            from.bookmark(6)["object"]["metadata"]["resourceVersion"],
            "6"
        );
        assert!(Watch::parse(Kind::Pod, None, Some("resourceVersion=x")).is_err());
        assert!(Watch::parse(Kind::Pod, None, Some("fieldSelector=spec.x%3D1")).is_err());
    }
}
