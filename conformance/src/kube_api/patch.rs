//! PATCH of a stored object: the patch types the server takes, and the rules kube-apiserver
//! applies around the patch itself (preconditions, immutable fields, subresources, no-op
//! writes).

use serde_json::Value;

use super::status;
use super::store::{Kind, Store};

/// `Content-Type`s taken by PATCH of a built-in kind. A strategic merge patch is applied as a
/// merge patch: the two agree on maps such as `metadata.annotations`, which is what the
/// stand-in is for.
const BUILT_IN_PATCH_TYPES: &[&str] = &[
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// `Content-Type`s taken by PATCH of a custom resource: kube-apiserver has no strategic
/// merge patch for those.
const CUSTOM_PATCH_TYPES: &[&str] = &["application/merge-patch+json"];

/// The patch types `kind` takes.
fn patch_types(kind: Kind) -> &'static [&'static str] {
    match kind.group() {
        None => BUILT_IN_PATCH_TYPES,
        Some(_) => CUSTOM_PATCH_TYPES,
    }
}

/// Which part of the object a PATCH may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subresource {
    /// The object itself: everything but `status`.
    Main,
    /// `.../status`: everything but `spec`, `metadata.ownerReferences` and
    /// `metadata.deletionTimestamp` (the pods/status strategy of kube-apiserver).
    Status,
}

/// Where a PATCH goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PatchTarget<'a> {
    /// The object's kind.
    pub(crate) kind: Kind,
    /// Its namespace.
    pub(crate) namespace: &'a str,
    /// Its name.
    pub(crate) name: &'a str,
    /// The object itself or its status.
    pub(crate) subresource: Subresource,
}

/// The media type of a `Content-Type` header value, without parameters, lowercased.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Applies a PATCH request; `Ok` holds the object as stored afterwards, `Err` a `Status`.
pub(crate) fn apply(
    store: &mut Store,
    target: PatchTarget<'_>,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Value, Value> {
    let PatchTarget {
        kind,
        namespace,
        name,
        subresource,
    } = target;
    let media = content_type.map(media_type).unwrap_or_default();
    let accepted = patch_types(kind);
    if !accepted.contains(&media.as_str()) {
        return Err(status::unsupported_media_type(accepted));
    }
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| status::bad_request(&format!("error decoding patch: {e}")))?;
    if !patch.is_object() {
        return Err(status::bad_request(
            "error decoding patch: a merge patch of an object must be a JSON object",
        ));
    }
    let old = store
        .get(kind, namespace, name)
        .ok_or_else(|| status::object_not_found(kind, name))?
        .clone();
    if let Some(wanted) = patch["metadata"]["resourceVersion"].as_str() {
        if Some(wanted) != old["metadata"]["resourceVersion"].as_str() {
            return Err(status::conflict(kind, name));
        }
    }

    let mut new = old.clone();
    json_patch::merge(&mut new, &patch);
    keep_server_fields(&mut new, &old, subresource);
    if new == old {
        // kube-apiserver skips the write of an unchanged object: no new resourceVersion.
        return Ok(old);
    }
    Ok(store.put(kind, namespace, name, new))
}

/// Undoes what a PATCH may not change, and drops maps it emptied (Go's `omitempty`).
fn keep_server_fields(new: &mut Value, old: &Value, subresource: Subresource) {
    for key in ["apiVersion", "kind"] {
        new[key] = old[key].clone();
    }
    let mut fixed = vec![
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "resourceVersion",
    ];
    match subresource {
        Subresource::Main => restore(new, old, "status"),
        Subresource::Status => {
            restore(new, old, "spec");
            fixed.extend(["ownerReferences", "deletionTimestamp"]);
        }
    }
    if !new["metadata"].is_object() {
        new["metadata"] = old["metadata"].clone();
    }
    for key in fixed {
        restore(&mut new["metadata"], &old["metadata"], key);
    }
    if let Some(metadata) = new["metadata"].as_object_mut() {
        for key in ["annotations", "labels"] {
            if metadata
                .get(key)
                .and_then(Value::as_object)
                .is_some_and(|m| m.is_empty())
            {
                metadata.shift_remove(key);
            }
        }
    }
}

/// Sets `new[key]` back to `old[key]`, absent if it was absent.
fn restore(new: &mut Value, old: &Value, key: &str) {
    let Some(new) = new.as_object_mut() else {
        return;
    };
    match old.get(key) {
        Some(value) => {
            new.insert(key.to_owned(), value.clone());
        }
        None => {
            new.shift_remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{apply, PatchTarget, Subresource};
    use crate::kube_api::store::{Kind, Store};
    use serde_json::{json, Value};

    const MERGE: Option<&str> = Some("application/merge-patch+json");

    fn store() -> Store {
        let mut store = Store::default();
        store.create(
            Kind::Pod,
            json!({
                "metadata": {"name": "p", "annotations": {"a": "1"}},
                "spec": {"nodeName": "n1"},
                "status": {"phase": "Pending"}
            }),
        );
        store
    }

    fn target(subresource: Subresource) -> PatchTarget<'static> {
        PatchTarget {
            kind: Kind::Pod,
            namespace: "default",
            name: "p",
            subresource,
        }
    }

    fn patch(store: &mut Store, sub: Subresource, ct: Option<&str>, body: Value) -> Value {
        apply(store, target(sub), ct, body.to_string().as_bytes()).unwrap_or_else(|e| e)
    }

    #[test]
    fn status_patch_changes_annotations_and_status_but_not_spec() {
        let mut store = store();
        let got = patch(
            &mut store,
            Subresource::Status,
            MERGE,
            json!({"metadata": {"annotations": {"b": "2"}, "uid": "x"},
                   "spec": {"nodeName": "evil"}, "status": {"phase": "Running"}}),
        );
        assert_eq!(got["metadata"]["annotations"], json!({"a": "1", "b": "2"}));
        assert_eq!(got["spec"]["nodeName"], "n1");
        assert_eq!(got["status"]["phase"], "Running");
        assert_ne!(got["metadata"]["uid"], "x");
        assert_eq!(got["metadata"]["resourceVersion"], "2");
    }

    #[test]
    fn main_patch_keeps_status() {
        let mut store = store();
        let got = patch(
            &mut store,
            Subresource::Main,
            Some("application/strategic-merge-patch+json; charset=utf-8"),
            json!({"status": {"phase": "Running"}, "metadata": {"labels": {"l": "v"}}}),
        );
        assert_eq!(got["status"]["phase"], "Pending");
        assert_eq!(got["metadata"]["labels"]["l"], "v");
    }

    #[test]
    fn deleting_the_last_annotation_drops_the_map_and_a_no_op_keeps_the_version() {
        let mut store = store();
        let body = json!({"metadata": {"annotations": {"a": null}}});
        let got = patch(&mut store, Subresource::Status, MERGE, body.clone());
        assert!(got["metadata"].get("annotations").is_none(), "{got}");
        assert_eq!(got["metadata"]["resourceVersion"], "2");
        let again = patch(&mut store, Subresource::Status, MERGE, body);
        assert_eq!(again["metadata"]["resourceVersion"], "2");
    }

    #[test]
    fn errors() {
        let mut store = store();
        let sub = Subresource::Status;
        let code = |v: Value| v["code"].as_u64().unwrap();
        assert_eq!(code(patch(&mut store, sub, None, json!({}))), 415);
        let json_type = Some("application/json");
        assert_eq!(code(patch(&mut store, sub, json_type, json!({}))), 415);
        assert_eq!(code(patch(&mut store, sub, MERGE, json!([1]))), 400);
        let stale = json!({"metadata": {"resourceVersion": "0", "annotations": {"x": "y"}}});
        assert_eq!(code(patch(&mut store, sub, MERGE, stale)), 409);
        let fresh = json!({"metadata": {"resourceVersion": "1", "annotations": {"x": "y"}}});
        assert_eq!(
            patch(&mut store, sub, MERGE, fresh)["metadata"]["resourceVersion"],
            "2"
        );
        let missing = PatchTarget {
            name: "nope",
            ..target(sub)
        };
        let err = apply(&mut store, missing, MERGE, b"{}").unwrap_err();
        assert_eq!(err["reason"], "NotFound");
    }
}
