//! The wire protocol between the `eni-ip` plugin and the node agent (`eni-ipamd`).
//!
//! The fields follow the AWS VPC CNI's `rpc.proto` (`AddNetwork`/`DelNetwork`), carried as
//! JSON over a Unix stream socket instead of gRPC, so the plugin links neither an async
//! runtime nor a gRPC stack. One connection carries one exchange: the client writes one
//! [`Request`] as a JSON line and shuts its write half; the agent answers with one
//! [`Response`] and closes. Both sides check the other's peer credentials (root, or the
//! same user as themselves) and the protocol version of every message.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

pub mod client;

/// The protocol's version: both ends refuse a message of another version.
pub const PROTOCOL_VERSION: u32 = 1;

/// Where the agent listens unless configured otherwise.
pub const DEFAULT_SOCKET: &str = "/run/eni-ipamd/eni-ipamd.sock";

/// The most bytes one message may take; larger ones are refused unread.
pub const MAX_MESSAGE: u64 = 1 << 20;

/// One call from the plugin to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Request {
    /// [`PROTOCOL_VERSION`] of the caller.
    pub protocol: u32,
    /// The caller's name and version, for the agent's log (upstream's `ClientVersion`).
    pub client: String,
    /// What is asked.
    pub call: Call,
}

/// What the plugin asks of the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Call {
    /// Hand an address to an attachment (idempotent: a repeat returns the same address).
    AddNetwork(AddNetwork),
    /// Take an attachment's address back (idempotent: an unknown key is not an error).
    DelNetwork(DelNetwork),
    /// Release every allocation of a network that is not among the valid attachments
    /// (CNI GC's `cni.dev/valid-attachments`).
    Gc(Gc),
    /// Whether the agent is ready and has addresses to give (CNI STATUS).
    Status,
    /// Which address an attachment holds, changing nothing (CNI CHECK).
    Lookup(Lookup),
}

/// The key of one attachment, as the datastore keys its allocations.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachmentKey {
    /// The CNI network name.
    pub network: String,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
}

/// `AddNetworkRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AddNetwork {
    /// Whose address this is.
    pub key: AttachmentKey,
    /// `CNI_NETNS`, kept as metadata.
    #[serde(default)]
    pub netns: String,
    /// `K8S_POD_NAMESPACE`, empty outside Kubernetes.
    #[serde(default)]
    pub pod_namespace: String,
    /// `K8S_POD_NAME`, empty outside Kubernetes.
    #[serde(default)]
    pub pod_name: String,
}

/// `AddNetworkReply`: the address and what the datapath needs to route it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Assigned {
    /// The pod's address.
    pub address: Ipv4Addr,
    /// The ENI it lives on.
    pub eni_id: String,
    /// That ENI's MAC, as EC2 reports it.
    pub eni_mac: String,
    /// That ENI's device index (0 is the primary ENI).
    pub device_index: u32,
    /// The route table of the ENI's traffic: `main` (254) for the primary, else index + 1.
    pub route_table: u32,
    /// The ENI's subnet.
    pub subnet: Ipv4Net,
    /// The VPC's IPv4 CIDRs (traffic to them is not SNATed).
    pub vpc_cidrs: Vec<Ipv4Net>,
    /// The node's primary address (the SNAT source).
    pub node_ip: Ipv4Addr,
    /// An external NAT handles egress (`AWS_VPC_K8S_CNI_EXTERNALSNAT`).
    pub use_external_snat: bool,
}

/// `DelNetworkRequest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DelNetwork {
    /// Whose address to take back.
    pub key: AttachmentKey,
    /// Why, for the log and the `awscni_del_ip_req_count{reason}` metric
    /// (`PodDeleted`, `SetupNSFailed`, `GC`).
    pub reason: String,
}

/// `DelNetworkReply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Released {
    /// The address the key held, `None` when it held none (a repeated DEL).
    pub address: Option<Ipv4Addr>,
}

/// A GC call: every allocation of `network` whose key is not in `valid` is released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Gc {
    /// The network whose allocations are collected.
    pub network: String,
    /// The attachments that stay: `(containerID, ifname)` pairs.
    pub valid: Vec<ValidAttachment>,
}

/// One entry of `cni.dev/valid-attachments`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidAttachment {
    /// `containerID`.
    pub container_id: String,
    /// `ifname`.
    pub ifname: String,
}

/// A lookup of one attachment's allocation (CNI CHECK): unlike a repeated
/// [`Call::AddNetwork`], it never assigns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lookup {
    /// The attachment.
    pub key: AttachmentKey,
}

/// The reply to a [`Lookup`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Found {
    /// What the key holds, as [`Call::AddNetwork`] returned it; `None` when it holds nothing.
    pub assigned: Option<Assigned>,
}

/// What a GC released.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Collected {
    /// The released attachments and their addresses.
    pub released: Vec<(AttachmentKey, Ipv4Addr)>,
}

/// The agent's state, for CNI STATUS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Status {
    /// The agent has learnt the node and restored its checkpoint.
    pub ready: bool,
    /// Addresses that could be handed out now (not assigned, out of cooldown).
    pub available: u32,
    /// Addresses handed out.
    pub assigned: u32,
    /// Addresses in the pool.
    pub total: u32,
    /// ENIs attached.
    pub enis: u32,
    /// The node's max pods, `ENIs × (IPs per ENI − 1) + 2`.
    pub max_pods: u32,
}

/// The agent's answer to one [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Response {
    /// The agent's [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The agent's name and version.
    pub server: String,
    /// The outcome.
    pub outcome: Outcome,
}

/// The outcome of a call: one reply per [`Call`] variant, or an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Outcome {
    /// The reply to [`Call::AddNetwork`].
    Assigned(Assigned),
    /// The reply to [`Call::DelNetwork`].
    Released(Released),
    /// The reply to [`Call::Gc`].
    Collected(Collected),
    /// The reply to [`Call::Status`].
    Status(Status),
    /// The reply to [`Call::Lookup`].
    Found(Found),
    /// The call failed.
    Error(AgentError),
}

/// Why the agent refused or failed a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentError {
    /// The class of failure (it picks the CNI error code on the plugin's side).
    pub code: ErrorCode,
    /// What happened, in a sentence naming what was being done.
    pub message: String,
}

/// Classes of agent failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorCode {
    /// The request's protocol version is not the agent's.
    VersionMismatch,
    /// The request could not be parsed or names something invalid.
    BadRequest,
    /// The agent has not finished starting (node not learnt, checkpoint not restored).
    NotReady,
    /// No address is free and the pool cannot grow now (limits reached, or EC2 refused);
    /// the caller may try again later.
    NoAvailableAddresses,
    /// Something failed inside the agent (the checkpoint could not be written, ...).
    Internal,
}
