//! `meta-cni inspect`: the attachments the cache holds, one row per interface of a pod, as
//! operators of Multus read its cache files by hand: the network, the interface in the pod,
//! its addresses and MAC (from the delegates' result), the delegate chain and the state.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::attachment::Attachment;
use super::cache::{self, Read};
use super::error::CacheError;

/// Where an attachment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    /// Its delegates' ADD succeeded.
    Attached,
    /// Planned and cached, no result: an ADD in progress, or one that died (DEL cleans it).
    Incomplete,
    /// The cache file does not decode: DEL refuses it (code 5) until it is removed.
    Corrupt,
}

/// One attachment of one cached pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Row {
    /// The runtime's container ID.
    pub(crate) container_id: String,
    /// The runtime's interface name (the pod's cache key with the container ID).
    pub(crate) ifname: String,
    /// The network (`<namespace>/<nad>` for a NAD).
    pub(crate) network: String,
    /// The interface in the pod.
    pub(crate) interface: String,
    /// Its addresses, with prefix length.
    pub(crate) addresses: Vec<String>,
    /// Its MAC, when the result names one.
    pub(crate) mac: Option<String>,
    /// The delegates' types, in order.
    pub(crate) delegates: Vec<String>,
    /// Where it stands.
    pub(crate) state: State,
    /// Why a corrupt file is corrupt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) problem: Option<String>,
}

/// Every attachment of the cache in `cni_dir`, of `container` only when given.
pub(crate) fn rows(cni_dir: &Path, container: Option<&str>) -> Result<Vec<Row>, CacheError> {
    let mut rows = Vec::new();
    for (file, found) in cache::scan(cni_dir)? {
        match found {
            Read::Found(entry) => {
                if container.is_some_and(|c| c != entry.container_id) {
                    continue;
                }
                rows.extend(
                    entry
                        .attachments
                        .iter()
                        .map(|att| row(&entry.container_id, &entry.ifname, att)),
                );
            }
            Read::Corrupt(why) => {
                // The file name is `<container ID>+<ifname>.meta-cni.json` (escaped).
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let (id, ifname) = name
                    .trim_end_matches(".meta-cni.json")
                    .split_once('+')
                    .unwrap_or((name.as_str(), ""));
                if container.is_some_and(|c| c != id) {
                    continue;
                }
                rows.push(Row {
                    container_id: id.to_owned(),
                    ifname: ifname.to_owned(),
                    network: String::new(),
                    interface: String::new(),
                    addresses: Vec::new(),
                    mac: None,
                    delegates: Vec::new(),
                    state: State::Corrupt,
                    problem: Some(format!("{}: {why}", file.display())),
                });
            }
            Read::Missing => {}
        }
    }
    Ok(rows)
}

fn row(container_id: &str, ifname: &str, att: &Attachment) -> Row {
    let delegates = att
        .conf
        .plugins
        .iter()
        .map(|p| {
            p.get("type")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let result = att.cached_result();
    // The pod's interface of this attachment: the one in a sandbox with its name.
    let index = result.and_then(|r| {
        r.interfaces
            .iter()
            .position(|i| i.name == att.ifname && !i.sandbox.is_empty())
    });
    let addresses = result
        .map(|r| {
            r.ips
                .iter()
                .filter(|ip| index.is_none() || ip.interface == index)
                .map(|ip| ip.address.to_string())
                .collect()
        })
        .unwrap_or_default();
    let mac = result
        .zip(index)
        .map(|(r, i)| r.interfaces[i].mac.clone())
        .filter(|m| !m.is_empty());
    Row {
        container_id: container_id.to_owned(),
        ifname: ifname.to_owned(),
        network: att.network.clone(),
        interface: att.ifname.clone(),
        addresses,
        mac,
        delegates,
        state: if result.is_some() {
            State::Attached
        } else {
            State::Incomplete
        },
        problem: None,
    }
}

/// The rows as a table for people: a header, then one aligned line per row.
pub(crate) fn table(rows: &[Row]) -> String {
    let header = [
        "CONTAINER",
        "IFNAME",
        "NETWORK",
        "INTERFACE",
        "ADDRESSES",
        "MAC",
        "DELEGATES",
        "STATE",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let state = match (r.state, &r.problem) {
                (State::Corrupt, Some(why)) => format!("corrupt ({why})"),
                (State::Attached, _) => "attached".into(),
                (State::Incomplete, _) => "incomplete".into(),
                (State::Corrupt, None) => "corrupt".into(),
            };
            [
                r.container_id.clone(),
                r.ifname.clone(),
                or_dash(&r.network),
                or_dash(&r.interface),
                or_dash(&r.addresses.join(",")),
                or_dash(r.mac.as_deref().unwrap_or_default()),
                or_dash(&r.delegates.join(">")),
                state,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for line in &cells {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut push = |line: &[&str]| {
        let last = line.len() - 1;
        for (i, cell) in line.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push('\n');
    };
    push(&header);
    for line in &cells {
        push(&line.each_ref().map(String::as_str));
    }
    out
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_owned()
    }
}
