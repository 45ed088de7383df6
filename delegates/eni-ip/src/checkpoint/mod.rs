//! ipamd's state file, `vpc-cni-ipam/1` (`datastore/checkpoint.go`), byte-compatible in both
//! directions so a node can move between aws-node and this agent with its pods' addresses:
//!
//! ```json
//! {"version":"vpc-cni-ipam/1","allocations":[{"networkName":"aws-cni","containerID":"…",
//!  "ifName":"eth0","ipv4":"10.0.1.60","allocationTimestamp":1763712000000000000,
//!  "metadata":{"k8sPodNamespace":"default","k8sPodName":"web-2","interfacesCount":1}}]}
//! ```
//!
//! Only allocations are stored: ENIs and their blocks are rebuilt from IMDS and EC2 at
//! start-up, then each allocation is matched to the block containing its address.

use std::fs::File;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize};

use crate::datastore::{DataStore, DataStoreError};
use crate::key::{AllocationMetadata, IpamKey};

/// The format's version stamp (`CheckpointFormatVersion`).
pub const CHECKPOINT_VERSION: &str = "vpc-cni-ipam/1";
/// Upstream's default path (`AWS_VPC_K8S_CNI_BACKING_STORE`).
pub const DEFAULT_CHECKPOINT_PATH: &str = "/var/run/aws-node/ipam.json";

/// Reading or writing the file failed.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The file is not JSON of the expected shape.
    #[error("{path}: not a checkpoint: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
    /// A version other than `vpc-cni-ipam/1`.
    #[error("{path}: checkpoint version {found:?}, expected {CHECKPOINT_VERSION:?}")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it carries.
        found: String,
    },
}

/// The whole file (`CheckpointData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointData {
    /// `vpc-cni-ipam/1`.
    pub version: String,
    /// One entry per allocation. Go writes `null` for an empty slice it never made; accepted.
    #[serde(deserialize_with = "null_as_empty", default)]
    pub allocations: Vec<CheckpointEntry>,
}

/// One allocation (`CheckpointEntry`: the embedded `IPAMKey`, then the rest). Missing fields
/// read as empty, as Go's decoder does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointEntry {
    /// The CNI network name.
    #[serde(rename = "networkName", default)]
    pub network_name: String,
    /// The sandbox's container ID.
    #[serde(rename = "containerID", default)]
    pub container_id: String,
    /// The interface name.
    #[serde(rename = "ifName", default)]
    pub if_name: String,
    /// The IPv4 address (omitted when empty, as Go's `omitempty`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv4: String,
    /// The IPv6 address, in IPv6 mode (omitted when empty).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv6: String,
    /// Unix time of the allocation, in nanoseconds.
    #[serde(rename = "allocationTimestamp", default)]
    pub allocation_timestamp: i64,
    /// About the pod.
    #[serde(default)]
    pub metadata: CheckpointMetadata,
}

/// `IPAMMetadata`; every field `omitempty`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    /// The pod's namespace.
    #[serde(
        rename = "k8sPodNamespace",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub k8s_pod_namespace: String,
    /// The pod's name.
    #[serde(
        rename = "k8sPodName",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub k8s_pod_name: String,
    /// The pod's interface count.
    #[serde(rename = "interfacesCount", default, skip_serializing_if = "is_zero")]
    pub interfaces_count: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<CheckpointEntry>, D::Error> {
    Ok(Option::<Vec<CheckpointEntry>>::deserialize(d)?.unwrap_or_default())
}

/// Unix nanoseconds, negative before the epoch, saturating.
fn to_unix_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

fn from_unix_nanos(n: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(n.unsigned_abs());
    if n >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

impl CheckpointData {
    /// The datastore's allocations, in key order.
    pub fn from_datastore(ds: &DataStore) -> Self {
        let allocations = ds
            .allocations()
            .map(|(key, a)| CheckpointEntry {
                network_name: key.network_name.clone(),
                container_id: key.container_id.clone(),
                if_name: key.if_name.clone(),
                ipv4: a.address.to_string(),
                ipv6: String::new(),
                allocation_timestamp: to_unix_nanos(a.allocated_at),
                metadata: CheckpointMetadata {
                    k8s_pod_namespace: a.metadata.pod_namespace.clone(),
                    k8s_pod_name: a.metadata.pod_name.clone(),
                    interfaces_count: a.metadata.interfaces_count,
                },
            })
            .collect();
        CheckpointData {
            version: CHECKPOINT_VERSION.to_string(),
            allocations,
        }
    }

    /// The file's bytes: compact JSON and a newline, as Go's `json.Encoder` writes.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain strings and integers cannot fail.
        let mut out = serde_json::to_vec(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Parses a file's bytes (`path` only names it in errors) and checks the version.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Self, CheckpointError> {
        let data: CheckpointData =
            serde_json::from_slice(bytes).map_err(|source| CheckpointError::Json {
                path: path.to_path_buf(),
                source,
            })?;
        if data.version != CHECKPOINT_VERSION {
            return Err(CheckpointError::Version {
                path: path.to_path_buf(),
                found: data.version,
            });
        }
        Ok(data)
    }
}

/// Reads the checkpoint at `path`; `None` when there is none (a fresh node, as upstream).
pub fn read(path: &Path) -> Result<Option<CheckpointData>, CheckpointError> {
    match std::fs::read(path) {
        Ok(bytes) => CheckpointData::parse(&bytes, path).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CheckpointError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Replaces the checkpoint at `path` so a crash leaves the old file or the new one, never a
/// mix: a temporary file in the same directory, fsync'd, renamed over, then the directory
/// fsync'd so the rename itself survives a power loss.
pub fn write_atomic(path: &Path, data: &CheckpointData) -> Result<(), CheckpointError> {
    let io_err = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |source| CheckpointError::Io {
            op,
            path: p,
            source,
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let prefix = format!(
        "{}.tmp",
        path.file_name()
            .map_or_else(|| "ipam.json".into(), |n| n.to_string_lossy())
    );
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .tempfile_in(dir)
        .map_err(io_err("create temporary file in", dir))?;
    tmp.write_all(&data.to_json())
        .map_err(io_err("write", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io_err("fsync", tmp.path()))?;
    tmp.persist(path)
        .map_err(|e| io_err("rename over", path)(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))?;
    Ok(())
}

/// Why a checkpoint entry was not restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// No IPv4 address (an IPv6-mode entry: this agent is IPv4-only).
    #[error("no IPv4 address")]
    NoIpv4,
    /// The address does not parse.
    #[error("invalid IPv4 address {0:?}")]
    InvalidAddress(String),
    /// The datastore refused it: the address is on no ENI any more (stale), or a duplicate.
    #[error(transparent)]
    DataStore(#[from] DataStoreError),
}

/// What [`restore`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Keys whose allocation is back in the datastore.
    pub restored: Vec<IpamKey>,
    /// Entries left out, and why. The agent rewrites the file after a restore, so they are
    /// gone for good; it should also clean up their host-side leftovers.
    pub dropped: Vec<(CheckpointEntry, DropReason)>,
}

/// Puts the checkpoint's allocations back into a datastore whose ENIs and blocks were
/// rebuilt from IMDS/EC2 (`ReadBackingStore`). An allocation whose address is no longer on
/// any ENI is dropped and reported, as are duplicates and unusable entries.
pub fn restore(ds: &mut DataStore, data: &CheckpointData) -> RestoreReport {
    let mut report = RestoreReport::default();
    for entry in &data.allocations {
        match restore_one(ds, entry) {
            Ok(key) => report.restored.push(key),
            Err(reason) => report.dropped.push((entry.clone(), reason)),
        }
    }
    report
}

fn restore_one(ds: &mut DataStore, entry: &CheckpointEntry) -> Result<IpamKey, DropReason> {
    if entry.ipv4.is_empty() {
        return Err(DropReason::NoIpv4);
    }
    let address: Ipv4Addr = entry
        .ipv4
        .parse()
        .map_err(|_| DropReason::InvalidAddress(entry.ipv4.clone()))?;
    let key = IpamKey::new(&entry.network_name, &entry.container_id, &entry.if_name);
    ds.restore_allocation(
        key.clone(),
        address,
        from_unix_nanos(entry.allocation_timestamp),
        AllocationMetadata {
            pod_namespace: entry.metadata.k8s_pod_namespace.clone(),
            pod_name: entry.metadata.k8s_pod_name.clone(),
            interfaces_count: entry.metadata.interfaces_count,
        },
    )?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_nanos_round_trip() {
        for n in [0i64, 1, 1_763_712_000_000_000_000, -5_000_000_000] {
            assert_eq!(to_unix_nanos(from_unix_nanos(n)), n);
        }
    }

    #[test]
    fn wrong_version_is_refused() {
        let err = CheckpointData::parse(
            br#"{"version":"vpc-cni-ipam/2","allocations":[]}"#,
            Path::new("ipam.json"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ipam.json: checkpoint version \"vpc-cni-ipam/2\", expected \"vpc-cni-ipam/1\""
        );
    }

    #[test]
    fn null_allocations_and_missing_fields_read_as_empty() {
        let data = CheckpointData::parse(
            br#"{"version":"vpc-cni-ipam/1","allocations":null}"#,
            Path::new("x"),
        )
        .unwrap();
        assert!(data.allocations.is_empty());
        let data = CheckpointData::parse(
            br#"{"version":"vpc-cni-ipam/1","allocations":[{"ipv4":"10.0.0.5","extra":1}]}"#,
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(data.allocations[0].ipv4, "10.0.0.5");
        assert_eq!(data.allocations[0].metadata, CheckpointMetadata::default());
    }

    #[test]
    fn garbage_is_a_json_error() {
        let err = CheckpointData::parse(b"{not json", Path::new("ipam.json")).unwrap_err();
        assert!(matches!(err, CheckpointError::Json { .. }), "{err}");
    }
}

#[cfg(test)]
mod file_tests;
