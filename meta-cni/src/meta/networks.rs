//! Finding a network's delegate configuration: a NAD (from the API, or from `nadDir`, laid
//! out as `<nadDir>/<namespace>/<name>.{yaml,yml,json}`), a file in `confDir`, or a path,
//! turned into the conflist its delegates run as. Names are validated before any path is
//! built.

use std::path::{Path, PathBuf};

use serde_json::Value;

use cni::ConfList;
use nad_crd::NadConfig;

use super::config::MetaConf;
use super::error::NetworkError;
use super::source::Source;

/// A network ready to run: its name in network-status and its delegate list.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    /// `<namespace>/<nad name>` for a NAD, the config's own name otherwise.
    pub(crate) name: String,
    /// The delegates, always as a list (a single plugin is a one-plugin list).
    pub(crate) conf: ConfList,
    /// The NAD's `k8s.v1.cni.cncf.io/resourceName`: the device-plugin resource whose
    /// allocated device the attachment gets.
    pub(crate) resource_name: Option<String>,
}

impl Network {
    /// The network `name` whose delegate netconf (a single plugin or a list) is `conf`,
    /// validated by the cni crate (its error, naming the network).
    pub(crate) fn new(name: String, conf: Value) -> Result<Network, NetworkError> {
        match ConfList::from_value(conf) {
            Ok(conf) => Ok(Network {
                name,
                conf,
                resource_name: None,
            }),
            Err(source) => Err(NetworkError::Conf {
                network: name,
                source,
            }),
        }
    }
}

/// The first file in `conf_dir` (lexical order, `.conf`, `.conflist`, `.json`) whose `name`
/// is `name`, as Multus looks a network up by name.
fn conf_file_named(conf_dir: &Path, name: &str) -> Result<Option<Value>, NetworkError> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(conf_dir) {
        Ok(d) => d.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(NetworkError::ReadConfDir {
                dir: conf_dir.to_path_buf(),
                source,
            })
        }
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

fn read_conf_file(path: &Path) -> Result<Value, NetworkError> {
    let text = std::fs::read(path).map_err(|source| NetworkError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let conf: Value = serde_json::from_slice(&text).map_err(|source| NetworkError::Decode {
        path: path.to_path_buf(),
        source,
    })?;
    if !conf.is_object() {
        return Err(NetworkError::NotAnObject {
            path: path.to_path_buf(),
        });
    }
    Ok(conf)
}

/// The network of a NAD: its config, or for an empty config the `confDir` file of its name.
pub(crate) fn from_nad(
    conf: &MetaConf,
    source: &Source<'_>,
    namespace: &str,
    name: &str,
) -> Result<Option<Network>, NetworkError> {
    let Some(nad) = source.nad(namespace, name)? else {
        return Ok(None);
    };
    let qualified = format!("{namespace}/{name}");
    let parsed = nad
        .parse_config()
        .map_err(|source| NetworkError::NadConfig {
            nad: qualified.clone(),
            source,
        })?;
    let delegate = match parsed {
        NadConfig::Plugin(v) | NadConfig::ConfList(v) => v,
        NadConfig::Empty => {
            conf_file_named(&conf.conf_dir, name)?.ok_or_else(|| NetworkError::EmptyNad {
                nad: qualified.clone(),
                name: name.to_string(),
                conf_dir: conf.conf_dir.clone(),
            })?
        }
    };
    let mut network = Network::new(qualified, delegate)?;
    network.resource_name = nad
        .resource_name()
        .filter(|r| !r.is_empty())
        .map(String::from);
    Ok(Some(network))
}

/// `clusterNetwork` or a `defaultNetworks` entry: with a `/` a file or directory; without,
/// the NAD `<multusNamespace>/<value>`, else the `confDir` file of that name.
pub(crate) fn from_reference(
    conf: &MetaConf,
    source: &Source<'_>,
    value: &str,
) -> Result<Network, NetworkError> {
    if value.contains('/') {
        let path = Path::new(value);
        let file = if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| NetworkError::ReadDir {
                    path: path.to_path_buf(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("conf" | "conflist")
                    )
                })
                .collect();
            files.sort();
            files
                .into_iter()
                .next()
                .ok_or_else(|| NetworkError::EmptyDirectory {
                    dir: value.to_string(),
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
        return Network::new(name, delegate);
    }
    if let Some(network) = from_nad(conf, source, &conf.multus_namespace, value)? {
        return Ok(network);
    }
    let delegate =
        conf_file_named(&conf.conf_dir, value)?.ok_or_else(|| NetworkError::NotFound {
            name: value.to_string(),
            namespace: conf.multus_namespace.clone(),
            looked: source.where_missing(&conf.multus_namespace, value),
            conf_dir: conf.conf_dir.clone(),
        })?;
    Network::new(value.to_string(), delegate)
}
