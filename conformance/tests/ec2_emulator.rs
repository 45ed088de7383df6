//! The emulated cloud behaves as EC2 and IMDS do where a node agent keeping a warm pool of ENI
//! addresses depends on it: checked over real HTTP, with the EC2 Query protocol and IMDSv2.

use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use conformance::ec2_emulator::{
    request, venv_python, Ec2Answer, Ec2Call, Ec2Emulator, Node, NodeSpec,
};

/// An emulator with one node of `instance_type`.
fn node(instance_type: &str) -> (Ec2Emulator, Node) {
    let cloud = Ec2Emulator::start();
    let node = cloud.seed_node(&NodeSpec::new(instance_type));
    (cloud, node)
}

/// Creates an ENI in the node's subnet with `params` (e.g. a secondary address count).
fn create_eni(cloud: &Ec2Emulator, node: &Node, params: &[(&str, &str)]) -> String {
    let mut all = vec![("SubnetId", node.subnet_id.as_str())];
    all.extend_from_slice(params);
    let answer = cloud.ec2("CreateNetworkInterface", &all).ok();
    answer.value("networkInterfaceId").expect("an ENI id")
}

fn attach(cloud: &Ec2Emulator, node: &Node, eni: &str, device_index: u32) -> Ec2Answer {
    let index = device_index.to_string();
    cloud.ec2(
        "AttachNetworkInterface",
        &[
            ("NetworkInterfaceId", eni),
            ("InstanceId", &node.instance_id),
            ("DeviceIndex", &index),
        ],
    )
}

fn assign(cloud: &Ec2Emulator, eni: &str, params: &[(&str, &str)]) -> Ec2Answer {
    let mut all = vec![("NetworkInterfaceId", eni)];
    all.extend_from_slice(params);
    cloud.ec2("AssignPrivateIpAddresses", &all)
}

fn unassign(cloud: &Ec2Emulator, eni: &str, params: &[(&str, &str)]) -> Ec2Answer {
    let mut all = vec![("NetworkInterfaceId", eni)];
    all.extend_from_slice(params);
    cloud.ec2("UnassignPrivateIpAddresses", &all)
}

/// The ENI's addresses (primary first) and prefixes, from the emulator's state.
fn addresses(cloud: &Ec2Emulator, eni: &str) -> (Vec<String>, Vec<String>) {
    let eni = cloud.eni(eni).expect("the ENI exists");
    let strings = |key: &str| -> Vec<String> {
        eni[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    (strings("private_ips"), strings("prefixes"))
}

#[track_caller]
fn assert_error(answer: &Ec2Answer, status: u16, code: &str) {
    assert_eq!(
        (answer.status, answer.error_code().as_deref()),
        (status, Some(code)),
        "{}",
        answer.body
    );
}

#[test]
fn addresses_are_unique_lowest_free_and_never_reserved() {
    let cloud = Ec2Emulator::start();
    // A /28: .0-.3 and .15 are EC2's, .4-.14 are usable.
    let node = cloud.seed_node(&NodeSpec::new("m5.large").subnet_cidr("10.0.1.0/28"));
    assert_eq!(node.primary_ip, "10.0.1.4");

    let eni = create_eni(&cloud, &node, &[("SecondaryPrivateIpAddressCount", "2")]);
    assert_eq!(
        addresses(&cloud, &eni).0,
        ["10.0.1.5", "10.0.1.6", "10.0.1.7"]
    );

    // Only the new addresses are in the answer, not every address of the ENI.
    let answer = assign(&cloud, &eni, &[("SecondaryPrivateIpAddressCount", "3")]).ok();
    assert_eq!(
        answer.values("privateIpAddress"),
        ["10.0.1.8", "10.0.1.9", "10.0.1.10"]
    );

    // A released address is the lowest free one again.
    unassign(&cloud, &eni, &[("PrivateIpAddress.1", "10.0.1.6")]).ok();
    let answer = assign(&cloud, &eni, &[("SecondaryPrivateIpAddressCount", "1")]).ok();
    assert_eq!(answer.values("privateIpAddress"), ["10.0.1.6"]);

    // .11-.14 are left: a fifth address would be the broadcast address.
    let other = create_eni(&cloud, &node, &[("SecondaryPrivateIpAddressCount", "3")]);
    assert_eq!(
        addresses(&cloud, &other).0,
        ["10.0.1.11", "10.0.1.12", "10.0.1.13", "10.0.1.14"]
    );
    let full = cloud.ec2("CreateNetworkInterface", &[("SubnetId", &node.subnet_id)]);
    assert_error(&full, 400, "InsufficientFreeAddressesInSubnet");
    assert_eq!(cloud.state()["enis"].as_array().unwrap().len(), 3);

    // All or nothing: one free address does not make two.
    unassign(&cloud, &other, &[("PrivateIpAddress.1", "10.0.1.12")]).ok();
    let two = assign(&cloud, &eni, &[("SecondaryPrivateIpAddressCount", "2")]);
    assert_error(&two, 400, "InsufficientFreeAddressesInSubnet");
    assert_eq!(addresses(&cloud, &eni).0.len(), 6);
    // A /28 subnet has no /28 free of reserved addresses to delegate.
    let prefix = assign(&cloud, &eni, &[("Ipv4PrefixCount", "1")]);
    assert_error(&prefix, 400, "InsufficientCidrBlocks");
    let answer = assign(&cloud, &eni, &[("SecondaryPrivateIpAddressCount", "1")]).ok();
    assert_eq!(answer.values("privateIpAddress"), ["10.0.1.12"]);
}

#[test]
fn the_per_eni_address_limit_counts_addresses_and_prefixes() {
    // t3.medium: 6 IPv4 addresses per ENI.
    let (cloud, node) = node("t3.medium");
    let eni = create_eni(&cloud, &node, &[("SecondaryPrivateIpAddressCount", "1")]);
    attach(&cloud, &node, &eni, 1).ok();

    assign(&cloud, &eni, &[("SecondaryPrivateIpAddressCount", "4")]).ok();
    assert_eq!(addresses(&cloud, &eni).0.len(), 6);
    let over = assign(&cloud, &eni, &[("SecondaryPrivateIpAddressCount", "1")]);
    assert_error(&over, 400, "PrivateIpAddressLimitExceeded");
    assert_eq!(
        addresses(&cloud, &eni).0.len(),
        6,
        "a refused call changes nothing"
    );

    // A prefix takes one of the six places too.
    let last = addresses(&cloud, &eni).0[5].clone();
    unassign(&cloud, &eni, &[("PrivateIpAddress.1", &last)]).ok();
    let over = assign(&cloud, &eni, &[("Ipv4PrefixCount", "2")]);
    assert_error(&over, 400, "PrivateIpAddressLimitExceeded");
    assign(&cloud, &eni, &[("Ipv4PrefixCount", "1")]).ok();
    let over = assign(&cloud, &eni, &[("SecondaryPrivateIpAddressCount", "1")]);
    assert_error(&over, 400, "PrivateIpAddressLimitExceeded");
}

#[test]
fn the_eni_limit_and_occupied_device_indexes_are_refused() {
    // t3.medium: 3 ENIs.
    let (cloud, node) = node("t3.medium");
    let [a, b, c] = [(); 3].map(|()| create_eni(&cloud, &node, &[]));

    let taken = attach(&cloud, &node, &a, 0);
    assert_error(&taken, 400, "InvalidParameterValue");
    assert!(taken.body.contains("device index '0'"), "{}", taken.body);
    let attached = attach(&cloud, &node, &a, 1).ok();
    assert!(attached
        .value("attachmentId")
        .unwrap()
        .starts_with("eni-attach-"));
    assert_error(&attach(&cloud, &node, &b, 1), 400, "InvalidParameterValue");
    assert_error(
        &attach(&cloud, &node, &a, 2),
        400,
        "InvalidNetworkInterface.InUse",
    );
    attach(&cloud, &node, &b, 2).ok();
    assert_error(
        &attach(&cloud, &node, &c, 3),
        400,
        "AttachmentLimitExceeded",
    );

    // What an agent reads to pick the next free device index.
    let described = cloud
        .ec2("DescribeInstances", &[("InstanceId.1", &node.instance_id)])
        .ok();
    let mut indexes = described.values("deviceIndex");
    indexes.sort();
    assert_eq!(indexes, ["0", "1", "2"]);
    assert_eq!(
        cloud.eni(&c).unwrap()["attachment"],
        serde_json::Value::Null,
        "a refused attach attaches nothing"
    );
}

#[test]
fn an_attached_eni_is_not_deleted_and_delete_on_termination_is_kept() {
    let (cloud, node) = node("m5.large");
    let eni = create_eni(&cloud, &node, &[]);
    let attachment = attach(&cloud, &node, &eni, 1)
        .ok()
        .value("attachmentId")
        .unwrap();

    cloud
        .ec2(
            "ModifyNetworkInterfaceAttribute",
            &[
                ("NetworkInterfaceId", &eni),
                ("Attachment.AttachmentId", &attachment),
                ("Attachment.DeleteOnTermination", "true"),
            ],
        )
        .ok();
    let described = cloud
        .ec2(
            "DescribeNetworkInterfaces",
            &[("NetworkInterfaceId.1", &eni)],
        )
        .ok();
    assert_eq!(
        described.value("deleteOnTermination").as_deref(),
        Some("true")
    );
    assert_eq!(
        cloud.eni(&eni).unwrap()["attachment"]["delete_on_termination"],
        true
    );

    let delete = [("NetworkInterfaceId", eni.as_str())];
    assert_error(
        &cloud.ec2("DeleteNetworkInterface", &delete),
        400,
        "InvalidNetworkInterface.InUse",
    );
    cloud
        .ec2("DetachNetworkInterface", &[("AttachmentId", &attachment)])
        .ok();
    assert_eq!(cloud.eni(&eni).unwrap()["status"], "available");
    cloud.ec2("DeleteNetworkInterface", &delete).ok();
    assert_error(
        &cloud.ec2("DeleteNetworkInterface", &delete),
        400,
        "InvalidNetworkInterfaceID.NotFound",
    );
}

#[test]
fn prefix_delegation_hands_out_aligned_free_28s() {
    let (cloud, node) = node("m5.large");
    // .4 (the node) and .5 (this ENI's primary address) are in 10.0.1.0/28.
    let eni = create_eni(&cloud, &node, &[("Ipv4PrefixCount", "1")]);
    assert_eq!(addresses(&cloud, &eni).1, ["10.0.1.16/28"]);
    attach(&cloud, &node, &eni, 1).ok();

    let answer = assign(&cloud, &eni, &[("Ipv4PrefixCount", "2")]).ok();
    assert_eq!(
        answer.values("ipv4Prefix"),
        ["10.0.1.32/28", "10.0.1.48/28"]
    );
    assert!(answer.values("privateIpAddress").is_empty());
    let described = cloud
        .ec2(
            "DescribeNetworkInterfaces",
            &[("NetworkInterfaceId.1", &eni)],
        )
        .ok();
    assert_eq!(
        described.values("ipv4Prefix"),
        ["10.0.1.16/28", "10.0.1.32/28", "10.0.1.48/28"]
    );

    // Single addresses never come from a delegated prefix: .6-.15, then past the three /28s.
    let other = create_eni(&cloud, &node, &[("SecondaryPrivateIpAddressCount", "10")]);
    let ips = addresses(&cloud, &other).0;
    assert_eq!(ips.first().map(String::as_str), Some("10.0.1.6"));
    assert_eq!(ips.last().map(String::as_str), Some("10.0.1.64"), "{ips:?}");

    unassign(&cloud, &eni, &[("Ipv4Prefix.1", "10.0.1.32/28")]).ok();
    assert_eq!(addresses(&cloud, &eni).1, ["10.0.1.16/28", "10.0.1.48/28"]);
    // One address and two prefixes: eight more prefixes pass m5.large's 10 per ENI.
    let over = assign(&cloud, &eni, &[("Ipv4PrefixCount", "8")]);
    assert_error(&over, 400, "PrivateIpAddressLimitExceeded");
}

#[test]
fn a_freed_prefix_is_handed_out_again() {
    let (cloud, node) = node("m5.large");
    let eni = create_eni(&cloud, &node, &[]);
    attach(&cloud, &node, &eni, 1).ok();
    let first = assign(&cloud, &eni, &[("Ipv4PrefixCount", "2")]).ok();
    assert_eq!(first.values("ipv4Prefix"), ["10.0.1.16/28", "10.0.1.32/28"]);
    unassign(&cloud, &eni, &[("Ipv4Prefix.1", "10.0.1.16/28")]).ok();
    let again = assign(&cloud, &eni, &[("Ipv4PrefixCount", "1")]).ok();
    assert_eq!(again.values("ipv4Prefix"), ["10.0.1.16/28"]);
}

#[test]
fn imds_requires_an_imdsv2_token() {
    let (cloud, node) = node("t3.medium");
    let imds = cloud.imds_addr();
    let get = |headers: &[(&str, &str)]| {
        request(imds, "GET", "/latest/meta-data/instance-id", headers, b"")
            .unwrap()
            .status
    };
    assert_eq!(get(&[]), 401);
    assert_eq!(get(&[("X-aws-ec2-metadata-token", "made-up")]), 401);

    let put = |ttl: Option<&str>| {
        let headers: Vec<(&str, &str)> = ttl
            .map(|t| ("X-aws-ec2-metadata-token-ttl-seconds", t))
            .into_iter()
            .collect();
        request(imds, "PUT", "/latest/api/token", &headers, b"").unwrap()
    };
    assert_eq!(put(None).status, 400);
    assert_eq!(put(Some("0")).status, 400);
    assert_eq!(put(Some("21601")).status, 400);
    let answer = put(Some("2"));
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.header("X-aws-ec2-metadata-token-ttl-seconds"),
        Some("2")
    );
    let short = answer.body;
    assert_eq!(get(&[("X-aws-ec2-metadata-token", &short)]), 200);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(get(&[("X-aws-ec2-metadata-token", &short)]), 401, "expired");

    let token = cloud.imds_token();
    assert_eq!(
        cloud.imds_get(&token, "instance-id"),
        Some(node.instance_id.clone())
    );
    assert_eq!(
        request(imds, "GET", "/latest/api/token", &[], b"")
            .unwrap()
            .status,
        405
    );
}

#[test]
fn imds_follows_attach_assign_unassign_and_detach() {
    let (cloud, node) = node("m5.large");
    let token = cloud.imds_token();
    let get = |path: &str| cloud.imds_get(&token, path);
    let macs = |_: ()| {
        get("network/interfaces/macs/")
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };

    assert_eq!(get("instance-id").unwrap(), node.instance_id);
    assert_eq!(get("instance-type").unwrap(), "m5.large");
    assert_eq!(get("local-ipv4").unwrap(), node.primary_ip);
    assert_eq!(get("mac").unwrap(), node.mac);
    assert_eq!(get("placement/availability-zone").unwrap(), "us-west-2a");
    assert_eq!(get("placement/region").unwrap(), "us-west-2");
    assert_eq!(macs(()), [format!("{}/", node.mac)]);

    // Created but not attached: not on the instance yet.
    let eni = create_eni(&cloud, &node, &[("SecondaryPrivateIpAddressCount", "1")]);
    assert_eq!(macs(()).len(), 1);

    let attachment = attach(&cloud, &node, &eni, 1)
        .ok()
        .value("attachmentId")
        .unwrap();
    let state = cloud.eni(&eni).unwrap();
    let mac = state["mac"].as_str().unwrap();
    assert_eq!(macs(()), [format!("{}/", node.mac), format!("{mac}/")]);
    let field = |name: &str| get(&format!("network/interfaces/macs/{mac}/{name}"));
    let fields = field("").unwrap();
    for name in [
        "interface-id",
        "device-number",
        "local-ipv4s",
        "subnet-id",
        "vpc-id",
    ] {
        assert!(fields.lines().any(|l| l == name), "{name} in {fields}");
    }
    assert_eq!(field("interface-id").unwrap(), eni);
    assert_eq!(field("device-number").unwrap(), "1");
    assert_eq!(field("network-card").unwrap(), "0");
    assert_eq!(field("subnet-id").unwrap(), node.subnet_id);
    assert_eq!(field("vpc-id").unwrap(), node.vpc_id);
    assert_eq!(field("subnet-ipv4-cidr-block").unwrap(), "10.0.1.0/24");
    assert_eq!(field("vpc-ipv4-cidr-blocks").unwrap(), "10.0.0.0/16");
    let groups = field("security-group-ids").unwrap();
    assert!(
        groups.lines().any(|g| g == node.security_group_id),
        "{groups}"
    );
    assert_eq!(field("local-ipv4s").unwrap(), "10.0.1.5\n10.0.1.6");
    assert_eq!(field("ipv4-prefix"), None, "no prefix is a 404");

    assign(&cloud, &eni, &[("SecondaryPrivateIpAddressCount", "2")]).ok();
    assert_eq!(
        field("local-ipv4s").unwrap(),
        "10.0.1.5\n10.0.1.6\n10.0.1.7\n10.0.1.8"
    );
    assign(&cloud, &eni, &[("Ipv4PrefixCount", "1")]).ok();
    assert_eq!(field("ipv4-prefix").unwrap(), "10.0.1.16/28");

    unassign(&cloud, &eni, &[("PrivateIpAddress.1", "10.0.1.6")]).ok();
    unassign(&cloud, &eni, &[("Ipv4Prefix.1", "10.0.1.16/28")]).ok();
    assert_eq!(
        field("local-ipv4s").unwrap(),
        "10.0.1.5\n10.0.1.7\n10.0.1.8"
    );
    assert_eq!(field("ipv4-prefix"), None);

    cloud
        .ec2("DetachNetworkInterface", &[("AttachmentId", &attachment)])
        .ok();
    assert_eq!(macs(()), [format!("{}/", node.mac)]);
    assert_eq!(field("interface-id"), None);

    // The identity document (the region's source for AWS SDKs).
    let document = request(
        cloud.imds_addr(),
        "GET",
        "/latest/dynamic/instance-identity/document",
        &[("X-aws-ec2-metadata-token", &token)],
        b"",
    )
    .unwrap();
    let document: serde_json::Value = serde_json::from_str(&document.body).unwrap();
    assert_eq!(document["region"], "us-west-2");
    assert_eq!(document["instanceId"], node.instance_id.as_str());
}

#[test]
fn imds_describes_the_chosen_instance_or_the_newest() {
    let cloud = Ec2Emulator::start();
    let token = cloud.imds_token();
    assert_eq!(
        cloud.imds_get(&token, "instance-id"),
        None,
        "no instance yet"
    );

    let node = cloud.seed_node(&NodeSpec::new("t3.medium"));
    let image = cloud
        .ec2("DescribeImages", &[("Owner.1", "amazon")])
        .ok()
        .value("imageId")
        .unwrap();
    let other = cloud
        .ec2(
            "RunInstances",
            &[
                ("ImageId", &image),
                ("MinCount", "1"),
                ("MaxCount", "1"),
                ("InstanceType", "m5.large"),
                ("SubnetId", &node.subnet_id),
            ],
        )
        .ok()
        .value("instanceId")
        .unwrap();
    // The seeded node stays the one described...
    assert_eq!(
        cloud.imds_get(&token, "instance-id").as_deref(),
        Some(node.instance_id.as_str())
    );
    cloud.set_imds_instance(Some(&other));
    assert_eq!(
        cloud.imds_get(&token, "instance-type").as_deref(),
        Some("m5.large")
    );
    assert_eq!(
        cloud.imds_get(&token, "local-ipv4").as_deref(),
        Some("10.0.1.5")
    );
    // ...and without a choice, the newest running instance is.
    cloud.set_imds_instance(Some(&node.instance_id));
    cloud.set_imds_instance(None);
    assert_eq!(cloud.imds_get(&token, "instance-id"), Some(other));
}

#[test]
fn injected_faults_fail_the_next_calls_and_change_nothing() {
    let (cloud, node) = node("m5.large");
    let eni = create_eni(&cloud, &node, &[]);
    attach(&cloud, &node, &eni, 1).ok();
    cloud.clear_calls();

    cloud.fail_next("AssignPrivateIpAddresses", "RequestLimitExceeded", 2);
    cloud.fail_next(
        "AssignPrivateIpAddresses",
        "InsufficientFreeAddressesInSubnet",
        1,
    );
    cloud.fail_next_with_status("*", "InternalError", 500, 1);
    let two = [("SecondaryPrivateIpAddressCount", "2")];
    assert_error(&assign(&cloud, &eni, &two), 503, "RequestLimitExceeded");
    // Another action gets the fault for any action, not the assign faults.
    let described = cloud.ec2("DescribeNetworkInterfaces", &[]);
    assert_error(&described, 500, "InternalError");
    assert_error(&assign(&cloud, &eni, &two), 503, "RequestLimitExceeded");
    assert_error(
        &assign(&cloud, &eni, &two),
        400,
        "InsufficientFreeAddressesInSubnet",
    );
    assert_eq!(
        addresses(&cloud, &eni).0,
        ["10.0.1.5"],
        "failed calls change nothing"
    );
    assign(&cloud, &eni, &two).ok();
    assert_eq!(addresses(&cloud, &eni).0.len(), 3);

    let calls = cloud.calls();
    let summary: Vec<(&str, u16, Option<&str>)> = calls
        .iter()
        .map(|c| (c.action.as_str(), c.status, c.code.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "AssignPrivateIpAddresses",
                503,
                Some("RequestLimitExceeded")
            ),
            ("DescribeNetworkInterfaces", 500, Some("InternalError")),
            (
                "AssignPrivateIpAddresses",
                503,
                Some("RequestLimitExceeded")
            ),
            (
                "AssignPrivateIpAddresses",
                400,
                Some("InsufficientFreeAddressesInSubnet")
            ),
            ("AssignPrivateIpAddresses", 200, None),
        ]
    );

    cloud.fail_next("*", "RequestLimitExceeded", 5);
    cloud.clear_faults();
    cloud.ec2("DescribeNetworkInterfaces", &[]).ok();
}

/// True while a process with this pid exists (and is not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false)
}

#[test]
fn two_emulators_run_side_by_side_and_stop_cleanly() {
    let (first, first_node) = node("t3.medium");
    let (second, second_node) = node("m5.large");
    assert_ne!(first.ec2_addr(), second.ec2_addr());
    assert_ne!(first.imds_addr(), second.imds_addr());

    // Separate clouds: the same first address, an ENI in one only.
    assert_eq!(first_node.primary_ip, second_node.primary_ip);
    let eni = create_eni(&first, &first_node, &[]);
    assert!(first.eni(&eni).is_some());
    assert!(second.eni(&eni).is_none());
    let token = second.imds_token();
    assert_eq!(
        second.imds_get(&token, "instance-type").as_deref(),
        Some("m5.large")
    );

    let (pid, ec2, imds) = (first.pid(), first.ec2_addr(), first.imds_addr());
    assert!(alive(pid));
    drop(first);
    assert!(!alive(pid), "the emulator is gone once dropped");
    assert!(TcpStream::connect(ec2).is_err());
    assert!(TcpStream::connect(imds).is_err());
    second.ec2("DescribeInstances", &[]).ok();
}

#[test]
fn a_panicking_test_leaves_no_emulator_behind() {
    let (tx, rx) = std::sync::mpsc::channel();
    let outcome = std::thread::spawn(move || {
        let cloud = Ec2Emulator::start();
        tx.send(cloud.pid()).unwrap();
        panic!("a test fails with the emulator running");
    })
    .join();
    assert!(outcome.is_err());
    let pid = rx.recv().unwrap();
    assert!(
        !alive(pid),
        "the emulator was killed while the test unwound"
    );
}

#[test]
fn it_starts_inside_a_network_namespace() {
    let private = kernel::PrivateNetns::new().unwrap();
    let netns = private.netns().unwrap();
    let mut nl = kernel::Netlink::in_netns(&netns).unwrap();
    let lo = nl.link_by_name("lo").unwrap().unwrap();
    nl.set_link_up(lo.index).unwrap();

    let cloud = netns.run(Ec2Emulator::start).unwrap();
    let inode = |path: &Path| std::fs::read_link(path).unwrap();
    assert_eq!(
        inode(Path::new(&format!("/proc/{}/ns/net", cloud.pid()))),
        inode(&private.path()),
        "the emulator runs in the namespace it was started in"
    );
    let node = netns
        .run(|| cloud.seed_node(&NodeSpec::new("t3.medium")))
        .unwrap();
    let token = netns.run(|| cloud.imds_token()).unwrap();
    assert_eq!(
        netns.run(|| cloud.imds_get(&token, "mac")).unwrap(),
        Some(node.mac)
    );
}

#[test]
fn an_aws_sdk_reads_every_answer_and_retries_injected_throttling() {
    let (cloud, node) = node("t3.medium");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ec2_emulator_boto3.py");
    let out = std::process::Command::new(venv_python())
        .arg(script)
        .args([
            &cloud.ec2_url(),
            &cloud.imds_url(),
            &node.subnet_id,
            &node.instance_id,
        ])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stdout == b"ok\n",
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let throttled = Ec2Call {
        action: "DescribeInstances".to_owned(),
        status: 503,
        code: Some("RequestLimitExceeded".to_owned()),
    };
    let answered = Ec2Call {
        status: 200,
        code: None,
        ..throttled.clone()
    };
    assert!(cloud
        .calls()
        .ends_with(&[throttled.clone(), throttled, answered]));
}
