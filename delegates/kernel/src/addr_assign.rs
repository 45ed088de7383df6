//! How a link's hardware address was assigned: the kernel's `addr_assign_type`.
//!
//! rtnetlink does not report it; sysfs does (`/sys/class/net/<name>/addr_assign_type`),
//! but a sysfs mount shows the network namespace of whoever mounted it. So the value is
//! read from the process's `/sys` when that is the namespace asked about (the link found
//! there has the same index and MAC), and otherwise from a fresh sysfs mounted by a
//! throw-away thread in a private mount namespace inside the namespace asked about.
//! Nothing outside that thread's mount namespace sees the mount.
//!
//! It matters for bridges: a bridge whose address was assigned by the kernel takes the
//! lowest MAC among its ports (all zeros when none is left), while one whose address was
//! set ([`AddrAssignType::Set`]) keeps it.

use std::path::{Path, PathBuf};

use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

use crate::error::{Error, Result};
use crate::link::{format_mac, Link};
use crate::netns::Netns;

/// `addr_assign_type` (`NET_ADDR_*` in `include/linux/netdevice.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddrAssignType {
    /// `NET_ADDR_PERM`: the device's own (burned-in) address.
    Permanent,
    /// `NET_ADDR_RANDOM`: generated at random by the kernel.
    Random,
    /// `NET_ADDR_STOLEN`: borrowed from another device.
    Stolen,
    /// `NET_ADDR_SET`: set from user space (`ip link set ... address`, `IFLA_ADDRESS`).
    Set,
}

impl AddrAssignType {
    fn parse(op: &str, value: &str) -> Result<Self> {
        match value.trim() {
            "0" => Ok(AddrAssignType::Permanent),
            "1" => Ok(AddrAssignType::Random),
            "2" => Ok(AddrAssignType::Stolen),
            "3" => Ok(AddrAssignType::Set),
            other => Err(Error::invalid(op, format!("unknown value {other:?}"))),
        }
    }
}

/// The `addr_assign_type` of `link`, a link of namespace `ns`.
pub fn addr_assign_type(ns: &Netns, link: &Link) -> Result<AddrAssignType> {
    let op = format!("read addr_assign_type of link {}", link.name);
    if link.name.is_empty() || link.name.contains('/') || link.name.starts_with('.') {
        return Err(Error::invalid(op, "not an interface name"));
    }
    let here = Path::new("/sys/class/net").join(&link.name);
    if same_link(&here, link) {
        if let Ok(value) = std::fs::read_to_string(here.join("addr_assign_type")) {
            return AddrAssignType::parse(&op, &value);
        }
    }
    let value = read_in_private_sysfs(ns, &link.name, &op)?;
    AddrAssignType::parse(&op, &value)
}

/// Whether the sysfs directory `dir` describes `link` (same index and MAC): then this
/// process's `/sys` shows the link's namespace.
fn same_link(dir: &Path, link: &Link) -> bool {
    let read = |attr: &str| std::fs::read_to_string(dir.join(attr)).ok();
    let index_matches = read("ifindex").is_some_and(|i| i.trim() == link.index.to_string());
    let mac_matches = match &link.mac {
        Some(mac) => read("address").is_some_and(|a| a.trim() == format_mac(mac)),
        None => false,
    };
    index_matches && mac_matches
}

/// Reads `addr_assign_type` of `name` from a sysfs mounted inside `ns`, by a thread with
/// a mount namespace of its own (gone when the thread ends).
fn read_in_private_sysfs(ns: &Netns, name: &str, op: &str) -> Result<String> {
    let target = PathBuf::from("/sys");
    let file = target.join("class/net").join(name).join("addr_assign_type");
    std::thread::scope(|s| {
        s.spawn(|| -> Result<String> {
            // CLONE_NEWNS unshares this thread's filesystem context too: the rest of the
            // process keeps its mounts and root.
            unshare(CloneFlags::CLONE_NEWNS)
                .map_err(|e| Error::nix(format!("{op}: unshare mount namespace"), e))?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|e| Error::nix(format!("{op}: make mounts private"), e))?;
            // The thread ends right after: no need to return to the original namespace.
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)
                .map_err(|e| Error::nix(format!("{op}: enter {}", ns.path().display()), e))?;
            mount(
                Some("sysfs"),
                &target,
                Some("sysfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
            .map_err(|e| Error::nix(format!("{op}: mount sysfs"), e))?;
            std::fs::read_to_string(&file)
                .map_err(|e| Error::io(format!("{op}: read {}", file.display()), e))
        })
        .join()
        .map_err(|_| Error::invalid(op, "sysfs reader thread panicked"))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_the_kernels_net_addr_constants() {
        assert_eq!(
            AddrAssignType::parse("t", "3\n").unwrap(),
            AddrAssignType::Set
        );
        assert_eq!(
            AddrAssignType::parse("t", "1").unwrap(),
            AddrAssignType::Random
        );
        assert!(AddrAssignType::parse("t", "7").is_err());
    }
}
