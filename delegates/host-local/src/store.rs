//! The reservation store, on disk in the reference's layout so a node can switch between
//! the reference plugin and ours in either direction without losing reservations:
//!
//! - `<dataDir>/<network>/` (0755), one directory per network;
//! - `<ip>`: one file per reserved address, named by the address text (RFC 5952 for IPv6,
//!   as Go prints it), holding `<containerID>\r\n<ifname>` with no trailing newline; files
//!   written by old reference versions hold the container ID alone, and are still honoured;
//! - `last_reserved_ip.<set>`: the address last reserved from range set `<set>`;
//! - `lock`: flock'd exclusively by every operation for its whole duration. Ours also keeps
//!   in it the index of who holds what ([`OwnersIndex`]), so finding a container's
//!   addresses does not read every reservation file; the reference never reads it as one;
//! - `.spare.<n>`: ours only, released reservations' files kept for the next ones
//!   ([`cni::spare_file`]); named by no address, so neither implementation reads one as a
//!   reservation.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, DirEntryExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use cni::Error;

use crate::owner::Owner;
use crate::owners_index::OwnersIndex;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The lock file's name.
pub(crate) const LOCK_FILE: &str = "lock";
/// The prefix of the per-range-set round-robin cursor files.
pub(crate) const LAST_RESERVED_PREFIX: &str = "last_reserved_ip.";
/// Mode of the files we create: reservations name containers, so they are not world-readable.
const FILE_MODE: u32 = 0o600;

/// One network's reservations, locked for as long as the value lives.
#[derive(Debug)]
pub(crate) struct Store {
    dir: PathBuf,
    /// Who holds what, saved into the lock file when the store is dropped (lock still held).
    index: RefCell<OwnersIndex>,
    lock: Flock<File>,
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
        let index = RefCell::new(OwnersIndex::load(&lock));
        Ok(Store { dir, index, lock })
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
        let owner = Owner::new(id, ifname);
        let content = owner.content();
        let made = cni::spare_file::take_whole(&self.dir, &path, content.as_bytes())
            .transpose()
            .unwrap_or_else(|| create_whole(&self.dir, &path, content.as_bytes()));
        let file = match made {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => return Ok(false),
            Err(e) => return Err(io("create reservation", &path, e)),
        };
        if let Err(e) = self.write_last_reserved(ip, set) {
            // A reservation whose ADD failed would hold the address forever.
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        // Not knowing the inode only costs the next call one read of this file.
        if let Ok(meta) = file.metadata() {
            self.index
                .borrow_mut()
                .insert(&ip.to_string(), meta.ino(), &owner);
        }
        Ok(true)
    }

    /// Overwrites the cursor in place, then cuts it to length. Opening it with `O_TRUNC`
    /// makes ext4 flush the previous, still delayed, content first (its replace-by-truncate
    /// heuristic): up to a millisecond per network per ADD. A crash between the two steps can
    /// leave a longer text, which at worst moves where the next search starts.
    fn write_last_reserved(&self, ip: IpAddr, set: usize) -> Result<(), Error> {
        let path = self.last_reserved_path(set);
        let text = ip.to_string();
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&path)
            .and_then(|mut f| {
                f.write_all(text.as_bytes())?;
                f.set_len(text.len() as u64)
            })
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
    /// reservations: `lock`, `last_reserved_ip.*` and anything else are left alone. Owners
    /// come from the index where it knows the file, else from the file (then indexed).
    pub(crate) fn reservations(&self) -> Result<Vec<(IpAddr, Owner)>, Error> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| io("read", &self.dir, e))?;
        let mut index = self.index.borrow_mut();
        let mut names = HashSet::new();
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io("read", &self.dir, e))?;
            let Some((name, ip)) = entry.file_name().to_str().and_then(|n| {
                let ip = n.parse::<IpAddr>().ok()?;
                Some((n.to_owned(), ip))
            }) else {
                continue;
            };
            if !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let ino = entry.ino();
            let owner = match index.get(&name, ino) {
                Some(owner) => Some(owner),
                None => {
                    let owner = self.owner(ip)?;
                    if let Some(owner) = &owner {
                        index.insert(&name, ino, owner);
                    }
                    owner
                }
            };
            names.insert(name);
            if let Some(owner) = owner {
                found.push((ip, owner));
            }
        }
        index.retain(|name| names.contains(name));
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

    /// Removes the reservation of `ip`, its file kept as a spare for the next one
    /// ([`cni::spare_file`]); already gone is fine.
    pub(crate) fn release(&self, ip: IpAddr) -> Result<(), Error> {
        let path = self.ip_path(ip);
        cni::spare_file::retire(&self.dir, &path).map_err(|e| io("remove", &path, e))?;
        self.index.borrow_mut().remove(&ip.to_string());
        Ok(())
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

/// Creates `path` in `dir` holding `content`, whole or not at all: the file is written
/// unnamed (`O_TMPFILE`) and then linked into place, failing with `AlreadyExists` when the
/// name is taken. A file created empty and written after would, if the process were killed
/// in between, stay empty: a reservation of no one's, never released. Where the filesystem
/// has no `O_TMPFILE`, the file is created and written in place.
fn create_whole(dir: &Path, path: &Path, content: &[u8]) -> std::io::Result<File> {
    use nix::fcntl::{AtFlags, OFlag, AT_FDCWD};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt as _;

    let unnamed = OpenOptions::new()
        .write(true)
        .mode(FILE_MODE)
        .custom_flags(OFlag::O_TMPFILE.bits())
        .open(dir);
    match unnamed {
        Ok(mut file) => {
            file.write_all(content)?;
            let fd_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
            nix::unistd::linkat(
                AT_FDCWD,
                &fd_path,
                AT_FDCWD,
                path,
                AtFlags::AT_SYMLINK_FOLLOW,
            )
            .map_err(std::io::Error::from)?;
            Ok(file)
        }
        Err(e)
            if [Errno::EOPNOTSUPP, Errno::EISDIR, Errno::EINVAL]
                .iter()
                .any(|n| e.raw_os_error() == Some(*n as i32)) =>
        {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(path)?;
            if let Err(e) = file.write_all(content) {
                let _ = std::fs::remove_file(path);
                return Err(e);
            }
            Ok(file)
        }
        Err(e) => Err(e),
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Runs before the fields drop: the lock is still held.
        self.index.get_mut().save(&self.lock);
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

    /// A reservation appears whole (written unnamed, then linked), a taken name is refused,
    /// and nothing else is left in the directory.
    #[test]
    fn a_reservation_is_created_whole_or_not_at_all() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("10.1.2.2");
        create_whole(tmp.path(), &path, b"c1\r\neth0").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"c1\r\neth0");
        let e = create_whole(tmp.path(), &path, b"c2\r\neth0").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"c1\r\neth0");
        assert_eq!(names(tmp.path()), ["10.1.2.2"]);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    /// The cursor is overwritten in place and cut to length: a shorter address leaves no
    /// tail of the longer one.
    #[test]
    fn a_shorter_cursor_replaces_a_longer_one_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), "net1").unwrap();
        assert!(store.reserve(ip("10.1.2.100"), "c1", "eth0", 0).unwrap());
        assert!(store.reserve(ip("10.1.2.9"), "c2", "eth0", 0).unwrap());
        let cursor = store.dir().join(format!("{LAST_RESERVED_PREFIX}0"));
        assert_eq!(std::fs::read_to_string(cursor).unwrap(), "10.1.2.9");
        assert_eq!(store.last_reserved(0), Some(ip("10.1.2.9")));
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
        assert_eq!(
            names(store.dir()),
            [".spare.0", ".spare.1", "last_reserved_ip.0", "lock"]
        );
    }

    #[test]
    fn a_released_reservation_file_is_the_next_ones_and_no_spare_is_a_reservation() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), "net1").unwrap();
        assert!(store
            .reserve(ip("10.1.2.2"), "a-long-container-id", "eth0", 0)
            .unwrap());
        let ino = std::fs::metadata(store.dir().join("10.1.2.2"))
            .unwrap()
            .ino();
        store.release(ip("10.1.2.2")).unwrap();
        assert!(store.reservations().unwrap().is_empty());
        assert_eq!(
            names(store.dir()),
            [".spare.0", "last_reserved_ip.0", "lock"]
        );

        assert!(store.reserve(ip("10.1.2.3"), "b", "net1", 0).unwrap());
        let file = store.dir().join("10.1.2.3");
        assert_eq!(std::fs::metadata(&file).unwrap().ino(), ino);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "b\r\nnet1");
        assert_eq!(store.find("b", "net1").unwrap(), [ip("10.1.2.3")]);
        assert!(store
            .find("a-long-container-id", "eth0")
            .unwrap()
            .is_empty());
        // Taken already: refused, and the spare-less store makes files as before.
        assert!(!store.reserve(ip("10.1.2.3"), "c", "eth0", 0).unwrap());
        assert!(store.reserve(ip("10.1.2.4"), "c", "eth0", 0).unwrap());
        assert_eq!(
            names(store.dir()),
            ["10.1.2.3", "10.1.2.4", "last_reserved_ip.0", "lock"]
        );
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

    /// The index answers for files it knows (same name, same inode); files written behind
    /// its back, new or replaced, are read; files removed behind its back are forgotten.
    #[test]
    fn owners_come_from_the_index_and_files_changed_behind_it_are_read() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path(), "net1").unwrap();
        assert!(store.reserve(ip("10.1.2.2"), "c1", "eth0", 0).unwrap());
        let dir = store.dir().to_path_buf();
        drop(store);
        let lock = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
        assert!(
            lock.contains("\"10.1.2.2\"") && lock.contains("c1"),
            "{lock}"
        );
        // Another implementation reserves 10.1.2.3.
        std::fs::write(dir.join("10.1.2.3"), "c2\r\neth0").unwrap();
        let store = Store::open(tmp.path(), "net1").unwrap();
        assert_eq!(store.find("c2", "eth0").unwrap(), [ip("10.1.2.3")]);
        assert_eq!(store.find("c1", "eth0").unwrap(), [ip("10.1.2.2")]);
        drop(store);
        // ...then replaces it (a new file over the old name) and removes 10.1.2.2.
        std::fs::write(dir.join("tmp"), "c3\r\neth0").unwrap();
        std::fs::rename(dir.join("tmp"), dir.join("10.1.2.3")).unwrap();
        std::fs::remove_file(dir.join("10.1.2.2")).unwrap();
        let store = Store::open(tmp.path(), "net1").unwrap();
        assert_eq!(store.find("c3", "eth0").unwrap(), [ip("10.1.2.3")]);
        assert!(store.find("c2", "eth0").unwrap().is_empty());
        assert!(store.find("c1", "eth0").unwrap().is_empty());
        assert_eq!(store.release_owner("c3", "eth0").unwrap(), [ip("10.1.2.3")]);
        drop(store);
        let lock = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap();
        assert!(
            !lock.contains("10.1.2."),
            "everything released is forgotten: {lock}"
        );
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
