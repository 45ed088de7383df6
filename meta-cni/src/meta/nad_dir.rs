//! Standalone mode's NAD store: files laid out as `<nadDir>/<namespace>/<name>.yaml` (or
//! `.yml`, `.json`; YAML reads both). A file is trusted no further than a NAD from the API
//! would be: only a regular file is read (a FIFO or device would block or never end), at
//! most [`MAX_NAD_FILE`] bytes of it; it must be a NAD (`apiVersion`, `kind`) and the one
//! its path names (`metadata.name`, `metadata.namespace`); and a file that does not decode
//! is reported by its path and position, never by its content.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use nad_crd::{names, NetworkAttachmentDefinition};

use super::error::{NadFileError, NadFileRefusal};

/// The largest NAD file read; a real one is a few KiB.
pub(crate) const MAX_NAD_FILE: u64 = 1 << 20;
/// The file names tried for a NAD, in order.
pub(crate) const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];
const API_VERSION: &str = "k8s.cni.cncf.io/v1";
const KIND: &str = "NetworkAttachmentDefinition";

/// Checks a NAD reference before it becomes a path or a URL: code 7 naming the bad part.
pub(crate) fn check_nad_ref(namespace: &str, name: &str) -> Result<(), NadFileError> {
    let invalid = |field, value: &str, why| NadFileError::InvalidRef {
        field,
        value: value.to_string(),
        why,
    };
    if let Some(why) = names::namespace_problem(namespace) {
        return Err(invalid("network namespace", namespace, why));
    }
    if let Some(why) = names::nad_name_problem(name) {
        return Err(invalid("network name", name, why));
    }
    Ok(())
}

/// A directory of NAD files.
#[derive(Debug, Clone)]
pub(crate) struct NadDir {
    dir: PathBuf,
}

/// A refusal of the NAD file at `path`.
fn refused(path: &Path, why: NadFileRefusal) -> NadFileError {
    NadFileError::Refused {
        path: path.to_path_buf(),
        why,
    }
}

impl NadDir {
    /// The store at `dir`; nothing is read yet.
    pub(crate) fn new(dir: &Path) -> NadDir {
        NadDir {
            dir: dir.to_path_buf(),
        }
    }

    /// The files tried for `namespace/name`, in order (the names were checked).
    pub(crate) fn candidates(&self, namespace: &str, name: &str) -> Vec<PathBuf> {
        EXTENSIONS
            .iter()
            .map(|ext| self.dir.join(namespace).join(format!("{name}.{ext}")))
            .collect()
    }

    /// The NAD `namespace/name`; `None` when none of its files exists.
    pub(crate) fn read(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, NadFileError> {
        check_nad_ref(namespace, name)?;
        for path in self.candidates(namespace, name) {
            if let Some(text) = read_regular_file(&path)? {
                return decode(&path, &text, namespace, name).map(Some);
            }
        }
        Ok(None)
    }
}

/// The text of `path`, if it exists; refused unless it is a regular file of at most
/// [`MAX_NAD_FILE`] bytes. Opened without blocking, so a FIFO cannot hang the call.
pub(crate) fn read_regular_file(path: &Path) -> Result<Option<String>, NadFileError> {
    let file = match File::options()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(NadFileError::Open {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let meta = file.metadata().map_err(|source| NadFileError::Stat {
        path: path.to_path_buf(),
        source,
    })?;
    if !meta.is_file() {
        return Err(refused(path, NadFileRefusal::NotRegular));
    }
    if meta.len() > MAX_NAD_FILE {
        return Err(refused(
            path,
            NadFileRefusal::TooLarge {
                len: meta.len(),
                max: MAX_NAD_FILE,
            },
        ));
    }
    let mut text = String::new();
    file.take(MAX_NAD_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|source| NadFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(Some(text))
}

/// The NAD in `text`, checked to be the NAD `namespace/name` that `path` names.
fn decode(
    path: &Path,
    text: &str,
    namespace: &str,
    name: &str,
) -> Result<NetworkAttachmentDefinition, NadFileError> {
    let mut options = serde_saphyr::Options::default();
    options.with_snippet = false;
    // YAML is a superset of JSON: one parser reads both forms. What went wrong is said by
    // position only: the file may hold what must not reach a log.
    let value: Value =
        serde_saphyr::from_str_with_options(text, options).map_err(|e| NadFileError::NotYaml {
            path: path.to_path_buf(),
            at: e.location().map(|l| (l.line(), l.column())),
        })?;
    // Present but not the expected text (another string, or not a string at all); only a
    // refusal copies what was found.
    let wrong = |key: &str, expected: &str| {
        value
            .get(key)
            .filter(|v| v.as_str() != Some(expected))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
    };
    if let Some(api_version) = wrong("apiVersion", API_VERSION) {
        return Err(refused(
            path,
            NadFileRefusal::ApiVersion {
                found: api_version,
                expected: API_VERSION,
            },
        ));
    }
    if let Some(kind) = wrong("kind", KIND) {
        return Err(refused(
            path,
            NadFileRefusal::Kind {
                found: kind,
                expected: KIND,
            },
        ));
    }
    // Only the error's category is kept: its message may quote the file.
    let nad: NetworkAttachmentDefinition = serde_json::from_value(value).map_err(|e| {
        refused(
            path,
            NadFileRefusal::Shape {
                category: e.classify(),
            },
        )
    })?;
    if !nad.name().is_empty() && nad.name() != name {
        return Err(refused(
            path,
            NadFileRefusal::Name {
                found: nad.name().to_string(),
                expected: name.to_string(),
            },
        ));
    }
    if let Some(ns) = nad.namespace().filter(|ns| *ns != namespace) {
        return Err(refused(
            path,
            NadFileRefusal::Namespace {
                found: ns.to_string(),
                expected: namespace.to_string(),
            },
        ));
    }
    Ok(nad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni::{Error, ErrorCode};
    use serde_json::json;

    /// The NAD `default/name` of `store`'s failure, as the runtime sees it.
    fn failure(store: &NadDir, name: &str) -> Error {
        store.read("default", name).unwrap_err().into()
    }

    fn store() -> (tempfile::TempDir, NadDir) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("default")).unwrap();
        let store = NadDir::new(dir.path());
        (dir, store)
    }

    fn write(dir: &tempfile::TempDir, file: &str, text: &str) {
        std::fs::write(dir.path().join("default").join(file), text).unwrap();
    }

    #[test]
    fn nad_files_are_yaml_or_json() {
        let (dir, store) = store();
        write(
            &dir,
            "a.yaml",
            "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n\
             metadata:\n  name: a\nspec:\n  config: '{\"type\":\"bridge\"}'\n",
        );
        write(&dir, "b.json", r#"{"metadata":{"name":"b"}}"#);
        let a = store.read("default", "a").unwrap().unwrap();
        assert_eq!(
            (a.name(), a.spec.config.as_str()),
            ("a", r#"{"type":"bridge"}"#)
        );
        let b = store.read("default", "b").unwrap().unwrap();
        assert_eq!((b.name(), b.spec.config.as_str()), ("b", ""));
        assert_eq!(store.read("default", "c").unwrap(), None);
        assert_eq!(store.candidates("default", "c").len(), 3);
    }

    #[test]
    fn a_bad_file_is_named_by_path_and_position_never_by_content() {
        let (dir, store) = store();
        write(
            &dir,
            "bad.yaml",
            "metadata:\n  name: bad\n  namespace: [token-s3cr3t\n",
        );
        let e = failure(&store, "bad");
        assert_eq!(e.code, ErrorCode::DECODING_FAILURE);
        assert!(e.msg.contains("default/bad.yaml"), "{e:?}");
        assert!(e.details.contains("line"), "{e:?}");
        let shown = format!("{} {}", e.msg, e.details);
        assert!(!shown.contains("s3cr3t") && !shown.contains('\n'), "{e:?}");

        write(&dir, "shape.yaml", "metadata: token-s3cr3t\nspec: 3\n");
        let e = failure(&store, "shape");
        assert_eq!(e.code, ErrorCode::INVALID_NETWORK_CONFIG);
        assert!(!format!("{e:?}").contains("s3cr3t"), "{e:?}");
    }

    #[test]
    fn only_a_nad_of_the_name_and_namespace_its_path_says() {
        let (dir, store) = store();
        for (file, text, why) in [
            (
                "pod.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: pod\n",
                "apiVersion",
            ),
            (
                "cm.yaml",
                "apiVersion: k8s.cni.cncf.io/v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
                "kind",
            ),
            ("other.yaml", "metadata:\n  name: net-b\n", "metadata.name"),
            (
                "ns.yaml",
                "metadata:\n  name: ns\n  namespace: kube-system\n",
                "metadata.namespace",
            ),
        ] {
            write(&dir, file, text);
            let name = file.trim_end_matches(".yaml");
            let e = failure(&store, name);
            assert_eq!(e.code, ErrorCode::INVALID_NETWORK_CONFIG, "{file}: {e:?}");
            assert!(e.details.contains(why), "{file}: {e:?}");
            assert!(e.msg.contains(file), "{file}: {e:?}");
        }
    }

    #[test]
    fn a_fifo_or_directory_is_refused_without_blocking() {
        let (dir, store) = store();
        let fifo = dir.path().join("default").join("fifo.yaml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR).unwrap();
        let e = failure(&store, "fifo");
        assert!(e.details.contains("not a regular file"), "{e:?}");
        std::fs::create_dir(dir.path().join("default").join("d.yaml")).unwrap();
        let e = failure(&store, "d");
        assert!(e.details.contains("not a regular file"), "{e:?}");
    }

    #[test]
    fn an_oversized_file_is_refused() {
        let (dir, store) = store();
        let big = format!(
            "metadata:\n  name: big\n#{}\n",
            "x".repeat(MAX_NAD_FILE as usize)
        );
        write(&dir, "big.yaml", &big);
        let e = failure(&store, "big");
        assert!(e.details.contains("at most"), "{e:?}");
    }

    /// A NAD-shaped document with each part right, wrong or missing; `SECRET` is only in
    /// what no refusal may quote (the config, an unknown key).
    fn document() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let part = |right: &'static str| {
            prop_oneof![
                Just(Some(json!(right))),
                Just(None),
                "[a-zA-Z0-9./-]{0,12}".prop_map(|s| Some(json!(s))),
                Just(Some(json!(7))),
                Just(Some(json!({"a": [1]}))),
            ]
        };
        (
            part(API_VERSION),
            part(KIND),
            part("a"),
            part("default"),
            prop_oneof![
                Just(json!(SECRET)),
                Just(json!({"x": SECRET})),
                Just(json!(3))
            ],
            any::<bool>(),
        )
            .prop_map(|(api, kind, name, ns, config, as_yaml)| {
                let mut metadata = serde_json::Map::new();
                name.map(|v| metadata.insert("name".into(), v));
                ns.map(|v| metadata.insert("namespace".into(), v));
                let mut doc = serde_json::Map::new();
                api.map(|v| doc.insert("apiVersion".into(), v));
                kind.map(|v| doc.insert("kind".into(), v));
                doc.insert("metadata".into(), Value::Object(metadata));
                doc.insert("spec".into(), json!({"config": config}));
                doc.insert("note".into(), json!(SECRET));
                let doc = Value::Object(doc);
                if as_yaml {
                    serde_saphyr::to_string(&doc).unwrap()
                } else {
                    doc.to_string()
                }
            })
    }

    const SECRET: &str = "s3cr3t-token-value";

    /// Where a refusal says it is, as the runtime sees it: code 6 (not YAML) or 7 (not the
    /// NAD its path names), naming the file.
    fn check_refusal(
        e: NadFileError,
        path: &Path,
    ) -> Result<Error, proptest::test_runner::TestCaseError> {
        let not_yaml = matches!(e, NadFileError::NotYaml { .. });
        let e = Error::from(e);
        let expected = if not_yaml {
            ErrorCode::DECODING_FAILURE
        } else {
            ErrorCode::INVALID_NETWORK_CONFIG
        };
        proptest::prop_assert_eq!(e.code, expected, "{}", e.msg);
        proptest::prop_assert!(e.msg.contains(&path.display().to_string()), "{}", e.msg);
        Ok(e)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Any text: a NAD, or a refusal with its code naming the file.
        #[test]
        fn any_text_is_a_nad_or_a_refusal_naming_the_file(text in ".{0,200}") {
            let path = Path::new("/nads/default/a.yaml");
            if let Err(e) = decode(path, &text, "default", "a") {
                check_refusal(e, path)?;
            }
        }

        /// NAD-shaped documents: a refusal names the file and never quotes the config or
        /// any other value the file holds beyond the field at fault.
        #[test]
        fn a_refused_document_is_never_echoed(text in document()) {
            let path = Path::new("/nads/default/a.json");
            match decode(path, &text, "default", "a") {
                Ok(nad) => {
                    // Without metadata.name, the name is the path's.
                    proptest::prop_assert!(nad.name() == "a" || nad.name().is_empty());
                    proptest::prop_assert!(nad.namespace().is_none_or(|ns| ns == "default"));
                }
                Err(e) => {
                    let e = check_refusal(e, path)?;
                    let said = format!("{} {}", e.msg, e.details);
                    proptest::prop_assert!(!said.contains(SECRET), "{said}");
                }
            }
        }
    }
}
