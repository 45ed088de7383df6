//! The emulated cloud of the ENI tests: EC2 and IMDS for one node, from a process of its own.
//!
//! It runs `conformance/emulator/ec2_emulator.py` from the suite's virtualenv
//! (`conformance/packages.sh` makes it): moto's EC2 (a pinned version) with the layer moto
//! lacks, i.e. EC2's address rules and limits with their real error codes
//! (`PrivateIpAddressLimitExceeded`, `AttachmentLimitExceeded`, `InvalidParameterValue` for an
//! occupied device index, `InvalidNetworkInterface.InUse`), prefix delegation, and an IMDSv2
//! endpoint served from the live EC2 state. See that directory for what each patch does.
//!
//! ```no_run
//! use conformance::ec2_emulator::{Ec2Emulator, NodeSpec};
//!
//! let cloud = Ec2Emulator::start();
//! let node = cloud.seed_node(&NodeSpec::new("t3.medium"));
//! // Point the agent at cloud.ec2_url() and cloud.imds_url() ...
//! cloud.fail_next("AssignPrivateIpAddresses", "RequestLimitExceeded", 2);
//! // ... run it, then check what it did:
//! let eni = &cloud.enis_of(&node.instance_id)[1];
//! assert_eq!(eni["attachment"]["device_index"], 1);
//! ```
//!
//! Each [`Ec2Emulator`] is a process with its own state on free ports, so tests run side by
//! side; dropping it (also while a test panics) kills its process group. The process lives
//! in the network namespace of the thread that starts it, so an agent in a private "node"
//! namespace reaches it when it is started there (bring `lo` up first):
//!
//! ```no_run
//! use conformance::ec2_emulator::Ec2Emulator;
//!
//! let node = kernel::PrivateNetns::new().unwrap();
//! let netns = node.netns().unwrap();
//! let mut nl = kernel::Netlink::in_netns(&netns).unwrap();
//! let lo = nl.link_by_name("lo").unwrap().unwrap();
//! nl.set_link_up(lo.index).unwrap();
//! let cloud = netns.run(Ec2Emulator::start).unwrap();
//! ```

mod http;
mod process;
mod query;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde_json::{json, Value};

pub use http::{request, HttpResponse};
pub use query::{Ec2Answer, VERSION};

use process::Process;

/// The region the emulator uses unless told otherwise (the credential scope clients sign
/// for, and the region seeded nodes are in).
pub const DEFAULT_REGION: &str = "us-west-2";

/// The Python of the suite's virtualenv (`$META_CNI_TEST_VENV/bin/python`, default
/// `/opt/meta-cni-test-venv/bin/python`), which has the pinned moto and boto3.
pub fn venv_python() -> PathBuf {
    process::python()
}

/// The node to seed: a VPC, a subnet in it, a security group and one running instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    /// The instance type; its EC2 limits apply (e.g. `t3.medium`: 3 ENIs, 6 addresses each;
    /// `m5.large`: 3 and 10).
    pub instance_type: String,
    /// The VPC's CIDR (default `10.0.0.0/16`).
    pub vpc_cidr: String,
    /// The subnet's CIDR (default `10.0.1.0/24`).
    pub subnet_cidr: String,
    /// The availability zone (default: the region's `a` zone).
    pub availability_zone: Option<String>,
    /// An existing VPC to seed the node into (its subnet and security group are made there
    /// and `vpc_cidr` is ignored); default: a new VPC.
    pub vpc_id: Option<String>,
}

impl NodeSpec {
    /// A node of `instance_type` with the default VPC and subnet.
    pub fn new(instance_type: &str) -> NodeSpec {
        NodeSpec {
            instance_type: instance_type.to_owned(),
            vpc_cidr: "10.0.0.0/16".to_owned(),
            subnet_cidr: "10.0.1.0/24".to_owned(),
            availability_zone: None,
            vpc_id: None,
        }
    }

    /// With a subnet of this CIDR (inside the VPC's).
    pub fn subnet_cidr(mut self, cidr: &str) -> NodeSpec {
        cidr.clone_into(&mut self.subnet_cidr);
        self
    }

    /// In the existing VPC `vpc_id` (another node's), as a cluster's nodes share one.
    pub fn in_vpc(mut self, vpc_id: &str) -> NodeSpec {
        self.vpc_id = Some(vpc_id.to_owned());
        self
    }
}

/// A seeded node, as EC2 made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The region.
    pub region: String,
    /// The availability zone.
    pub availability_zone: String,
    /// `vpc-...`.
    pub vpc_id: String,
    /// The VPC's CIDR.
    pub vpc_cidr: String,
    /// `subnet-...`.
    pub subnet_id: String,
    /// The subnet's CIDR.
    pub subnet_cidr: String,
    /// `sg-...`: the instance's security group.
    pub security_group_id: String,
    /// `i-...`.
    pub instance_id: String,
    /// The instance type.
    pub instance_type: String,
    /// `eni-...`: the primary ENI (device index 0).
    pub primary_eni_id: String,
    /// The primary ENI's address (the first free one of the subnet: `.4`).
    pub primary_ip: String,
    /// The primary ENI's MAC.
    pub mac: String,
}

/// One EC2 call the emulator answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2Call {
    /// The action, e.g. `AssignPrivateIpAddresses`.
    pub action: String,
    /// The HTTP status of the answer.
    pub status: u16,
    /// The error code, if it failed (injected or not).
    pub code: Option<String>,
}

/// How to start an [`Ec2Emulator`]: address, ports and region.
#[derive(Debug, Clone)]
pub struct Ec2EmulatorBuilder {
    host: IpAddr,
    ec2_port: u16,
    imds_port: u16,
    region: String,
}

impl Ec2EmulatorBuilder {
    /// Listens on `host` (default 127.0.0.1), e.g. 169.254.169.254 inside a node namespace
    /// that has that address, as IMDS has on EC2.
    pub fn host(mut self, host: IpAddr) -> Self {
        self.host = host;
        self
    }

    /// The EC2 port (default 0: a free one).
    pub fn ec2_port(mut self, port: u16) -> Self {
        self.ec2_port = port;
        self
    }

    /// The IMDS port (default 0: a free one).
    pub fn imds_port(mut self, port: u16) -> Self {
        self.imds_port = port;
        self
    }

    /// The region (default [`DEFAULT_REGION`]).
    pub fn region(mut self, region: &str) -> Self {
        region.clone_into(&mut self.region);
        self
    }

    /// Starts the emulator (in the calling thread's network namespace) and waits until both
    /// endpoints answer.
    pub fn try_start(self) -> Result<Ec2Emulator, String> {
        let netns = kernel::Netns::current()
            .map_err(|e| format!("open the calling thread's network namespace: {e}"))?;
        let process = Process::start(self.host, self.ec2_port, self.imds_port, &self.region)?;
        Ok(Ec2Emulator {
            process,
            region: self.region,
            netns,
        })
    }

    /// [`Ec2EmulatorBuilder::try_start`], panicking on failure.
    pub fn start(self) -> Ec2Emulator {
        self.try_start()
            .unwrap_or_else(|e| panic!("start the EC2 emulator: {e}"))
    }
}

/// A running emulator. Dropping it kills it.
#[derive(Debug)]
pub struct Ec2Emulator {
    process: Process,
    region: String,
    /// The namespace it listens in: this handle's own requests are made from there, so a
    /// test thread in any namespace can drive an emulator that runs in a node's.
    netns: kernel::Netns,
}

impl Ec2Emulator {
    /// Starts an emulator on free loopback ports, region [`DEFAULT_REGION`], with nothing in
    /// it. Panics if it cannot (e.g. the virtualenv is missing).
    pub fn start() -> Ec2Emulator {
        Ec2Emulator::builder().start()
    }

    /// A builder, for the address, ports or region.
    pub fn builder() -> Ec2EmulatorBuilder {
        Ec2EmulatorBuilder {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            ec2_port: 0,
            imds_port: 0,
            region: DEFAULT_REGION.to_owned(),
        }
    }

    /// The EC2 endpoint's address.
    pub fn ec2_addr(&self) -> SocketAddr {
        self.process.ec2
    }

    /// The IMDS endpoint's address.
    pub fn imds_addr(&self) -> SocketAddr {
        self.process.imds
    }

    /// `http://<addr>`: the EC2 endpoint (what `AWS_EC2_ENDPOINT` / `AWS_ENDPOINT_URL_EC2`
    /// would name).
    pub fn ec2_url(&self) -> String {
        format!("http://{}", self.ec2_addr())
    }

    /// `http://<addr>`: the IMDS endpoint (what `AWS_EC2_METADATA_SERVICE_ENDPOINT` would
    /// name, in place of `http://169.254.169.254`).
    pub fn imds_url(&self) -> String {
        format!("http://{}", self.imds_addr())
    }

    /// The region clients must name in their credential scope.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The emulator's process id (its process group too).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// What the emulator logged so far (its request log, and any Python traceback).
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Runs `f` (which connects to the emulator) in the namespace the emulator listens in.
    fn in_netns<R>(&self, f: impl FnOnce() -> R) -> R {
        self.netns
            .run(f)
            .unwrap_or_else(|e| panic!("enter the EC2 emulator's network namespace: {e}"))
    }

    /// One control-API request; panics unless it succeeds.
    #[track_caller]
    fn control(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let body = body.map(Value::to_string).unwrap_or_default();
        let answer = self
            .in_netns(|| {
                request(
                    self.ec2_addr(),
                    method,
                    &format!("/_emulator/{path}"),
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                )
            })
            .unwrap_or_else(|e| panic!("{method} /_emulator/{path}: {e}\n{}", self.log()));
        assert_eq!(
            answer.status,
            200,
            "{method} /_emulator/{path}: {}\n{}",
            answer.body,
            self.log()
        );
        serde_json::from_str(&answer.body)
            .unwrap_or_else(|e| panic!("{method} /_emulator/{path}: {e}: {}", answer.body))
    }

    /// Makes a node (VPC, subnet, security group, one running instance) through EC2 calls
    /// that bypass faults and the call log, and has IMDS describe its instance from now on to
    /// callers other than the instances' primary addresses (each instance's own requests get
    /// its own metadata, as on EC2).
    pub fn seed_node(&self, spec: &NodeSpec) -> Node {
        let mut body = json!({
            "instance_type": spec.instance_type,
            "vpc_cidr": spec.vpc_cidr,
            "subnet_cidr": spec.subnet_cidr,
        });
        if let Some(zone) = &spec.availability_zone {
            body["availability_zone"] = json!(zone);
        }
        if let Some(vpc_id) = &spec.vpc_id {
            body["vpc_id"] = json!(vpc_id);
        }
        let node = self.control("POST", "node", Some(&body));
        let field = |key: &str| {
            node[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key} in {node}"))
                .to_owned()
        };
        Node {
            region: field("region"),
            availability_zone: field("availability_zone"),
            vpc_id: field("vpc_id"),
            vpc_cidr: field("vpc_cidr"),
            subnet_id: field("subnet_id"),
            subnet_cidr: field("subnet_cidr"),
            security_group_id: field("security_group_id"),
            instance_id: field("instance_id"),
            instance_type: field("instance_type"),
            primary_eni_id: field("primary_eni_id"),
            primary_ip: field("primary_ip"),
            mac: field("mac"),
        }
    }

    /// Has IMDS describe this instance to callers that are no instance's primary address
    /// (`None`: the newest running instance, as before any node was seeded; with no instance
    /// at all every metadata GET is a 404).
    pub fn set_imds_instance(&self, instance_id: Option<&str>) {
        self.control(
            "PUT",
            "imds-instance",
            Some(&json!({ "instance_id": instance_id })),
        );
    }

    /// Every instance and ENI, as JSON: `{"instances": [{"id", "region", "instance_type",
    /// "state", "enis": {"<device index>": "eni-..."}}], "enis": [{"id", "subnet_id",
    /// "vpc_id", "mac", "status", "description", "private_ips" (primary first), "prefixes",
    /// "security_group_ids", "tags", "attachment": null | {"attachment_id", "instance_id",
    /// "device_index", "delete_on_termination"}}]}`.
    pub fn state(&self) -> Value {
        self.control("GET", "state", None)
    }

    /// The ENI `id` as in [`Ec2Emulator::state`], if it exists.
    pub fn eni(&self, id: &str) -> Option<Value> {
        let state = self.state();
        let enis = state["enis"].as_array()?;
        enis.iter().find(|e| e["id"] == id).cloned()
    }

    /// The ENIs attached to `instance_id`, by device index.
    pub fn enis_of(&self, instance_id: &str) -> Vec<Value> {
        let state = self.state();
        let mut enis: Vec<Value> = state["enis"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["attachment"]["instance_id"] == instance_id)
            .cloned()
            .collect();
        enis.sort_by_key(|e| e["attachment"]["device_index"].as_u64());
        enis
    }

    /// The next `count` calls of `action` (`"*"`: of any action) fail with error `code` and
    /// EC2's HTTP status for it (503 for `RequestLimitExceeded`, 500 for `InternalError`,
    /// otherwise 400), without reaching EC2's state. Faults queue up in the order set.
    pub fn fail_next(&self, action: &str, code: &str, count: usize) {
        self.control(
            "POST",
            "faults",
            Some(&json!({"action": action, "code": code, "count": count})),
        );
    }

    /// [`Ec2Emulator::fail_next`] with this HTTP status (400-599).
    pub fn fail_next_with_status(&self, action: &str, code: &str, status: u16, count: usize) {
        self.control(
            "POST",
            "faults",
            Some(&json!({"action": action, "code": code, "count": count, "status": status})),
        );
    }

    /// Forgets every pending fault.
    pub fn clear_faults(&self) {
        self.control("DELETE", "faults", None);
    }

    /// Every EC2 call answered so far (seeding excluded), in order.
    pub fn calls(&self) -> Vec<Ec2Call> {
        let calls = self.control("GET", "calls", None);
        calls
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| Ec2Call {
                action: c["action"].as_str().unwrap_or_default().to_owned(),
                status: c["status"]
                    .as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .unwrap_or_default(),
                code: c["code"].as_str().map(str::to_owned),
            })
            .collect()
    }

    /// Forgets the calls answered so far.
    pub fn clear_calls(&self) {
        self.control("DELETE", "calls", None);
    }

    /// One EC2 Query call (`Action=action&Version=2016-11-15` and `params`), as a client
    /// would make it: it counts in [`Ec2Emulator::calls`] and may get an injected fault.
    /// Panics only if the emulator cannot be reached.
    #[track_caller]
    pub fn ec2(&self, action: &str, params: &[(&str, &str)]) -> Ec2Answer {
        self.in_netns(|| query::call(self.ec2_addr(), &self.region, action, params))
            .unwrap_or_else(|e| panic!("{action}: {e}\n{}", self.log()))
    }

    /// An IMDSv2 session token (`PUT /latest/api/token`, TTL 6 hours).
    #[track_caller]
    pub fn imds_token(&self) -> String {
        let answer = self
            .in_netns(|| {
                request(
                    self.imds_addr(),
                    "PUT",
                    "/latest/api/token",
                    &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
                    b"",
                )
            })
            .unwrap_or_else(|e| panic!("IMDS token: {e}"));
        assert_eq!(answer.status, 200, "IMDS token: {answer:?}");
        answer.body
    }

    /// `GET /latest/meta-data/<path>` with `token`: the value, or `None` on a 404 (what the
    /// agent reads as "none"). Panics on any other status.
    #[track_caller]
    pub fn imds_get(&self, token: &str, path: &str) -> Option<String> {
        let full = format!("/latest/meta-data/{path}");
        let answer = self
            .in_netns(|| {
                request(
                    self.imds_addr(),
                    "GET",
                    &full,
                    &[("X-aws-ec2-metadata-token", token)],
                    b"",
                )
            })
            .unwrap_or_else(|e| panic!("GET {full}: {e}"));
        match answer.status {
            200 => Some(answer.body),
            404 => None,
            status => panic!("GET {full}: HTTP {status}: {}", answer.body),
        }
    }
}
