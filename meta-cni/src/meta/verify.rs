//! `meta-cni verify`: a netconf and every NAD of a nadDir checked offline, each problem with
//! its file and where in it: what ADD would refuse (the netconf's keys, a NAD that is not the
//! NAD its path names or whose config does not parse, a `cniVersion` we do not speak, a
//! plugin or IPAM type not installed in `binDir`, a policy delegate's rules), found before a
//! pod meets it.

use std::fmt;
use std::path::{Path, PathBuf};

use cni::chain::Chain;
use cni::NetConf;
use serde_json::{Map, Value};

use crate::delegates::Delegates;

use super::config::MetaConf;
use super::explain::{meta_netconf, request};
use super::nad_dir::EXTENSIONS;
use super::networks::{self, Network};
use super::source::Source;

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The file it is in.
    pub(crate) file: PathBuf,
    /// Where in the file (a key or JSON path), when known.
    pub(crate) at: Option<String>,
    /// What is wrong.
    pub(crate) what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{}: {at}: {}", self.file.display(), self.what),
            None => write!(f, "{}: {}", self.file.display(), self.what),
        }
    }
}

fn problem(file: &Path, at: Option<String>, e: &cni::Error) -> Problem {
    let what = if e.details.is_empty() {
        e.msg.clone()
    } else {
        format!("{}: {}", e.msg, e.details)
    };
    Problem {
        file: file.to_path_buf(),
        at,
        what,
    }
}

/// Every problem of the netconf at `netconf` and of the NADs of `nad_dir` (default: the
/// netconf's `nadDir`); what was checked, for the summary.
pub(crate) fn verify(
    netconf: &Path,
    nad_dir: Option<&Path>,
    cni_path: &dyn Fn(&Map<String, Value>) -> Vec<PathBuf>,
) -> (Vec<Problem>, usize) {
    let text = match std::fs::read_to_string(netconf) {
        Ok(text) => text,
        Err(e) => {
            let what = format!("cannot read it: {e}");
            return (vec![plain(netconf, what)], 0);
        }
    };
    let object = match meta_netconf(&text) {
        Ok(object) => object,
        Err(what) => return (vec![plain(netconf, what)], 0),
    };
    let path = cni_path(&object);
    let conf = request(object, None, path).and_then(|req| Ok((MetaConf::load(&req)?, req)));
    let (mut conf, req) = match conf {
        Ok(loaded) => loaded,
        Err(e) => return (vec![problem(netconf, None, &e)], 0),
    };
    if let Some(dir) = nad_dir {
        conf.nad_dir = dir.to_path_buf();
    } else if conf.kube.is_some() {
        // Kubernetes mode reads NADs from the API: nothing on disk to check.
        return (Vec::new(), 0);
    }
    let delegates = Delegates::new(&conf.bin_dir, &req.inv.path);
    let source = Source::new(&conf);
    let mut problems = Vec::new();
    let files = nad_files(&conf.nad_dir, &mut problems);
    for (file, namespace, name) in &files {
        match networks::from_nad(&conf, &source, namespace, name) {
            Ok(Some(network)) => problems.extend(check_network(file, &network, &delegates)),
            Ok(None) => {}
            Err(e) => problems.push(problem(file, None, &e.into())),
        }
    }
    (problems, files.len())
}

fn plain(file: &Path, what: String) -> Problem {
    Problem {
        file: file.to_path_buf(),
        at: None,
        what,
    }
}

/// The NAD files of `dir`: `<namespace>/<name>.<yaml|yml|json>`.
fn nad_files(dir: &Path, problems: &mut Vec<Problem>) -> Vec<(PathBuf, String, String)> {
    let mut found = Vec::new();
    let namespaces = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(plain(dir, format!("cannot read the nadDir: {e}")));
            return found;
        }
    };
    for ns_dir in namespaces.filter_map(|e| e.ok().map(|e| e.path())) {
        let Ok(entries) = std::fs::read_dir(&ns_dir) else {
            continue;
        };
        let namespace = ns_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for file in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let ext = file
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            if !EXTENSIONS.contains(&ext) {
                continue;
            }
            let name = file
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.push((file, namespace.clone(), name));
        }
    }
    found.sort();
    found
}

/// What would stop a network's delegates from running: the list's version, each plugin's
/// and IPAM's type, a policy delegate's rules.
fn check_network(file: &Path, network: &Network, delegates: &Delegates) -> Vec<Problem> {
    let chain = match Chain::new(&network.conf) {
        Ok(chain) => chain,
        Err(e) => return vec![problem(file, Some("spec.config".into()), &e)],
    };
    let single = network.conf.plugins.len() == 1;
    let at = |i: usize, key: &str| {
        Some(if single {
            format!("spec.config.{key}")
        } else {
            format!("spec.config.plugins[{i}].{key}")
        })
    };
    let mut problems: Vec<Problem> = delegates
        .missing(&network.conf)
        .into_iter()
        .map(|(i, key, e)| problem(file, at(i, key), &e))
        .collect();
    for (i, plugin) in network.conf.plugins.iter().enumerate() {
        if plugin.get("type").and_then(Value::as_str) == Some("policy") {
            let checked = chain
                .plugin_config(i, None, &Default::default(), &[])
                .and_then(NetConf::from_object)
                .and_then(|(netconf, _)| Ok(policy::Config::parse(&netconf)?));
            if let Err(e) = checked {
                // The policy's error names its path inside the plugin's config (in details).
                problems.push(Problem {
                    file: file.to_path_buf(),
                    at: at(i, &e.details),
                    what: e.msg,
                });
            }
        }
    }
    problems
}
