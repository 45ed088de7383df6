//! DEL's fast path: the pod's veths of bundled delegates removed in one request before the
//! delegates' DELs run. Deleting links one by one costs the kernel one RCU grace period each
//! (about 17 ms here); a device group goes in one. The bundled delegates take the missing
//! interface as already deleted and still release addresses and rules. Anything that goes
//! wrong here only means the delegates delete their links themselves.

use std::collections::HashSet;

use cni::Request;
use kernel::{Netlink, Netns};

use super::attachment::Attachment;
use crate::delegates::Delegates;

/// The first device group tried ("mcni"); any group no link of the pod holds will do.
const FIRST_GROUP: u32 = 0x6d63_6e69;

/// Removes the pod's veths of `attachments` made by bundled delegates at once.
pub(crate) fn veths_at_once(req: &Request, delegates: &Delegates, attachments: &[Attachment]) {
    let names: Vec<&str> = attachments
        .iter()
        .filter(|a| a.is_bundled(delegates))
        .map(|a| a.ifname.as_str())
        .collect();
    // One link goes as fast through its own delegate.
    if names.len() < 2 {
        return;
    }
    let Some(path) = req.inv.netns.as_deref() else {
        return;
    };
    // No namespace: nothing of the pod's is left to remove.
    let Ok(netns) = Netns::open(path) else {
        return;
    };
    if let Err(e) = remove(&netns, &names) {
        tracing::info!("removing the pod's veths at once failed ({e}); the delegates will");
    }
}

fn remove(netns: &Netns, names: &[&str]) -> kernel::Result<()> {
    let mut nl = Netlink::in_netns(netns)?;
    let links = nl.links()?;
    // Only veths: deleting one takes its peer and nothing else, whatever made it.
    let targets: Vec<u32> = links
        .iter()
        .filter(|l| names.contains(&l.name.as_str()) && l.kind.as_deref() == Some("veth"))
        .map(|l| l.index)
        .collect();
    if targets.len() < 2 {
        return Ok(());
    }
    let used: HashSet<u32> = links.iter().map(|l| l.group).collect();
    let group = (FIRST_GROUP..)
        .find(|g| !used.contains(g))
        .expect("a pod has fewer links than there are groups");
    for index in targets {
        nl.set_group(index, group)?;
    }
    nl.del_group(group)
}
