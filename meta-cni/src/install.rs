//! `meta-cni install` and `uninstall`: the binary and its delegate links into a CNI bin dir,
//! the netconf into the CNI config dir, each file written under a temporary name and renamed
//! into place. A rename replaces the directory entry, never the file a runtime may be
//! executing, so there is no "text file busy" and no half-written file to run or read.
//! What install made is listed in a manifest in the bin dir; uninstall removes exactly that,
//! and only while it is still ours (a file someone replaced since is left alone).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The manifest of what install made, in the bin dir.
const MANIFEST: &str = ".meta-cni-install.json";
/// The binary's name in the bin dir, what every link points to.
const BINARY: &str = "meta-cni";
/// The netconf's file name: it sorts before the node's own, so the runtime picks it.
pub(crate) const NETCONF_FILE: &str = "00-meta-cni.conflist";

/// What went wrong, naming the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InstallError {
    /// A file operation failed.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// `--auto` found no configuration of the node's own.
    #[error("no primary CNI config (*.conf, *.conflist) in {} to delegate to", .dir.display())]
    NoPrimary { dir: PathBuf },
    /// A config file is not what it should be.
    #[error("{}: {why}", .path.display())]
    Invalid { path: PathBuf, why: String },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InstallError {
    let path = path.to_path_buf();
    move |source| InstallError::Io { what, path, source }
}

/// What install made, for uninstall.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    /// The binary and the links, in the bin dir.
    bin: Vec<PathBuf>,
    /// The netconf, if install wrote one.
    netconf: Option<PathBuf>,
    /// The sha256 of what install wrote there: a netconf changed since is not ours.
    #[serde(default)]
    netconf_sha256: String,
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What to install.
#[derive(Debug)]
pub(crate) struct Plan<'a> {
    /// The CNI bin dir.
    pub(crate) bin_dir: &'a Path,
    /// The delegates to link to the binary.
    pub(crate) links: &'a [String],
    /// The CNI config dir, and the netconf to write there.
    pub(crate) netconf: Option<(&'a Path, Netconf<'a>)>,
}

/// Where the netconf comes from.
#[derive(Debug)]
pub(crate) enum Netconf<'a> {
    /// This file, as it is.
    File(&'a Path),
    /// Generated around the node's own primary config (the lexically first other one in
    /// the config dir), as Multus's auto mode does; with this kubeconfig, if any.
    Auto { kubeconfig: Option<&'a Path> },
}

/// What install did, for its report.
#[derive(Debug)]
pub(crate) struct Installed {
    /// Files written.
    pub(crate) written: Vec<PathBuf>,
    /// Delegate names left alone because a file of someone else's holds the name.
    pub(crate) skipped: Vec<String>,
}

/// Writes `bytes` to `dest` through a temporary file in the same directory, with `mode`,
/// synced, then renamed into place.
fn put(dest: &Path, bytes: &[u8], mode: u32) -> Result<(), InstallError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let written = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io("write", &tmp)(e));
    }
    fs::rename(&tmp, dest).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io("rename into", dest)(e)
    })
}

/// A symlink `dest` -> [`BINARY`], made beside it and renamed into place.
fn link(dest: &Path) -> Result<(), InstallError> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(BINARY, &tmp).map_err(io("link", &tmp))?;
    fs::rename(&tmp, dest).map_err(io("rename into", dest))
}

/// Whether `path` is one of ours: a link to [`BINARY`] (or the binary itself).
fn is_ours(path: &Path) -> bool {
    fs::read_link(path).is_ok_and(|target| target == Path::new(BINARY))
}

fn read_manifest(bin_dir: &Path) -> Result<Manifest, InstallError> {
    let path = bin_dir.join(MANIFEST);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| InstallError::Invalid {
            path,
            why: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
        Err(e) => Err(io("read", &path)(e)),
    }
}

/// Installs `plan`: the running binary as `<bin>/meta-cni`, a link per delegate whose name
/// is free or already ours, the netconf; then the manifest.
pub(crate) fn install(plan: &Plan<'_>) -> Result<Installed, InstallError> {
    fs::create_dir_all(plan.bin_dir).map_err(io("create", plan.bin_dir))?;
    let mut manifest = read_manifest(plan.bin_dir)?;
    let exe = fs::read("/proc/self/exe").map_err(io("read", Path::new("/proc/self/exe")))?;
    let binary = plan.bin_dir.join(BINARY);
    put(&binary, &exe, 0o755)?;
    let mut written = vec![binary.clone()];
    let mut skipped = Vec::new();
    for name in plan.links {
        let dest = plan.bin_dir.join(name);
        if fs::symlink_metadata(&dest).is_ok() && !is_ours(&dest) {
            // The node's own plugin of that name: not ours to replace.
            skipped.push(name.clone());
            continue;
        }
        link(&dest)?;
        written.push(dest);
    }
    for path in &written {
        if !manifest.bin.contains(path) {
            manifest.bin.push(path.clone());
        }
    }
    if let Some((conf_dir, source)) = &plan.netconf {
        fs::create_dir_all(conf_dir).map_err(io("create", conf_dir))?;
        let dest = conf_dir.join(NETCONF_FILE);
        let bytes = match source {
            Netconf::File(path) => fs::read(path).map_err(io("read", path))?,
            Netconf::Auto { kubeconfig } => auto_netconf(conf_dir, *kubeconfig)?,
        };
        put(&dest, &bytes, 0o644)?;
        written.push(dest.clone());
        manifest.netconf = Some(dest);
        manifest.netconf_sha256 = sha256(&bytes);
    }
    let encoded = serde_json::to_vec_pretty(&manifest).map_err(|e| InstallError::Invalid {
        path: plan.bin_dir.join(MANIFEST),
        why: e.to_string(),
    })?;
    put(&plan.bin_dir.join(MANIFEST), &encoded, 0o644)?;
    Ok(Installed { written, skipped })
}

/// The meta plugin's conflist around the node's primary config: the lexically first
/// `.conf`/`.conflist` of `conf_dir` other than ours becomes the cluster network (by path),
/// with its `cniVersion`.
fn auto_netconf(conf_dir: &Path, kubeconfig: Option<&Path>) -> Result<Vec<u8>, InstallError> {
    let mut files: Vec<PathBuf> = fs::read_dir(conf_dir)
        .map_err(io("read", conf_dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("conf" | "conflist")
            ) && p.file_name().is_some_and(|n| n != NETCONF_FILE)
        })
        .collect();
    files.sort();
    let primary = files.into_iter().next().ok_or(InstallError::NoPrimary {
        dir: conf_dir.to_path_buf(),
    })?;
    let text = fs::read(&primary).map_err(io("read", &primary))?;
    let conf: Value = serde_json::from_slice(&text).map_err(|e| InstallError::Invalid {
        path: primary.clone(),
        why: format!("not JSON: {e}"),
    })?;
    let version = conf
        .get("cniVersion")
        .and_then(Value::as_str)
        .unwrap_or("1.0.0");
    let mut meta = json!({"type": "meta-cni", "clusterNetwork": primary});
    if let Some(kubeconfig) = kubeconfig {
        meta["kubeconfig"] = json!(kubeconfig);
    }
    let list = json!({"cniVersion": version, "name": "meta-cni", "plugins": [meta]});
    let mut bytes = serde_json::to_vec_pretty(&list).expect("a JSON value encodes");
    bytes.push(b'\n');
    Ok(bytes)
}

/// Removes what install made in `bin_dir` (and the netconf it wrote), each only while it is
/// still ours; returns what was removed.
pub(crate) fn uninstall(bin_dir: &Path) -> Result<Vec<PathBuf>, InstallError> {
    let manifest = read_manifest(bin_dir)?;
    let mut removed = Vec::new();
    let binary = bin_dir.join(BINARY);
    for path in &manifest.bin {
        let ours = *path == binary || is_ours(path);
        if ours && fs::symlink_metadata(path).is_ok() {
            fs::remove_file(path).map_err(io("remove", path))?;
            removed.push(path.clone());
        }
    }
    if let Some(netconf) = &manifest.netconf {
        let unchanged = fs::read(netconf).is_ok_and(|b| sha256(&b) == manifest.netconf_sha256);
        if unchanged {
            fs::remove_file(netconf).map_err(io("remove", netconf))?;
            removed.push(netconf.clone());
        }
    }
    let path = bin_dir.join(MANIFEST);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove", &path)(e)),
    }
    Ok(removed)
}
