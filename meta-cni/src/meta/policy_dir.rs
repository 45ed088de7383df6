//! Standalone mode's MultiNetworkPolicy store: `policyDir` (beside `nadDir`) holds
//! MultiNetworkPolicy, Pod and Namespace objects as the API would return them, one per
//! `.yaml`/`.yml`/`.json` file, in the directory itself or one level below it (e.g.
//! `<policyDir>/<namespace>/<name>.yaml`). Pods give the policies' selectors their labels and,
//! through `network-status`, their addresses; the pod being attached, when a Pod of its name
//! is there, its labels and container ports. Files are read as NAD files are: regular files
//! only, bounded, and named by path and position, never by content, when they do not decode.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Namespace, Pod};
use nad_crd::MultiNetworkPolicy;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::{NadFileError, NadFileRefusal};
use super::nad_dir::{read_regular_file, EXTENSIONS};
use super::policy_context::PolicyObjects;

const KINDS: &str = "MultiNetworkPolicy, Pod or Namespace";

/// A directory of policy objects.
#[derive(Debug, Clone)]
pub(crate) struct PolicyDir {
    dir: PathBuf,
}

impl PolicyDir {
    /// The store at `dir`; nothing is read yet.
    pub(crate) fn new(dir: &Path) -> PolicyDir {
        PolicyDir {
            dir: dir.to_path_buf(),
        }
    }

    /// The policies of `namespace`, and every namespace and pod; nothing when the directory
    /// does not exist.
    pub(crate) fn read(&self, namespace: &str) -> Result<PolicyObjects, NadFileError> {
        let mut objects = PolicyObjects::default();
        for path in files(&self.dir)? {
            let Some(text) = read_regular_file(&path)? else {
                continue;
            };
            let value = decode_yaml(&path, &text)?;
            match value.get("kind").and_then(Value::as_str) {
                Some("MultiNetworkPolicy") => {
                    let policy: MultiNetworkPolicy = typed(&path, value)?;
                    if policy.namespace() == namespace
                        || (policy.namespace().is_empty() && namespace == "default")
                    {
                        objects.policies.push(policy);
                    }
                }
                Some("Pod") => objects.pods.push(typed::<Pod>(&path, value)?),
                Some("Namespace") => objects.namespaces.push(typed::<Namespace>(&path, value)?),
                other => {
                    return Err(NadFileError::Refused {
                        path,
                        why: NadFileRefusal::Kind {
                            found: other.unwrap_or_default().to_owned(),
                            expected: KINDS,
                        },
                    })
                }
            }
        }
        // A pod of the directory without a namespace is in `default`, as the API defaults it.
        for pod in &mut objects.pods {
            pod.metadata
                .namespace
                .get_or_insert_with(|| "default".into());
        }
        Ok(objects)
    }
}

/// The object files of `dir` and of its subdirectories, sorted by path.
fn files(dir: &Path) -> Result<Vec<PathBuf>, NadFileError> {
    let mut found = Vec::new();
    for entry in list(dir)? {
        if entry.is_dir() {
            found.extend(list(&entry)?.into_iter().filter(|p| is_object_file(p)));
        } else if is_object_file(&entry) {
            found.push(entry);
        }
    }
    found.sort();
    Ok(found)
}

fn list(dir: &Path) -> Result<Vec<PathBuf>, NadFileError> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(|e| e.ok().map(|e| e.path())).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(NadFileError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        }),
    }
}

fn is_object_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e))
}

fn decode_yaml(path: &Path, text: &str) -> Result<Value, NadFileError> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    serde_saphyr::from_str_with_options(text, options).map_err(|e| NadFileError::NotYaml {
        path: path.to_path_buf(),
        at: e.location().map(|l| (l.line(), l.column())),
    })
}

/// `value` as a `T`; only the error's category is kept, its message may quote the file.
fn typed<T: DeserializeOwned>(path: &Path, value: Value) -> Result<T, NadFileError> {
    serde_json::from_value(value).map_err(|e| NadFileError::Refused {
        path: path.to_path_buf(),
        why: NadFileRefusal::Shape {
            category: e.classify(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn reads_policies_of_the_namespace_and_every_pod_and_namespace() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "default/deny.yaml",
            "apiVersion: k8s.cni.cncf.io/v1beta1\nkind: MultiNetworkPolicy\n\
             metadata: {name: deny, namespace: default}\nspec: {podSelector: {}}\n",
        );
        write(
            dir.path(),
            "other/allow.yaml",
            "apiVersion: k8s.cni.cncf.io/v1beta1\nkind: MultiNetworkPolicy\n\
             metadata: {name: allow, namespace: other}\nspec: {podSelector: {}}\n",
        );
        write(
            dir.path(),
            "pods.json",
            r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "labels": {"app": "db"}}}"#,
        );
        write(
            dir.path(),
            "ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: other, labels: {team: a}}\n",
        );
        let objects = PolicyDir::new(dir.path()).read("default").unwrap();
        let names: Vec<&str> = objects.policies.iter().map(|p| p.name()).collect();
        assert_eq!(names, ["deny"]);
        assert_eq!(objects.pods.len(), 1);
        assert_eq!(
            objects.pods[0].metadata.namespace.as_deref(),
            Some("default")
        );
        assert_eq!(objects.namespaces.len(), 1);
    }

    #[test]
    fn a_missing_directory_is_empty_and_another_kind_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = PolicyDir::new(&dir.path().join("none")).read("default");
        assert!(missing.unwrap().policies.is_empty());
        write(
            dir.path(),
            "x.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {password: aHVudGVyMg==}\n",
        );
        let e = cni::Error::from(super::super::error::SourceError::from(
            PolicyDir::new(dir.path()).read("default").unwrap_err(),
        ));
        assert_eq!(e.code, cni::ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(e.details.contains("Secret"), "{e:?}");
        assert!(
            !format!("{e:?}").contains("aHVudGVyMg"),
            "content echoed: {e:?}"
        );
    }
}
