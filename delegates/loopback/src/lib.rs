//! The `loopback` plugin: brings `lo` up in the container's namespace.
//!
//! Behaves as the reference plugin: ADD reports `lo` with its loopback addresses, or passes a
//! `prevResult` through unchanged; DEL brings `lo` down and succeeds when the namespace is
//! already gone; CHECK fails while `lo` is down. It holds no state, so STATUS and GC have
//! nothing to do.

use cni::{CniResult, Error, ErrorCode, Interface, IpConfig, Plugin, Request};
use kernel::{Netlink, Netns};

/// The loopback device's name; the plugin ignores `CNI_IFNAME`, as the reference does.
const LO: &str = "lo";

/// The loopback plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct Loopback;

/// The container namespace of a call, which ADD and CHECK require.
fn netns(req: &Request) -> Result<Netns, Error> {
    req.open_netns(Netns::open, kernel::Error::is_not_found)
}

fn kernel_error(e: kernel::Error) -> Error {
    Error::io("loopback", e)
}

/// `lo` in the namespace, and a socket bound there.
fn lo_in(ns: &Netns) -> Result<(Netlink, kernel::Link), Error> {
    let mut nl = Netlink::in_netns(ns).map_err(kernel_error)?;
    let lo = nl
        .link_by_name(LO)
        .map_err(kernel_error)?
        .ok_or_else(|| Error::io("loopback", "the namespace has no lo device"))?;
    Ok((nl, lo))
}

impl Plugin for Loopback {
    fn name(&self) -> &'static str {
        "loopback"
    }

    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let ns = netns(req)?;
        let (mut nl, lo) = lo_in(&ns)?;
        nl.set_link_up(lo.index).map_err(kernel_error)?;
        let addresses = nl.addresses(Some(lo.index), None).map_err(kernel_error)?;
        if let Some(bad) = addresses.iter().find(|a| !a.addr.addr().is_loopback()) {
            return Err(Error::new(
                ErrorCode::INVALID_NETWORK_CONFIG,
                "loopback interface found with non-loopback address",
                bad.addr.to_string(),
            ));
        }
        if let Some(prev) = req.netconf.prev_result(req.version)? {
            return Ok(prev);
        }
        let first = |v4: bool| addresses.iter().find(|a| a.addr.addr().is_ipv4() == v4);
        let ips = [first(true), first(false)]
            .into_iter()
            .flatten()
            .map(|a| IpConfig {
                interface: Some(0),
                address: a.addr,
                gateway: None,
            })
            .collect();
        Ok(CniResult {
            interfaces: vec![Interface {
                name: LO.into(),
                mac: "00:00:00:00:00:00".into(),
                sandbox: req.inv.sandbox(),
                ..Interface::default()
            }],
            ips,
            ..CniResult::default()
        })
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        let Some(path) = req.inv.netns.as_deref() else {
            return Ok(());
        };
        // The runtime may call DEL after the namespace is gone, or twice: both succeed.
        let ns = match Netns::open(path) {
            Err(e) if e.is_not_found() => return Ok(()),
            other => other.map_err(|e| Error::io(format!("open netns {}", path.display()), e))?,
        };
        let (mut nl, lo) = lo_in(&ns)?;
        nl.set_link_down(lo.index).map_err(kernel_error)
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let (_, lo) = lo_in(&netns(req)?)?;
        if lo.up {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::CHECK_FAILED,
                "loopback interface is down",
                req.inv.sandbox(),
            ))
        }
    }

    fn status(&self, _req: &Request) -> Result<(), Error> {
        Ok(())
    }

    fn gc(&self, _req: &Request) -> Result<(), Error> {
        Ok(())
    }
}
