//! Shared setup: every kernel-touching test works in its own private
//! namespace, which vanishes (with its links) when the test ends or panics.

#![allow(dead_code)]

use kernel::{Netlink, Netns, PrivateNetns, VethRequest};

/// A private namespace with a netlink socket bound to it.
pub(crate) struct Sandbox {
    pub(crate) nl: Netlink,
    pub(crate) ns: Netns,
    // Dropped last: the namespace outlives the socket and handle.
    pub(crate) private: PrivateNetns,
}

pub(crate) fn sandbox() -> Sandbox {
    let private = PrivateNetns::new().expect("create private netns");
    let ns = private.netns().expect("open private netns");
    let nl = Netlink::in_netns(&ns).expect("netlink in private netns");
    Sandbox { nl, ns, private }
}

/// Creates a veth pair with both ends in the sandbox, both up; returns the
/// index of `name`.
pub(crate) fn veth_up(nl: &mut Netlink, name: &str, peer: &str) -> u32 {
    nl.create_veth(&VethRequest {
        name: name.into(),
        peer_name: peer.into(),
        ..Default::default()
    })
    .expect("create veth");
    let a = nl.link_by_name(name).unwrap().unwrap();
    let b = nl.link_by_name(peer).unwrap().unwrap();
    nl.set_link_up(a.index).unwrap();
    nl.set_link_up(b.index).unwrap();
    a.index
}
