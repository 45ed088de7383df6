//! The reservation store, on disk in the reference's layout so a node can switch between
//! the reference plugin and ours in either direction without losing reservations:
//!
//! - `<dataDir>/<network>/` (0755), one directory per network;
//! - `<ip>`: one file per reserved address, named by the address text (RFC 5952 for IPv6,
//!   as Go prints it), holding `<containerID>\r\n<ifname>` with no trailing newline; files
//!   written by old reference versions hold the container ID alone, and are still honoured;
//! - `last_reserved_ip.<set>`: the address last reserved from range set `<set>`;
//! - `lock`: flock'd exclusively by every operation for its whole duration.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use cni::Error;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Separates the container ID from the interface name in a reservation file.
const LINE_BREAK: &str = "\r\n";
/// The lock file's name.
pub(crate) const LOCK_FILE: &str = "lock";
/// The prefix of the per-range-set round-robin cursor files.
pub(crate) const LAST_RESERVED_PREFIX: &str = "last_reserved_ip.";
/// Mode of the files we create: reservations name containers, so they are not world-readable.
const FILE_MODE: u32 = 0o600;

/// Who holds a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    /// The container ID.
    pub(crate) container_id: String,
    /// The interface name; `None` for the old id-only format.
    pub(crate) ifname: Option<String>,
}

impl Owner {
    /// Reads a reservation file's content (surrounding whitespace ignored, as the reference).
    pub(crate) fn parse(content: &str) -> Owner {
        let content = content.trim();
        match content.split_once(LINE_BREAK) {
            Some((id, ifname)) => Owner {
                container_id: id.to_string(),
                ifname: Some(ifname.to_string()),
            },
            None => Owner {
                container_id: content.to_string(),
                ifname: None,
            },
        }
    }

    /// The file content for `(id, ifname)`.
    pub(crate) fn render(id: &str, ifname: &str) -> String {
        format!("{}{LINE_BREAK}{ifname}", id.trim())
    }

    /// Whether this is exactly `(id, ifname)` in the current format.
    pub(crate) fn is(&self, id: &str, ifname: &str) -> bool {
        self.container_id == id.trim() && self.ifname.as_deref() == Some(ifname)
    }

    /// Whether this is an old-format reservation of container `id`.
    pub(crate) fn is_legacy_of(&self, id: &str) -> bool {
        self.ifname.is_none() && self.container_id == id.trim()
    }

    /// Whether this belongs to `(id, ifname)` in either format.
    pub(crate) fn matches(&self, id: &str, ifname: &str) -> bool {
        self.is(id, ifname) || self.is_legacy_of(id)
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.ifname {
            Some(ifname) => write!(f, "{}/{ifname}", self.container_id),
            None => f.write_str(&self.container_id),
        }
    }
}

/// One network's reservations, locked for as long as the value lives.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    _lock: Flock<File>,
}

fn io(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(format!("{what} {}", path.display()), e)
}

impl Store {
    /// Opens (creating it if needed) the directory of `network` under `data_dir` and takes
    /// its lock, waiting for any other holder.
    pub(crate) fn open(data_dir: &Path, network: &str) -> Result<Store, Error> {
        let dir = data_dir.join(network);
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)
            .map_err(|e| io("create data dir", &dir, e))?;
        Store::lock(dir)
    }

    /// As [`Store::open`], but `None` when the network has no directory (nothing was ever
    /// reserved there), which is then left unmade: what DEL needs.
    pub(crate) fn open_existing(data_dir: &Path, network: &str) -> Result<Option<Store>, Error> {
        let dir = data_dir.join(network);
        match std::fs::metadata(&dir) {
            Ok(_) => Store::lock(dir).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("stat data dir", &dir, e)),
        }
    }

    /// Takes the lock of the network directory `dir`, waiting for any other holder.
    fn lock(dir: PathBuf) -> Result<Store, Error> {
        let lock_path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&lock_path)
            .map_err(|e| io("open lock", &lock_path, e))?;
        let lock = loop {
            match Flock::lock(file, FlockArg::LockExclusive) {
                Ok(lock) => break lock,
                Err((f, Errno::EINTR)) => file = f,
                Err((_, e)) => return Err(io("lock", &lock_path, e)),
            }
        };
        Ok(Store { dir, _lock: lock })
    }

    /// The network's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn ip_path(&self, ip: IpAddr) -> PathBuf {
        self.dir.join(ip.to_string())
    }

    fn last_reserved_path(&self, set: usize) -> PathBuf {
        self.dir.join(format!("{LAST_RESERVED_PREFIX}{set}"))
    }

    /// Reserves `ip` for `(id, ifname)` and records it as set `set`'s last reservation.
    /// `false` when someone already holds it.
    pub(crate) fn reserve(
        &self,
        ip: IpAddr,
        id: &str,
        ifname: &str,
        set: usize,
    ) -> Result<bool, Error> {
        let path = self.ip_path(ip);
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(io("create reservation", &path, e)),
        };
        let written = file
            .write_all(Owner::render(id, ifname).as_bytes())
            .map_err(|e| io("write reservation", &path, e))
            .and_then(|()| self.write_last_reserved(ip, set));
        if let Err(e) = written {
            // A half-made reservation would hold the address forever.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        Ok(true)
    }

    fn write_last_reserved(&self, ip: IpAddr, set: usize) -> Result<(), Error> {
        let path = self.last_reserved_path(set);
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&path)
            .and_then(|mut f| f.write_all(ip.to_string().as_bytes()))
            .map_err(|e| io("write", &path, e))
    }

    /// The address last reserved from set `set`, if recorded and readable.
    pub(crate) fn last_reserved(&self, set: usize) -> Option<IpAddr> {
        std::fs::read_to_string(self.last_reserved_path(set))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Who holds `ip`, if anyone.
    pub(crate) fn owner(&self, ip: IpAddr) -> Result<Option<Owner>, Error> {
        let path = self.ip_path(ip);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(Owner::parse(&text))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read reservation", &path, e)),
        }
    }

    /// Every reservation in the directory, by address. Only files named by an address are
    /// reservations: `lock`, `last_reserved_ip.*` and anything else are left alone.
    pub(crate) fn reservations(&self) -> Result<Vec<(IpAddr, Owner)>, Error> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io("read", &self.dir, e))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io("read", &self.dir, e))?;
            let Some(ip) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<IpAddr>().ok())
            else {
                continue;
            };
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            if let Some(owner) = self.owner(ip)? {
                found.push((ip, owner));
            }
        }
        found.sort_by_key(|(ip, _)| (ip.is_ipv6(), crate::range::to_bits(*ip)));
        Ok(found)
    }

    /// The addresses held by `(id, ifname)`, in either format.
    pub(crate) fn find(&self, id: &str, ifname: &str) -> Result<Vec<IpAddr>, Error> {
        Ok(self
            .reservations()?
            .into_iter()
            .filter(|(_, o)| o.matches(id, ifname))
            .map(|(ip, _)| ip)
            .collect())
    }

    /// Removes the reservation of `ip`; already gone is fine.
    pub(crate) fn release(&self, ip: IpAddr) -> Result<(), Error> {
        let path = self.ip_path(ip);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io("remove", &path, e)),
            _ => Ok(()),
        }
    }

    /// Releases every address of `(id, ifname)`; if there is none, the old-format
    /// reservations of container `id` (as the reference does). Returns what was released.
    pub(crate) fn release_owner(&self, id: &str, ifname: &str) -> Result<Vec<IpAddr>, Error> {
        let all = self.reservations()?;
        let mut mine: Vec<IpAddr> = all
            .iter()
            .filter(|(_, o)| o.is(id, ifname))
            .map(|(ip, _)| *ip)
            .collect();
        if mine.is_empty() {
            mine = all
                .iter()
                .filter(|(_, o)| o.is_legacy_of(id))
                .map(|(ip, _)| *ip)
                .collect();
        }
        for ip in &mine {
            self.release(*ip)?;
        }
        Ok(mine)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn layout_matches_the_reference() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("nested/data"), "net1").unwrap();
        assert!(store.reserve(ip("10.1.2.2"), "c1", "eth0", 0).unwrap());
        assert!(store.reserve(ip("fd00::0:2"), "c1", "eth0", 1).unwrap());
        assert!(!store.reserve(ip("10.1.2.2"), "c2", "eth0", 0).unwrap());
        let dir = store.dir().to_path_buf();
        assert_eq!(
            names(&dir),
            [
                "10.1.2.2",
                "fd00::2",
                "last_reserved_ip.0",
                "last_reserved_ip.1",
                "lock"
            ]
        );
        assert_eq!(
            std::fs::read(dir.join("10.1.2.2")).unwrap(),
            b"c1\r\neth0".to_vec()
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("last_reserved_ip.1")).unwrap(),
            "fd00::2"
        );
        let mode = |n: &str| std::fs::metadata(dir.join(n)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("10.1.2.2"), 0o600);
        assert_eq!(mode("lock"), 0o600);
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(store.last_reserved(0), Some(ip("10.1.2.2")));
        assert_eq!(store.last_reserved(7), None);
    }

    #[test]
    fn old_format_is_found_and_released_only_as_fallback() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), "net1").unwrap();
        std::fs::write(store.dir().join("10.1.2.3"), "c1\n").unwrap();
        assert!(store.reserve(ip("10.1.2.4"), "c1", "eth0", 0).unwrap());
        assert_eq!(
            store.find("c1", "eth0").unwrap(),
            [ip("10.1.2.3"), ip("10.1.2.4")]
        );
        assert_eq!(
            store.owner(ip("10.1.2.3")).unwrap().unwrap().to_string(),
            "c1"
        );
        // The current-format match wins; the old file goes only when nothing else matches.
        assert_eq!(store.release_owner("c1", "eth0").unwrap(), [ip("10.1.2.4")]);
        assert_eq!(store.release_owner("c1", "eth0").unwrap(), [ip("10.1.2.3")]);
        assert!(store.release_owner("c1", "eth0").unwrap().is_empty());
        assert_eq!(names(store.dir()), ["last_reserved_ip.0", "lock"]);
    }

    #[test]
    fn release_owner_keeps_other_interfaces() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), "net1").unwrap();
        assert!(store.reserve(ip("10.1.2.2"), "c1", "eth0", 0).unwrap());
        assert!(store.reserve(ip("10.1.2.3"), "c1", "net1", 0).unwrap());
        assert_eq!(store.release_owner("c1", "eth0").unwrap(), [ip("10.1.2.2")]);
        assert_eq!(
            store.reservations().unwrap(),
            [(
                ip("10.1.2.3"),
                Owner {
                    container_id: "c1".into(),
                    ifname: Some("net1".into())
                }
            )]
        );
    }

    #[test]
    fn owner_parsing() {
        assert_eq!(
            Owner::parse(" c1\r\neth0\n"),
            Owner {
                container_id: "c1".into(),
                ifname: Some("eth0".into())
            }
        );
        assert!(Owner::parse("c1\r\neth0").is("c1", "eth0"));
        assert!(!Owner::parse("c1\r\neth0").is_legacy_of("c1"));
        assert!(Owner::parse("c1").matches("c1", "eth9"));
        assert!(!Owner::parse("c1\r\neth1").matches("c1", "eth0"));
        assert_eq!(Owner::render("c1", "eth0"), "c1\r\neth0");
    }

    #[test]
    fn lock_is_exclusive() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), "net1").unwrap();
        let file = File::open(store.dir().join(LOCK_FILE)).unwrap();
        let Err((_, e)) = Flock::lock(file, FlockArg::LockExclusiveNonblock) else {
            panic!("the lock was free while the store was open");
        };
        assert_eq!(e, Errno::EWOULDBLOCK);
        drop(store);
        let file = File::open(tmp.path().join("net1").join(LOCK_FILE)).unwrap();
        assert!(Flock::lock(file, FlockArg::LockExclusiveNonblock).is_ok());
    }
}
