//! Device-info files (k8s.cni.cncf.io device-info spec 1.1.0) under `deviceInfoDir`, named as
//! the spec's reference library names them: a device plugin's
//! `dp/<resource>-<deviceID>-device.json`, and the one a network's delegates get as
//! `CNIDeviceInfoFile`, `cni/<network>-<containerID>_<ifname>`, `/` replaced by `-` in both
//! (so no name leaves its directory).

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// A device-info file is a few hundred bytes; anything larger is not one.
const MAX_LEN: u64 = 64 * 1024;

/// `name` as one path component: `/` replaced by `-`, as the spec's library does.
fn component(name: &str) -> String {
    name.replace('/', "-")
}

/// The device plugin's file for device `id` of `resource`.
pub(super) fn dp_file(dir: &Path, resource: &str, id: &str) -> PathBuf {
    dir.join("dp").join(format!(
        "{}-{}-device.json",
        component(resource),
        component(id)
    ))
}

/// The file `network`'s delegates get for `container_id`'s interface `ifname`.
pub(super) fn cni_file(dir: &Path, network: &str, container_id: &str, ifname: &str) -> PathBuf {
    dir.join("cni")
        .join(component(&format!("{network}-{container_id}_{ifname}")))
}

/// A device-info file's JSON object; `None` when it does not exist. A file that is not one
/// (too large, not a JSON object, no `type`) is an error saying so.
pub(super) fn read(path: &Path) -> std::io::Result<Option<Value>> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = Vec::new();
    file.take(MAX_LEN + 1).read_to_end(&mut text)?;
    let invalid = |why: String| std::io::Error::new(std::io::ErrorKind::InvalidData, why);
    if text.len() as u64 > MAX_LEN {
        return Err(invalid(format!("larger than {MAX_LEN} bytes")));
    }
    let info: Value = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    if !info.get("type").is_some_and(Value::is_string) {
        return Err(invalid("not a device-info object (no \"type\")".into()));
    }
    Ok(Some(info))
}

/// Makes the directory `path` goes in (0700), if missing.
pub(super) fn make_dir(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir),
        None => Ok(()),
    }
}

/// Writes `info` as a new file at `path` (0600, its directory made 0700): a file already
/// there belongs to another attachment's call and is left alone (an error).
pub(super) fn write(path: &Path, info: &Value) -> std::io::Result<()> {
    make_dir(path)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(info.to_string().as_bytes())
}

/// Removes the file at `path`; one already gone is fine.
pub(super) fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_stay_in_their_directory() {
        let dir = Path::new("/run/devinfo");
        assert_eq!(
            dp_file(dir, "example.com/vf", "0000:81:00.2"),
            Path::new("/run/devinfo/dp/example.com-vf-0000:81:00.2-device.json")
        );
        assert_eq!(
            dp_file(dir, "../..", "../x"),
            Path::new("/run/devinfo/dp/..-..-..-x-device.json")
        );
        assert_eq!(
            cni_file(dir, "default/data-a", "pod1", "net1"),
            Path::new("/run/devinfo/cni/default-data-a-pod1_net1")
        );
    }

    #[test]
    fn written_files_read_back_and_bad_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = cni_file(dir.path(), "default/a", "pod1", "net1");
        assert_eq!(read(&path).unwrap(), None);
        let info =
            json!({"type": "pci", "version": "1.1.0", "pci": {"pci-address": "0000:81:00.2"}});
        write(&path, &info).unwrap();
        assert_eq!(read(&path).unwrap(), Some(info.clone()));
        // Another call's file is never overwritten.
        assert!(write(&path, &info).is_err());
        remove(&path).unwrap();
        remove(&path).unwrap();
        std::fs::write(&path, "[1]").unwrap();
        assert!(read(&path).is_err());
        std::fs::write(&path, vec![b' '; 70_000]).unwrap();
        assert!(read(&path).is_err());
    }
}
