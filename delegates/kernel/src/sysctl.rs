//! Reading and writing kernel parameters under `/proc/sys`.
//!
//! Files under `/proc/sys/net` belong to the network namespace of the thread
//! that opens them, at open time: to target a pod namespace, call these
//! functions while inside it (hold a [`crate::NetnsGuard`] or use
//! [`crate::Netns::run`]).
//!
//! Keys are dotted (`net.ipv4.ip_forward`) or slash-separated
//! (`net/ipv4/ip_forward`). Interface names may contain dots (`eth0.100`),
//! which the dotted form would split: use the slash form or
//! [`read_path`]/[`write_path`] with explicit components for those.

use std::path::PathBuf;

use crate::error::{Error, Result};

const ROOT: &str = "/proc/sys";

/// Reads a parameter, without the trailing newline.
pub fn read(key: &str) -> Result<String> {
    read_path(&split(key)?)
}

/// Writes a parameter.
pub fn write(key: &str, value: &str) -> Result<()> {
    write_path(&split(key)?, value)
}

/// Reads the parameter at `/proc/sys/<components joined by />`.
pub fn read_path(components: &[&str]) -> Result<String> {
    let path = path_of(components)?;
    let value = std::fs::read_to_string(&path)
        .map_err(|e| Error::io(format!("read sysctl {}", path.display()), e))?;
    Ok(value.trim_end_matches('\n').to_owned())
}

/// Writes the parameter at `/proc/sys/<components joined by />`.
pub fn write_path(components: &[&str], value: &str) -> Result<()> {
    let path = path_of(components)?;
    // Open without create/truncate flags: sysctl files exist or the key is
    // wrong, and the value must go in a single write.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, value.as_bytes()))
        .map_err(|e| Error::io(format!("write sysctl {} = {value:?}", path.display()), e))
}

/// The names of the entries of the directory `/proc/sys/<components joined by />`
/// (e.g. every parameter of `net/ipv4/conf/eth0`), sorted.
pub fn list_path(components: &[&str]) -> Result<Vec<String>> {
    let path = path_of(components)?;
    let op = || format!("list sysctl directory {}", path.display());
    let mut names = std::fs::read_dir(&path)
        .map_err(|e| Error::io(op(), e))?
        .map(|entry| {
            entry
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .map_err(|e| Error::io(op(), e))
        })
        .collect::<Result<Vec<_>>>()?;
    names.sort();
    Ok(names)
}

fn split(key: &str) -> Result<Vec<&str>> {
    if key.starts_with('/') {
        return Err(invalid_key(key, "must be relative to /proc/sys"));
    }
    Ok(if key.contains('/') {
        key.split('/').collect()
    } else {
        key.split('.').collect()
    })
}

fn path_of(components: &[&str]) -> Result<PathBuf> {
    let key = components.join("/");
    if components.is_empty() {
        return Err(invalid_key(&key, "empty key"));
    }
    let mut path = PathBuf::from(ROOT);
    for c in components {
        if c.is_empty() || *c == "." || *c == ".." || c.contains('/') || c.contains('\0') {
            return Err(invalid_key(&key, &format!("invalid component {c:?}")));
        }
        path.push(c);
    }
    Ok(path)
}

fn invalid_key(key: &str, why: &str) -> Error {
    Error::invalid(format!("sysctl key {key:?}"), why)
}
