//! The daemon's socket: its directory made 0700 when missing (an existing one is left as
//! it is), a stale socket from an earlier run replaced (never another kind of file), the
//! socket 0600, so only root reaches it; and its removal on the way out, so shims see at
//! once that the daemon is gone.

use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
use std::path::Path;

use tokio::net::UnixListener;

use super::error::DaemonError;

/// Binds `path`; must run inside the runtime.
pub(crate) fn bind(path: &Path) -> Result<UnixListener, DaemonError> {
    let failed = |doing, path: &Path| {
        let path = path.to_path_buf();
        move |source| DaemonError::Socket {
            doing,
            path,
            source,
        }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(failed("create the directory", dir))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(failed("remove the stale socket", path))?
        }
        Ok(_) => {
            return Err(DaemonError::Socket {
                doing: "refuse to replace a file that is not a socket:",
                path: path.to_path_buf(),
                source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
            })
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(path).map_err(failed("bind", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(failed("set the mode of", path))?;
    Ok(listener)
}

/// Removes the socket if it is still ours (a socket at `path`).
pub(crate) fn remove(path: &Path) {
    let ours = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
    if ours {
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!("remove {}: {e}", path.display());
        }
    }
}
