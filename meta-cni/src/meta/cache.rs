//! The per-pod cache: the attachment plan, written before the first delegate runs and again
//! with the results once ADD is done, so DEL can undo exactly what ADD did, even after a
//! crash mid-ADD.
//!
//! One file per (container ID, interface) in `cniDir`, 0600 in a 0700 directory, made at
//! ADD in a spare's inode where the directory keeps one and kept as a spare at DEL
//! ([`cni::spare_file`]). Not fsynced:
//! a killed plugin leaves the page cache intact, and a power loss takes the pod's
//! namespace and links with it (GC then releases what is left), so a sync would only add
//! milliseconds to every ADD.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::attachment::Attachment;
use super::error::CacheError;

/// The longest file name most filesystems accept.
const NAME_MAX: usize = 255;
const SUFFIX: &str = ".meta-cni.json";

/// What is cached for one pod.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// `CNI_CONTAINERID`.
    #[serde(rename = "containerID")]
    pub(crate) container_id: String,
    /// `CNI_IFNAME` of the meta plugin's call.
    pub(crate) ifname: String,
    /// `CNI_NETNS` of the ADD, so GC can remove the pod's interfaces too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) netns: Option<PathBuf>,
    /// The attachments, in ADD order.
    pub(crate) attachments: Vec<Attachment>,
    /// The pod's network-status once ADD finished (also what Kubernetes mode PATCHes), so
    /// standalone runs can show it too.
    #[serde(
        rename = "networkStatus",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub(crate) network_status: Vec<nad_crd::NetworkStatus>,
}

/// Makes the cache directory (0700) if it does not exist.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), CacheError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| CacheError::CreateDir {
            dir: dir.to_path_buf(),
            source,
        })
}

/// The cache file of one (container ID, interface) pair.
///
/// The file is `<containerID>+<ifname>.meta-cni.json`: a container ID never holds `+`
/// (the skeleton validated it), so no two pairs share a name; and what a file holds is
/// checked against the pair on read all the same.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    file: PathBuf,
    container_id: String,
    ifname: String,
}

impl Slot {
    /// The slot of (`container_id`, `ifname`), both validated by the skeleton; a name too
    /// long for a file is refused before anything is opened.
    pub(crate) fn new(dir: &Path, container_id: &str, ifname: &str) -> Result<Slot, CacheError> {
        let name = format!("{container_id}+{ifname}{SUFFIX}");
        if name.len() > NAME_MAX {
            return Err(CacheError::NameTooLong {
                len: name.len(),
                max: NAME_MAX,
            });
        }
        Ok(Slot {
            file: dir.join(name),
            container_id: container_id.to_string(),
            ifname: ifname.to_string(),
        })
    }

    /// The file, for messages.
    pub(crate) fn file(&self) -> &Path {
        &self.file
    }

    /// Writes `entry` atomically.
    pub(crate) fn write(&self, entry: &Entry) -> Result<(), CacheError> {
        write(&self.file, entry)
    }

    /// Writes the first entry of a pair that has none (its plan, before any delegate runs),
    /// straight into its file, a spare's where the directory keeps one, else a new one: the
    /// container's lock keeps readers out meanwhile, and a crash halfway leaves a file that
    /// reads as corrupt, from which DEL falls back to the config. No temporary file (it
    /// would cost an inode per ADD).
    pub(crate) fn create(&self, entry: &Entry) -> Result<(), CacheError> {
        let dir = self.file.parent().expect("cache files live in a directory");
        ensure_dir(dir)?;
        let bytes = serde_json::to_vec(entry).map_err(|source| CacheError::Encode { source })?;
        let claimed = cni::spare_file::claim(dir, &self.file).map(Ok);
        let made = claimed.unwrap_or_else(|| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&self.file)
        });
        let mut file = match made {
            Ok(f) => f,
            // Left by a crash before any delegate ran: replace it as any entry is.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return self.write(entry),
            Err(source) => {
                return Err(CacheError::CreateFile {
                    dir: dir.to_path_buf(),
                    source,
                })
            }
        };
        // A spare holds zeros as long as its last entry: cut to this one's length.
        file.write_all(&bytes)
            .and_then(|()| file.set_len(bytes.len() as u64))
            .map_err(|source| CacheError::Write {
                file: self.file.clone(),
                source,
            })
    }

    /// Replaces the entry [`Slot::create`] made, in place: ADD's final write, under the
    /// container's lock. A crash halfway leaves a file that reads as corrupt, as after
    /// `create`, and DEL falls back to the config; in exchange no inode is made (a temporary
    /// file and a rename would cost one on every ADD).
    pub(crate) fn overwrite(&self, entry: &Entry) -> Result<(), CacheError> {
        let bytes = serde_json::to_vec(entry).map_err(|source| CacheError::Encode { source })?;
        let write = |source| CacheError::Write {
            file: self.file.clone(),
            source,
        };
        // Written over, then cut to length: opened with O_TRUNC, ext4 would flush the
        // entry `create` wrote at this close (its replace-by-truncate heuristic).
        std::fs::OpenOptions::new()
            .write(true)
            .open(&self.file)
            .and_then(|mut file| {
                file.write_all(&bytes)?;
                file.set_len(bytes.len() as u64)
            })
            .map_err(write)
    }

    /// Reads the entry; one that belongs to another pair is corrupt.
    pub(crate) fn read(&self) -> Result<Read, CacheError> {
        Ok(match read(&self.file)? {
            Read::Found(entry)
                if entry.container_id != self.container_id || entry.ifname != self.ifname =>
            {
                Read::Corrupt(format!(
                    "it holds container {:?} on {:?}",
                    entry.container_id, entry.ifname
                ))
            }
            other => other,
        })
    }

    /// Removes the file, kept as a spare for the next entry ([`cni::spare_file`]); gone
    /// already is fine.
    pub(crate) fn remove(&self) -> Result<(), CacheError> {
        let dir = self.file.parent().expect("cache files live in a directory");
        cni::spare_file::retire(dir, &self.file).map_err(|source| CacheError::Remove {
            file: self.file.clone(),
            source,
        })
    }
}

/// Writes `entry` to `file` atomically.
fn write(file: &Path, entry: &Entry) -> Result<(), CacheError> {
    let dir = file.parent().expect("cache files live in a directory");
    ensure_dir(dir)?;
    let bytes = serde_json::to_vec(entry).map_err(|source| CacheError::Encode { source })?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(|source| CacheError::CreateFile {
            dir: dir.to_path_buf(),
            source,
        })?;
    tmp.write_all(&bytes).map_err(|source| CacheError::Write {
        file: file.to_path_buf(),
        source,
    })?;
    tmp.persist(file).map_err(|e| CacheError::Replace {
        file: file.to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// What reading the cache found.
#[derive(Debug)]
pub(crate) enum Read {
    /// A valid entry.
    Found(Entry),
    /// No cache file.
    Missing,
    /// A file that does not decode, or belongs to another pair (the text says why).
    Corrupt(String),
}

/// Reads a cache file.
fn read(file: &Path) -> Result<Read, CacheError> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Read::Missing),
        Err(source) => {
            return Err(CacheError::Read {
                file: file.to_path_buf(),
                source,
            })
        }
    };
    Ok(match serde_json::from_slice(&bytes) {
        Ok(entry) => Read::Found(entry),
        Err(e) => Read::Corrupt(e.to_string()),
    })
}

/// Every cache file in `dir`, sorted by name, with what reading it found (a missing
/// directory has none; a file that cannot be read is `Corrupt`): what `meta-cni inspect`
/// shows.
pub(crate) fn scan(dir: &Path) -> Result<Vec<(PathBuf, Read)>, CacheError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(CacheError::Read {
                file: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(SUFFIX))
        .collect();
    files.sort();
    Ok(files
        .into_iter()
        .map(|file| {
            // A file that cannot be read is reported as such, beside the others.
            let found = read(&file).unwrap_or_else(|e| {
                let e = cni::Error::from(e);
                Read::Corrupt(format!("{}: {}", e.msg, e.details))
            });
            (file, found)
        })
        .collect())
}

/// Every cache entry in `dir` (for GC), with its slot; unreadable files, and files whose
/// name is not their entry's, are skipped.
pub(crate) fn all(dir: &Path) -> Vec<(Slot, Entry)> {
    scan(dir)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(file, found)| match found {
            Read::Found(entry) => {
                let slot = Slot::new(dir, &entry.container_id, &entry.ifname).ok()?;
                (slot.file == file).then_some((slot, entry))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_atomically_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let cache_dir = dir.path().join("cache");
        let slot = Slot::new(&cache_dir, "c1", "eth0").unwrap();
        let entry = Entry {
            container_id: "c1".into(),
            ifname: "eth0".into(),
            netns: None,
            network_status: Vec::new(),
            attachments: Vec::new(),
        };
        slot.write(&entry).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&cache_dir), 0o700);
        assert_eq!(mode(slot.file()), 0o600);
        match slot.read().unwrap() {
            Read::Found(e) => assert_eq!(e, entry),
            other => panic!("{other:?}"),
        }
        assert_eq!(all(&cache_dir).len(), 1);
        std::fs::write(slot.file(), b"{not json").unwrap();
        assert!(matches!(slot.read().unwrap(), Read::Corrupt(_)));
        slot.remove().unwrap();
        slot.remove().unwrap();
        assert!(matches!(slot.read().unwrap(), Read::Missing));
    }

    #[test]
    fn pairs_that_join_alike_get_distinct_files_and_foreign_entries_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let a = Slot::new(dir.path(), "p", "x_eth0").unwrap();
        let b = Slot::new(dir.path(), "p_x", "eth0").unwrap();
        assert_ne!(a.file(), b.file());
        let entry = |id: &str, ifname: &str| Entry {
            container_id: id.into(),
            ifname: ifname.into(),
            netns: None,
            network_status: Vec::new(),
            attachments: Vec::new(),
        };
        a.write(&entry("p", "x_eth0")).unwrap();
        b.write(&entry("p_x", "eth0")).unwrap();
        assert!(matches!(a.read().unwrap(), Read::Found(e) if e.container_id == "p"));
        assert!(matches!(b.read().unwrap(), Read::Found(e) if e.container_id == "p_x"));
        // A file holding another pair's entry (copied, or from an older layout).
        std::fs::copy(b.file(), a.file()).unwrap();
        assert!(matches!(a.read().unwrap(), Read::Corrupt(why) if why.contains("p_x")));
        assert_eq!(all(dir.path()).len(), 1);
    }

    #[test]
    fn over_long_names_are_refused_before_any_file_is_opened() {
        let e = Slot::new(Path::new("/nonexistent"), &"a".repeat(300), "eth0").unwrap_err();
        let e = cni::Error::from(e);
        assert_eq!(e.code, cni::ErrorCode::INVALID_ENVIRONMENT);
        assert_eq!(e.msg, "CNI_CONTAINERID is too long");
    }

    #[test]
    fn create_then_overwrite_in_place_keeps_one_file_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let slot = Slot::new(dir.path(), "c1", "eth0").unwrap();
        let mut entry = Entry {
            container_id: "c1".into(),
            ifname: "eth0".into(),
            netns: None,
            network_status: Vec::new(),
            attachments: Vec::new(),
        };
        slot.create(&entry).unwrap();
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(slot.file());
        entry.netns = Some("/run/netns/a-much-longer-name-than-before".into());
        slot.overwrite(&entry).unwrap();
        entry.netns = None;
        slot.overwrite(&entry).unwrap();
        assert_eq!(inode(slot.file()), before, "rewritten in place");
        assert!(matches!(slot.read().unwrap(), Read::Found(e) if e == entry));
        let mode = std::fs::metadata(slot.file()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // A file left by a crash before any delegate ran is replaced.
        std::fs::write(slot.file(), b"{trunc").unwrap();
        slot.create(&entry).unwrap();
        assert!(matches!(slot.read().unwrap(), Read::Found(_)));
    }

    #[test]
    fn a_removed_entry_file_is_the_next_pairs_holding_only_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let entry = |id: &str, netns: Option<&str>| Entry {
            container_id: id.into(),
            ifname: "eth0".into(),
            netns: netns.map(Into::into),
            network_status: Vec::new(),
            attachments: Vec::new(),
        };
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let a = Slot::new(dir.path(), "a", "eth0").unwrap();
        a.create(&entry("a", Some("/run/netns/a-longer-entry-than-the-next")))
            .unwrap();
        let ino = inode(a.file());
        a.remove().unwrap();
        assert!(matches!(a.read().unwrap(), Read::Missing));
        assert!(scan(dir.path()).unwrap().is_empty(), "a spare is no entry");

        let b = Slot::new(dir.path(), "b", "eth0").unwrap();
        b.create(&entry("b", None)).unwrap();
        assert_eq!(inode(b.file()), ino);
        assert!(matches!(b.read().unwrap(), Read::Found(e) if e == entry("b", None)));
        assert_eq!(all(dir.path()).len(), 1);
    }
}
