//! The agent's state directories (the socket's, the checkpoint's): made 0700 when missing,
//! so only root reaches the socket and reads who holds which address.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Makes the directory `path` lives in (and its parents) 0700 if missing; an existing one
/// is left as it is. On failure, the directory and the error.
pub(crate) fn create_parent(path: &Path) -> Result<(), (PathBuf, io::Error)> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| (dir.to_path_buf(), e)),
        None => Ok(()),
    }
}
