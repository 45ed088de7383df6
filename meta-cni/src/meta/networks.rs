//! Finding a network's delegate configuration: a NAD (from the API, or from `nadDir`, laid
//! out as `<nadDir>/<namespace>/<name>.{yaml,yml,json}`), a file in `confDir`, or a path,
//! turned into the conflist its delegates run as. Names are validated before any path is
//! built.

use std::path::{Path, PathBuf};

use serde_json::Value;

use cni::{ConfList, Error, ErrorCode};
use nad_crd::{names, NadConfig, NetworkAttachmentDefinition};

use super::config::MetaConf;
use super::source::Source;

/// A network ready to run: its name in network-status and its delegate list.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    /// `<namespace>/<nad name>` for a NAD, the config's own name otherwise.
    pub(crate) name: String,
    /// The delegate netconf, always as a list (a single plugin is a one-plugin list).
    pub(crate) conf: Value,
}

impl Network {
    /// The delegate conflist, validated.
    pub(crate) fn conflist(&self) -> Result<ConfList, Error> {
        conflist_of(&self.conf).map_err(|e| e.context(format!("network {}", self.name)))
    }
}

/// A netconf object (single plugin or list) as a list.
pub(crate) fn conflist_of(conf: &Value) -> Result<ConfList, Error> {
    let bytes = serde_json::to_vec(conf).map_err(|e| Error::internal("encode netconf", e))?;
    if conf.get("plugins").is_some() {
        ConfList::parse(&bytes)
    } else {
        ConfList::from_single(&bytes)
    }
}

fn not_found(what: String, details: impl Into<String>) -> Error {
    Error::new(ErrorCode::INVALID_NETWORK_CONFIG, what, details)
}

/// Checks a NAD reference before it becomes a path: code 7 naming the bad part.
pub(crate) fn check_nad_ref(namespace: &str, name: &str) -> Result<(), Error> {
    if let Some(why) = names::namespace_problem(namespace) {
        return Err(Error::invalid_config("network namespace", namespace, why));
    }
    if let Some(why) = names::nad_name_problem(name) {
        return Err(Error::invalid_config("network name", name, why));
    }
    Ok(())
}

/// The NAD `namespace/name` from `nadDir`; `None` when there is no such file.
pub(crate) fn read_nad(
    nad_dir: &Path,
    namespace: &str,
    name: &str,
) -> Result<Option<NetworkAttachmentDefinition>, Error> {
    check_nad_ref(namespace, name)?;
    for ext in ["yaml", "yml", "json"] {
        let path = nad_dir.join(namespace).join(format!("{name}.{ext}"));
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("read NAD {}", path.display()), e)),
        };
        // YAML is a superset of JSON: one parser reads both forms. The error stays one line
        // (where and what), with no snippet of the file in it.
        let mut options = serde_saphyr::Options::default();
        options.with_snippet = false;
        let nad: NetworkAttachmentDefinition = serde_saphyr::from_str_with_options(&text, options)
            .map_err(|e| Error::decoding(format!("NAD file {}", path.display()), e))?;
        return Ok(Some(nad));
    }
    Ok(None)
}

/// The first file in `conf_dir` (lexical order, `.conf`, `.conflist`, `.json`) whose `name`
/// is `name`, as Multus looks a network up by name.
fn conf_file_named(conf_dir: &Path, name: &str) -> Result<Option<Value>, Error> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(conf_dir) {
        Ok(d) => d.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("read confDir {}", conf_dir.display()), e)),
    };
    files.sort();
    for path in files.iter().filter(|p| is_conf_file(p)) {
        let Ok(conf) = read_conf_file(path) else {
            continue;
        };
        if conf.get("name").and_then(Value::as_str) == Some(name) {
            return Ok(Some(conf));
        }
    }
    Ok(None)
}

fn is_conf_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("conf" | "conflist" | "json")
    )
}

fn read_conf_file(path: &Path) -> Result<Value, Error> {
    let text = std::fs::read(path).map_err(|e| Error::io(format!("read {}", path.display()), e))?;
    let conf: Value = serde_json::from_slice(&text)
        .map_err(|e| Error::decoding(format!("network config {}", path.display()), e))?;
    if !conf.is_object() {
        return Err(Error::decoding(
            format!("network config {}", path.display()),
            "not a JSON object",
        ));
    }
    Ok(conf)
}

/// The network of a NAD: its config, or for an empty config the `confDir` file of its name.
pub(crate) fn from_nad(
    conf: &MetaConf,
    source: &Source<'_>,
    namespace: &str,
    name: &str,
) -> Result<Option<Network>, Error> {
    let Some(nad) = source.nad(namespace, name)? else {
        return Ok(None);
    };
    let qualified = format!("{namespace}/{name}");
    let parsed = nad.parse_config().map_err(|e| {
        Error::invalid_config(
            &format!("NAD {qualified} {}", e.field()),
            e.value().unwrap_or_default(),
            e.to_string(),
        )
    })?;
    let delegate = match parsed {
        NadConfig::Plugin(v) | NadConfig::ConfList(v) => v,
        NadConfig::Empty => conf_file_named(&conf.conf_dir, name)?.ok_or_else(|| {
            not_found(
                format!("NAD {qualified} has no config and confDir has no network {name:?}"),
                format!("looked in {}", conf.conf_dir.display()),
            )
        })?,
    };
    Ok(Some(Network {
        name: qualified,
        conf: delegate,
    }))
}

/// `clusterNetwork` or a `defaultNetworks` entry: with a `/` a file or directory; without,
/// the NAD `<multusNamespace>/<value>`, else the `confDir` file of that name.
pub(crate) fn from_reference(
    conf: &MetaConf,
    source: &Source<'_>,
    value: &str,
) -> Result<Network, Error> {
    if value.contains('/') {
        let path = Path::new(value);
        let file = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::io(format!("read {value}"), e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("conf" | "conflist")
                    )
                })
                .collect();
            files.sort();
            files.into_iter().next().ok_or_else(|| {
                not_found(
                    format!("network directory {value} holds no .conf or .conflist"),
                    "",
                )
            })?
        } else {
            path.to_path_buf()
        };
        let delegate = read_conf_file(&file)?;
        let name = delegate
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(value)
            .to_string();
        return Ok(Network {
            name,
            conf: delegate,
        });
    }
    if let Some(network) = from_nad(conf, source, &conf.multus_namespace, value)? {
        return Ok(network);
    }
    let delegate = conf_file_named(&conf.conf_dir, value)?.ok_or_else(|| {
        not_found(
            format!("network {value:?} not found"),
            format!(
                "no NAD {}/{value} in {} and no config named {value:?} in {}",
                conf.multus_namespace,
                source.describe(),
                conf.conf_dir.display()
            ),
        )
    })?;
    Ok(Network {
        name: value.to_string(),
        conf: delegate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nad_files_are_yaml_or_json_and_a_bad_one_is_code_6_in_one_line() {
        let dir = tempfile::tempdir().unwrap();
        let ns = dir.path().join("default");
        std::fs::create_dir(&ns).unwrap();
        std::fs::write(
            ns.join("a.yaml"),
            "metadata:\n  name: a\nspec:\n  config: '{\"type\":\"bridge\"}'\n",
        )
        .unwrap();
        std::fs::write(ns.join("b.json"), r#"{"metadata":{"name":"b"}}"#).unwrap();
        std::fs::write(
            ns.join("bad.yaml"),
            "metadata:\n  name: bad\n  namespace: [x\n",
        )
        .unwrap();

        let a = read_nad(dir.path(), "default", "a").unwrap().unwrap();
        assert_eq!(
            (a.name(), a.spec.config.as_str()),
            ("a", r#"{"type":"bridge"}"#)
        );
        let b = read_nad(dir.path(), "default", "b").unwrap().unwrap();
        assert_eq!((b.name(), b.spec.config.as_str()), ("b", ""));
        assert_eq!(read_nad(dir.path(), "default", "c").unwrap(), None);

        let e = read_nad(dir.path(), "default", "bad").unwrap_err();
        assert_eq!(e.code, ErrorCode::DECODING_FAILURE);
        assert!(e.msg.ends_with("default/bad.yaml"), "{e:?}");
        assert!(e.details.contains("line 3"), "{e:?}");
        assert!(!e.details.contains('\n'), "no snippet of the file: {e:?}");
    }
}
