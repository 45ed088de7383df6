//! Files kept for reuse in a directory of per-container state (host-local's reservations,
//! the meta plugin's cache entries). A file removed at DEL is instead moved aside under a
//! spare name, and the next ADD takes it back under its own name: a node's pod churn then
//! makes and frees no inode. On ext4 without a journal, every new inode skips each one freed
//! in the last seconds (`recently_deleted`), so making files costs more the busier the node;
//! a reused inode costs a rename.
//!
//! Spares are named `.spare.<n>`, `n` below [`SPARES`]: dot files, named by no address and
//! ending in no state suffix, so no reader of the directory (ours or the reference
//! plugins') takes one for state. A spare's text is cleared (zeros) when it is kept.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{renameat2, OFlag, RenameFlags, AT_FDCWD};

/// How many spares a directory keeps; a file retired beyond them is removed.
pub const SPARES: usize = 4;

/// The spare names' prefix.
pub const SPARE_PREFIX: &str = ".spare.";

/// Whether `name` is a spare's (for listings that show state).
pub fn is_spare(name: &str) -> bool {
    name.strip_prefix(SPARE_PREFIX)
        .is_some_and(|n| n.parse::<usize>().is_ok_and(|n| n < SPARES))
}

fn spare(dir: &Path, n: usize) -> PathBuf {
    dir.join(format!("{SPARE_PREFIX}{n}"))
}

/// `path` opened for writing; a symlink is not followed (a spare is a file we made).
fn open_for_writing(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(path)
}

/// `from` renamed to `to`, never over an existing `to`.
fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE)
        .map_err(std::io::Error::from)
}

/// Writes zeros over a spare's text, so that a spare holds nothing of its last owner's
/// (whoever looks for a container's files by their text finds none). Not cut to zero
/// length: that would make ext4 flush the file at the next close of a write to it.
fn clear(spare: &Path) -> std::io::Result<()> {
    let mut file = open_for_writing(spare)?;
    let len = file.metadata()?.len();
    file.write_all(&vec![0; len as usize])
}

/// Removes `file`, a file of `dir`, keeping its inode as a spare, its text cleared, when
/// `dir` has a free spare name. Gone already is fine.
pub fn retire(dir: &Path, file: &Path) -> std::io::Result<()> {
    for n in 0..SPARES {
        let to = spare(dir, n);
        match rename_noreplace(file, &to) {
            // A spare that cannot be cleared is not kept.
            Ok(()) => return clear(&to).or_else(|_| std::fs::remove_file(&to)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            // A file system without RENAME_NOREPLACE: no spares there.
            Err(e) if e.raw_os_error() == Some(Errno::EINVAL as i32) => break,
            Err(e) => return Err(e),
        }
    }
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Puts `content` in a spare of `dir` and renames it to `file`: the file appears whole or
/// not at all. `None` when `dir` has no usable spare (the caller makes the file as it would
/// have, and reports what fails then); `AlreadyExists` when `file` exists, and the spare
/// stays one. The caller keeps other takers out of `dir` meanwhile (two writing into one
/// spare would mix their texts): host-local holds its network's lock.
pub fn take_whole(dir: &Path, file: &Path, content: &[u8]) -> std::io::Result<Option<File>> {
    for n in 0..SPARES {
        let from = spare(dir, n);
        // Anything but a regular file of ours under a spare's name is passed over.
        let Ok(mut spare_file) = open_for_writing(&from) else {
            continue;
        };
        // Written over, then cut to length: a cut to zero would make ext4 flush the file
        // at its close (its replace-by-truncate heuristic).
        let written = spare_file
            .write_all(content)
            .and_then(|()| spare_file.set_len(content.len() as u64));
        if written.is_err() {
            return Ok(None);
        }
        return match rename_noreplace(&from, file) {
            Ok(()) => Ok(Some(spare_file)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(e),
            Err(_) => Ok(None),
        };
    }
    Ok(None)
}

/// Renames a spare of `dir` to `file` and opens it for writing, for a caller that writes
/// the file in place after (its readers take a partial text for a corrupt one). Takers
/// need no lock: a spare goes to one of them. `None` when `dir` has no spare, `file`
/// exists, or the spare taken is no file to write (the caller makes its file as it would
/// have, and reports what fails then).
pub fn claim(dir: &Path, file: &Path) -> Option<File> {
    for n in 0..SPARES {
        match rename_noreplace(&spare(dir, n), file) {
            Ok(()) => return open_for_writing(file).ok(),
            // Another taker's, or never made.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(_) => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_retired_file_is_taken_back_with_its_inode_and_the_new_text_only() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("10.0.0.2");
        std::fs::write(&a, "a much longer first owner\r\neth0").unwrap();
        let ino = std::fs::metadata(&a).unwrap().ino();
        retire(dir.path(), &a).unwrap();
        assert_eq!(names(dir.path()), [".spare.0"]);
        let kept = std::fs::read(spare(dir.path(), 0)).unwrap();
        assert!(kept.len() == 31 && kept.iter().all(|b| *b == 0), "{kept:?}");

        let b = dir.path().join("10.0.0.3");
        let file = take_whole(dir.path(), &b, b"b\r\nnet1").unwrap().unwrap();
        assert_eq!(file.metadata().unwrap().ino(), ino);
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b\r\nnet1");
        assert_eq!(names(dir.path()), ["10.0.0.3"]);
        // No spare left: the caller makes its file.
        assert!(take_whole(dir.path(), &a, b"x").unwrap().is_none());
    }

    #[test]
    fn taking_over_an_existing_file_fails_and_keeps_the_spare() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, "a").unwrap();
        retire(dir.path(), &a).unwrap();
        let b = dir.path().join("b");
        std::fs::write(&b, "b's").unwrap();
        let e = take_whole(dir.path(), &b, b"other").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b's");
        assert_eq!(names(dir.path()), [".spare.0", "b"]);
        assert!(claim(dir.path(), &b).is_none());
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b's");
    }

    #[test]
    fn spares_are_bounded_and_retiring_what_is_gone_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..SPARES + 2 {
            let f = dir.path().join(format!("f{n}"));
            std::fs::write(&f, "x").unwrap();
            retire(dir.path(), &f).unwrap();
        }
        let left = names(dir.path());
        assert_eq!(left.len(), SPARES, "{left:?}");
        assert!(left.iter().all(|n| is_spare(n)), "{left:?}");
        retire(dir.path(), &dir.path().join("never")).unwrap();
        assert!(!is_spare(".spare.x") && !is_spare("10.0.0.2") && !is_spare(".spare.99"));
    }

    #[test]
    fn what_is_no_spare_file_of_ours_is_passed_over_and_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("not-ours");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, spare(dir.path(), 0)).unwrap();
        std::fs::create_dir(spare(dir.path(), 1)).unwrap();
        let file = dir.path().join("10.0.0.2");
        assert!(take_whole(dir.path(), &file, b"c\r\neth0")
            .unwrap()
            .is_none());
        assert!(!file.exists());
        // A claimer that takes the symlink does not write through it either.
        assert!(claim(dir.path(), &file).is_none());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    #[test]
    fn racing_claimers_each_get_their_own_spare_or_none() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..2 {
            let f = dir.path().join(format!("old{n}"));
            std::fs::write(&f, "old").unwrap();
            retire(dir.path(), &f).unwrap();
        }
        let claimed: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|n| {
                    let file = dir.path().join(format!("new{n}"));
                    let dir = dir.path();
                    s.spawn(move || claim(dir, &file).is_some())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(claimed.iter().filter(|c| **c).count(), 2, "{claimed:?}");
        let left = names(dir.path());
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().all(|n| n.starts_with("new")), "{left:?}");
    }
}
