//! Finding a network's delegate configuration: a NAD (from the API, or from `nadDir`, laid
//! out as `<nadDir>/<namespace>/<name>.{yaml,yml,json}`), a file in `confDir`, or a path,
//! turned into the conflist its delegates run as. Names are validated before any path is
//! built.

use std::path::{Path, PathBuf};

use serde_json::Value;

use cni::{ConfList, Error, ErrorCode};
use nad_crd::NadConfig;

use super::config::MetaConf;
use super::source::Source;

/// A network ready to run: its name in network-status and its delegate list.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    /// `<namespace>/<nad name>` for a NAD, the config's own name otherwise.
    pub(crate) name: String,
    /// The delegates, always as a list (a single plugin is a one-plugin list).
    pub(crate) conf: ConfList,
}

impl Network {
    /// The network `name` whose delegate netconf (a single plugin or a list) is `conf`,
    /// validated: code 6 or 7 naming the network.
    pub(crate) fn new(name: String, conf: Value) -> Result<Network, Error> {
        let conf = ConfList::from_value(conf).map_err(|e| e.context(format!("network {name}")))?;
        Ok(Network { name, conf })
    }
}

fn not_found(what: String, details: impl Into<String>) -> Error {
    Error::new(ErrorCode::INVALID_NETWORK_CONFIG, what, details)
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
    Network::new(qualified, delegate).map(Some)
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
        return Network::new(name, delegate);
    }
    if let Some(network) = from_nad(conf, source, &conf.multus_namespace, value)? {
        return Ok(network);
    }
    let delegate = conf_file_named(&conf.conf_dir, value)?.ok_or_else(|| {
        not_found(
            format!("network {value:?} not found"),
            format!(
                "no NAD {}/{value} ({}) and no config named {value:?} in {}",
                conf.multus_namespace,
                source.where_missing(&conf.multus_namespace, value),
                conf.conf_dir.display()
            ),
        )
    })?;
    Network::new(value.to_string(), delegate)
}
