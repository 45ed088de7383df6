//! Who holds each reservation, remembered between calls so ADD and DEL need not read every
//! reservation file: finding a container's addresses used to open one file per reserved
//! address of the network, a cost that grew with the pods on the node.
//!
//! The index is kept in the network's `lock` file, which both implementations already make
//! and only ever flock: the directory's names stay exactly the reference's, and the
//! reference plugin, which reads every file when it looks for an owner, never takes the
//! index's JSON for one. It is a hint, checked against the directory on every use: an entry
//! counts only while a file of that name and inode exists, and a file it does not know
//! (written by the reference plugin, by an older version of ours, or by hand) is read and
//! added. A torn or unreadable index is an empty one, rebuilt by reading the files.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use serde::{Deserialize, Serialize};

use crate::owner::Owner;

/// The format's version: an index of another version is read as empty.
const VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    version: u32,
    /// By reservation file name.
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// The reservation file's inode: a file removed and made again is read again.
    ino: u64,
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ifname: Option<String>,
}

/// The index of one network directory, as loaded from its lock file.
#[derive(Debug, Default)]
pub(crate) struct OwnersIndex {
    stored: Stored,
    changed: bool,
}

impl OwnersIndex {
    /// Reads the index from the lock file; anything unreadable is an empty index.
    pub(crate) fn load(mut lock: &File) -> OwnersIndex {
        let mut text = Vec::new();
        let stored = lock
            .seek(SeekFrom::Start(0))
            .and_then(|_| lock.read_to_end(&mut text))
            .ok()
            .and_then(|_| serde_json::from_slice::<Stored>(&text).ok())
            .filter(|s| s.version == VERSION)
            .unwrap_or_default();
        OwnersIndex {
            stored,
            changed: false,
        }
    }

    /// The owner of file `name` when the index knows that very file (same inode).
    pub(crate) fn get(&self, name: &str, ino: u64) -> Option<Owner> {
        let entry = self.stored.entries.get(name).filter(|e| e.ino == ino)?;
        Some(Owner {
            container_id: entry.id.clone(),
            ifname: entry.ifname.clone(),
        })
    }

    /// Records that file `name` (inode `ino`) belongs to `owner`.
    pub(crate) fn insert(&mut self, name: &str, ino: u64, owner: &Owner) {
        let entry = Entry {
            ino,
            id: owner.container_id.clone(),
            ifname: owner.ifname.clone(),
        };
        if self.stored.entries.get(name) != Some(&entry) {
            self.stored.entries.insert(name.to_owned(), entry);
            self.changed = true;
        }
    }

    /// Forgets file `name`.
    pub(crate) fn remove(&mut self, name: &str) {
        self.changed |= self.stored.entries.remove(name).is_some();
    }

    /// Keeps only the files `exists` says are there.
    pub(crate) fn retain(&mut self, mut exists: impl FnMut(&str) -> bool) {
        let before = self.stored.entries.len();
        self.stored.entries.retain(|name, _| exists(name));
        self.changed |= self.stored.entries.len() != before;
    }

    /// Writes the index back into the lock file if it changed. A failure only costs the next
    /// call a full read, so it is logged, not returned.
    pub(crate) fn save(&mut self, mut lock: &File) {
        if !self.changed {
            return;
        }
        self.stored.version = VERSION;
        let text = serde_json::to_vec(&self.stored).expect("the index serializes");
        let written = lock
            .seek(SeekFrom::Start(0))
            .and_then(|_| lock.write_all(&text))
            .and_then(|()| lock.set_len(text.len() as u64));
        match written {
            Ok(()) => self.changed = false,
            Err(e) => tracing::debug!("owners index not saved: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(id: &str, ifname: Option<&str>) -> Owner {
        Owner {
            container_id: id.into(),
            ifname: ifname.map(Into::into),
        }
    }

    fn lock_file(dir: &tempfile::TempDir) -> File {
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.path().join("lock"))
            .unwrap()
    }

    #[test]
    fn entries_round_trip_through_the_lock_file_and_count_only_for_their_inode() {
        let dir = tempfile::tempdir().unwrap();
        let lock = lock_file(&dir);
        let mut index = OwnersIndex::load(&lock);
        index.insert("10.1.2.3", 7, &owner("c1", Some("eth0")));
        index.insert("10.1.2.4", 8, &owner("old", None));
        index.save(&lock);
        let mut again = OwnersIndex::load(&lock_file(&dir));
        assert_eq!(again.get("10.1.2.3", 7), Some(owner("c1", Some("eth0"))));
        assert_eq!(again.get("10.1.2.4", 8), Some(owner("old", None)));
        assert_eq!(again.get("10.1.2.3", 9), None, "another file of that name");
        again.retain(|name| name == "10.1.2.4");
        again.remove("10.1.2.4");
        again.save(&lock);
        assert_eq!(OwnersIndex::load(&lock).get("10.1.2.4", 8), None);
        // Shorter content than before: the old tail is cut off.
        let text = std::fs::read_to_string(dir.path().join("lock")).unwrap();
        assert!(serde_json::from_str::<Stored>(&text).is_ok(), "{text}");
    }

    #[test]
    fn an_empty_torn_or_foreign_lock_file_is_an_empty_index() {
        let dir = tempfile::tempdir().unwrap();
        for content in [
            "",
            "{\"version\":1,\"entr",
            "c1\r\neth0",
            "{\"version\":2,\"entries\":{}}",
        ] {
            std::fs::write(dir.path().join("lock"), content).unwrap();
            let index = OwnersIndex::load(&lock_file(&dir));
            assert!(index.stored.entries.is_empty(), "{content:?}");
        }
    }
}
