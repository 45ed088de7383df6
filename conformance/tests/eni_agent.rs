//! The ENI agent (`eni-ipamd`) on the emulated cloud: the warm pool of each mode, the
//! instance's limits, the cooldowns, kill -9, EC2 faults, concurrency and the socket
//! protocol. The real agent binary and the real AWS SDK, against moto plus the emulator's
//! layer; no EC2 mock.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use conformance::ec2_emulator::{Ec2Emulator, Node, NodeSpec};
use conformance::eni_agent::EniAgent;
use eni_ip::protocol::client::ClientError;
use eni_ip::protocol::{
    AddNetwork, Assigned, AttachmentKey, DelNetwork, ErrorCode, Gc, Outcome, Response,
    ValidAttachment, PROTOCOL_VERSION,
};
use serde_json::Value;

const SETTLE: Duration = Duration::from_secs(30);

fn node(instance_type: &str) -> (Ec2Emulator, Node) {
    let cloud = Ec2Emulator::start();
    let node = cloud.seed_node(&NodeSpec::new(instance_type));
    (cloud, node)
}

fn key(container: &str) -> AttachmentKey {
    AttachmentKey {
        network: "vpc".into(),
        container_id: container.into(),
        ifname: "eth0".into(),
    }
}

fn add_request(container: &str) -> AddNetwork {
    AddNetwork {
        key: key(container),
        netns: format!("/var/run/netns/{container}"),
        pod_namespace: "default".into(),
        pod_name: container.into(),
    }
}

#[track_caller]
fn add(agent: &EniAgent, container: &str) -> Assigned {
    agent
        .client()
        .add_network(add_request(container))
        .unwrap_or_else(|e| panic!("ADD {container}: {e}\n{}", agent.log()))
}

#[track_caller]
fn del(agent: &EniAgent, container: &str) -> Option<Ipv4Addr> {
    agent
        .client()
        .del_network(DelNetwork {
            key: key(container),
            reason: "PodDeleted".into(),
        })
        .unwrap_or_else(|e| panic!("DEL {container}: {e}\n{}", agent.log()))
        .address
}

/// The node's ENIs in EC2: id → (secondary addresses, prefixes).
fn ec2_view(cloud: &Ec2Emulator, node: &Node) -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    cloud
        .enis_of(&node.instance_id)
        .iter()
        .map(|e| {
            let strings = |k: &str| -> Vec<String> {
                e[k].as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            };
            let ips = strings("private_ips");
            (
                e["id"].as_str().unwrap().to_owned(),
                (ips[1..].to_vec(), strings("prefixes")),
            )
        })
        .collect()
}

/// Every ENI of the account that is attached to nothing (a leftover).
fn detached_enis(cloud: &Ec2Emulator) -> Vec<Value> {
    cloud.state()["enis"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["attachment"].is_null())
        .cloned()
        .collect()
}

/// The agent's ENIs from /v1/enis: id → blocks.
fn agent_view(agent: &EniAgent) -> BTreeMap<String, BTreeSet<String>> {
    agent.get("/v1/enis")["enis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let cidrs = e["cidrs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["cidr"].as_str().unwrap().to_owned())
                .collect();
            (e["id"].as_str().unwrap().to_owned(), cidrs)
        })
        .collect()
}

/// The agent's view and EC2's agree block for block.
fn consistent_with_ec2(agent: &EniAgent, cloud: &Ec2Emulator, node: &Node) -> bool {
    let ours = agent_view(agent);
    let theirs: BTreeMap<String, BTreeSet<String>> = ec2_view(cloud, node)
        .into_iter()
        .map(|(id, (ips, prefixes))| {
            let blocks = ips
                .into_iter()
                .map(|ip| format!("{ip}/32"))
                .chain(prefixes)
                .collect();
            (id, blocks)
        })
        .collect();
    ours == theirs
}

/// The agent's allocations (`/v1/pods`): container ID → address.
fn allocations(agent: &EniAgent) -> BTreeMap<String, Ipv4Addr> {
    agent
        .get("/v1/pods")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["containerId"].as_str().unwrap().to_owned(),
                p["address"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

fn pool(agent: &EniAgent) -> Value {
    agent.get("/v1/pool")
}

/// The secondary addresses of each of the node's ENIs, by device index.
fn secondary_counts(cloud: &Ec2Emulator, node: &Node) -> Vec<usize> {
    cloud
        .enis_of(&node.instance_id)
        .iter()
        .map(|e| {
            e["private_ips"]
                .as_array()
                .map_or(0, |ips| ips.len().saturating_sub(1))
        })
        .collect()
}

#[test]
fn warm_eni_target_from_an_empty_node() {
    let (cloud, node) = node("t3.medium");
    let agent = EniAgent::start(&cloud, &[("WARM_ENI_TARGET", "2")]);
    // t3.medium: 5 pod addresses per ENI; two ENIs' worth free means two full ENIs.
    agent.wait_for("two full ENIs", SETTLE, || {
        secondary_counts(&cloud, &node) == vec![5, 5]
    });
    let enis = cloud.enis_of(&node.instance_id);
    let second = &enis[1];
    assert_eq!(second["attachment"]["device_index"], 1);
    assert_eq!(second["attachment"]["delete_on_termination"], true);
    assert_eq!(
        second["description"],
        format!("aws-K8S-{}", node.instance_id)
    );
    assert_eq!(second["subnet_id"], node.subnet_id);
    assert_eq!(
        second["security_group_ids"],
        serde_json::json!([node.security_group_id])
    );
    let tags = second["tags"].to_string();
    assert!(
        tags.contains("node.k8s.amazonaws.com/instance_id"),
        "{tags}"
    );
    agent.wait_for("the agent's view", SETTLE, || {
        consistent_with_ec2(&agent, &cloud, &node)
    });
    let p = pool(&agent);
    assert_eq!(p["total"], 10, "{p}");
    assert_eq!(p["enis"], 2);
    assert_eq!(p["maxPods"], 17, "t3.medium: 3 × (6 − 1) + 2");
    assert_eq!(p["limits"]["maxEnis"], 3);
    assert_eq!(p["limits"]["maxIpsPerEni"], 5);
    // Stays there: no third ENI while the target holds.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(cloud.enis_of(&node.instance_id).len(), 2);
    assert!(detached_enis(&cloud).is_empty());
}

#[test]
fn warm_ip_and_minimum_ip_targets() {
    let (cloud, node) = node("t3.medium");
    let agent = EniAgent::start(
        &cloud,
        &[("WARM_IP_TARGET", "2"), ("MINIMUM_IP_TARGET", "8")],
    );
    // The floor of 8: the primary ENI's 5, then a second ENI with just the 3 missing.
    agent.wait_for("8 addresses on 2 ENIs", SETTLE, || {
        secondary_counts(&cloud, &node) == vec![5, 3]
    });
    agent.wait_for("the agent's view", SETTLE, || {
        consistent_with_ec2(&agent, &cloud, &node)
    });
    assert_eq!(pool(&agent)["total"], 8);
    for n in 0..7 {
        add(&agent, &format!("pod{n}"));
    }
    // 7 held: 2 warm above them means 9 (the floor no longer binds).
    agent.wait_for("9 addresses", SETTLE, || {
        secondary_counts(&cloud, &node).iter().sum::<usize>() == 9
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(secondary_counts(&cloud, &node).iter().sum::<usize>(), 9);
    agent.wait_for("the agent's view", SETTLE, || {
        consistent_with_ec2(&agent, &cloud, &node)
    });
    // All released: the pool gives back what is over WARM_IP_TARGET, but never goes below
    // MINIMUM_IP_TARGET.
    for n in 0..7 {
        del(&agent, &format!("pod{n}"));
    }
    agent.wait_for("back to the floor of 8", SETTLE, || {
        secondary_counts(&cloud, &node).iter().sum::<usize>() == 8
    });
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(secondary_counts(&cloud, &node).iter().sum::<usize>(), 8);
    assert_eq!(pool(&agent)["total"], 8);
}

#[test]
fn prefix_delegation_keeps_warm_prefixes() {
    let (cloud, node) = node("t3.medium");
    let agent = EniAgent::start(
        &cloud,
        &[
            ("ENABLE_PREFIX_DELEGATION", "true"),
            ("WARM_PREFIX_TARGET", "1"),
        ],
    );
    let prefixes = |cloud: &Ec2Emulator| -> Vec<usize> {
        ec2_view(cloud, &node)
            .values()
            .map(|(_, p)| p.len())
            .collect()
    };
    agent.wait_for("one free prefix", SETTLE, || prefixes(&cloud) == vec![1]);
    let first = add(&agent, "pod0");
    let prefix = ec2_view(&cloud, &node).values().next().unwrap().1[0].clone();
    let (network, len) = prefix.split_once('/').unwrap();
    assert_eq!(len, "28");
    let network = u32::from(network.parse::<Ipv4Addr>().unwrap());
    assert_eq!(
        u32::from(first.address) & !0xf,
        network,
        "{first:?} from {prefix}"
    );
    // The prefix is in use: one more keeps one free.
    agent.wait_for("a second prefix", SETTLE, || prefixes(&cloud) == vec![2]);
    let p = pool(&agent);
    assert_eq!(p["totalPrefixes"], 2, "{p}");
    assert_eq!(p["freePrefixes"], 1, "{p}");
    assert_eq!(p["total"], 32);
    // No secondary IPs in prefix mode.
    assert!(ec2_view(&cloud, &node)
        .values()
        .all(|(ips, _)| ips.is_empty()));
    agent.wait_for("the agent's view", SETTLE, || {
        consistent_with_ec2(&agent, &cloud, &node)
    });
}

#[test]
fn statement_46_warm_pool_limits_and_kill_9() {
    let (cloud, node) = node("t3.medium");
    let mut agent = EniAgent::start(&cloud, &[]);
    agent.wait_for("the primary ENI filled", SETTLE, || {
        secondary_counts(&cloud, &node) == vec![5]
    });
    // Within the targets: WARM_ENI_TARGET 1 on an idle node is one ENI's worth.
    agent.wait_for("the agent's view", SETTLE, || {
        consistent_with_ec2(&agent, &cloud, &node)
    });
    assert_eq!(pool(&agent)["total"], 5);
    let mut held = BTreeMap::new();
    for n in 0..15 {
        let a = add(&agent, &format!("pod{n}"));
        held.insert(format!("pod{n}"), a.address);
    }
    let distinct: BTreeSet<_> = held.values().collect();
    assert_eq!(distinct.len(), 15, "no address twice: {held:?}");
    assert_eq!(secondary_counts(&cloud, &node), vec![5, 5, 5]);
    // Past the instance's limits: refused, by name, and nothing half-made.
    cloud.clear_calls();
    let err = agent
        .client()
        .add_network(add_request("pod15"))
        .unwrap_err();
    let ClientError::Agent(err) = err else {
        panic!("{err}")
    };
    assert_eq!(err.code, ErrorCode::NoAvailableAddresses);
    assert!(
        err.message
            .contains("t3.medium allows 3 ENIs of 5 addresses each: all 15 are assigned"),
        "{}",
        err.message
    );
    std::thread::sleep(Duration::from_millis(500));
    let calls: Vec<String> = cloud.calls().into_iter().map(|c| c.action).collect();
    assert!(
        !calls
            .iter()
            .any(|c| c == "CreateNetworkInterface" || c == "AttachNetworkInterface"),
        "{calls:?}"
    );
    assert!(
        detached_enis(&cloud).is_empty(),
        "{:?}",
        detached_enis(&cloud)
    );
    assert_eq!(cloud.enis_of(&node.instance_id).len(), 3);
    assert!(consistent_with_ec2(&agent, &cloud, &node));

    // kill -9 and restart: the same 15, none doubled, the pool as EC2 has it.
    agent.kill9();
    agent.restart();
    let restored = allocations(&agent);
    assert_eq!(restored, held);
    assert!(consistent_with_ec2(&agent, &cloud, &node));
    // Repeating an ADD after the restart gives the same address, not a second one.
    assert_eq!(add(&agent, "pod3").address, held["pod3"]);
    assert_eq!(pool(&agent)["assigned"], 15);
}

#[test]
fn kill_9_with_20_allocations_loses_and_doubles_nothing() {
    let (cloud, node) = node("m5.large");
    let mut agent = EniAgent::start(&cloud, &[]);
    let mut held = BTreeMap::new();
    for n in 0..20 {
        held.insert(format!("c{n}"), add(&agent, &format!("c{n}")).address);
    }
    let on_disk = agent.read_checkpoint();
    assert_eq!(on_disk["version"], "vpc-cni-ipam/1");
    assert_eq!(on_disk["allocations"].as_array().unwrap().len(), 20);
    agent.kill9();
    // One pod's address left the ENIs while the agent was down: it is dropped as stale.
    let (victim, victim_ip) = held.iter().next().map(|(k, v)| (k.clone(), *v)).unwrap();
    let eni = ec2_view(&cloud, &node)
        .into_iter()
        .find(|(_, (ips, _))| ips.contains(&victim_ip.to_string()))
        .map(|(id, _)| id)
        .unwrap();
    cloud
        .ec2(
            "UnassignPrivateIpAddresses",
            &[
                ("NetworkInterfaceId", &eni),
                ("PrivateIpAddress.1", &victim_ip.to_string()),
            ],
        )
        .ok();
    agent.restart();
    held.remove(&victim);
    let restored = allocations(&agent);
    assert_eq!(
        restored, held,
        "the 19 still on the ENIs, the stale one dropped"
    );
    assert!(agent.log().contains("checkpoint allocation dropped"));
    assert_eq!(
        agent.read_checkpoint()["allocations"]
            .as_array()
            .unwrap()
            .len(),
        19
    );
    agent.wait_for("the agent's view", SETTLE, || {
        consistent_with_ec2(&agent, &cloud, &node)
    });
    // New pods get addresses nobody holds.
    let fresh = add(&agent, "new");
    assert!(!held.values().any(|a| *a == fresh.address));
}

#[test]
fn releases_shrink_the_pool_only_after_the_cooldowns() {
    let (cloud, node) = node("t3.medium");
    let agent = EniAgent::start(
        &cloud,
        &[
            ("ENI_IPAMD_MIN_ENI_LIFETIME_MS", "2000"),
            ("IP_COOLDOWN_PERIOD", "3"),
        ],
    );
    // WARM_ENI_TARGET 1: six pods fill the primary ENI and one address of a second, and a
    // third ENI keeps an ENI's worth free.
    for n in 0..6 {
        add(&agent, &format!("pod{n}"));
    }
    agent.wait_for("three ENIs", SETTLE, || {
        cloud.enis_of(&node.instance_id).len() == 3
    });
    let enis: Vec<String> = cloud
        .enis_of(&node.instance_id)
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    let attached = Instant::now();
    for n in 0..6 {
        assert!(del(&agent, &format!("pod{n}")).is_some());
    }
    let released = Instant::now();
    // The third ENI (no pods, nothing cooling) goes once it is 2 s old; the second holds
    // an address in IP_COOLDOWN_PERIOD and goes only after it; the primary never.
    let mut gone: BTreeMap<String, Duration> = BTreeMap::new();
    let deadline = Instant::now() + SETTLE;
    while gone.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "ENIs not freed: {gone:?}\n{}",
            agent.log()
        );
        let attached_now: BTreeSet<String> = cloud
            .enis_of(&node.instance_id)
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect();
        for id in &enis[1..] {
            if !attached_now.contains(id) && !gone.contains_key(id) {
                gone.insert(id.clone(), released.elapsed());
                assert!(
                    attached.elapsed() >= Duration::from_millis(1900),
                    "{id} freed {:?} after it was attached",
                    attached.elapsed()
                );
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        gone[&enis[2]] < gone[&enis[1]],
        "the ENI without cooling addresses first: {gone:?}"
    );
    assert!(
        gone[&enis[1]] >= Duration::from_millis(2900),
        "an ENI with an address in cooldown was freed after {:?}",
        gone[&enis[1]]
    );
    // Back to one ENI's worth; the freed ENIs deleted, not left detached.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(secondary_counts(&cloud, &node), vec![5]);
    for id in &enis[1..] {
        assert!(cloud.eni(id).is_none(), "{id} is deleted");
    }
    assert!(detached_enis(&cloud).is_empty());
    let calls: Vec<String> = cloud.calls().into_iter().map(|c| c.action).collect();
    let detach = calls
        .iter()
        .position(|c| c == "DetachNetworkInterface")
        .unwrap();
    let delete = calls
        .iter()
        .rposition(|c| c == "DeleteNetworkInterface")
        .unwrap();
    assert!(detach < delete, "{calls:?}");
    agent.wait_for("the agent's view", SETTLE, || {
        consistent_with_ec2(&agent, &cloud, &node)
    });
}

#[test]
fn a_released_address_is_not_reused_within_ip_cooldown_period() {
    let (cloud, node) = node("t3.medium");
    let agent = EniAgent::start(&cloud, &[("IP_COOLDOWN_PERIOD", "3")]);
    agent.wait_for("the primary ENI filled", SETTLE, || {
        secondary_counts(&cloud, &node) == vec![5]
    });
    let first = add(&agent, "a").address;
    let released_at = Instant::now();
    assert_eq!(del(&agent, "a"), Some(first));
    // Within the period: every ADD gets another address, even the lowest-first pick.
    for n in 0..4 {
        let b = add(&agent, &format!("b{n}")).address;
        assert_ne!(b, first, "reused {:?} after release", released_at.elapsed());
    }
    for n in 0..4 {
        del(&agent, &format!("b{n}"));
    }
    // After it, the address is handed out again (lowest first).
    std::thread::sleep(
        Duration::from_secs(3).saturating_sub(released_at.elapsed()) + Duration::from_millis(300),
    );
    assert_eq!(add(&agent, "c").address, first);
}

#[test]
fn throttling_and_5xx_are_retried_with_backoff_and_converge() {
    let (cloud, node) = node("t3.medium");
    cloud.fail_next("DescribeInstanceTypes", "RequestLimitExceeded", 1);
    cloud.fail_next("CreateNetworkInterface", "RequestLimitExceeded", 3);
    cloud.fail_next_with_status("AssignPrivateIpAddresses", "InternalError", 500, 2);
    // Two attempts per call: the SDK's retries run out once, the pool loop's back-off
    // takes over.
    let agent = EniAgent::start(
        &cloud,
        &[
            ("WARM_ENI_TARGET", "2"),
            ("ENI_IPAMD_EC2_MAX_ATTEMPTS", "2"),
        ],
    );
    agent.wait_for("two full ENIs", Duration::from_secs(60), || {
        secondary_counts(&cloud, &node) == vec![5, 5]
    });
    let calls = cloud.calls();
    let count = |action: &str, code: Option<&str>| {
        calls
            .iter()
            .filter(|c| c.action == action && c.code.as_deref() == code)
            .count()
    };
    assert_eq!(
        count("CreateNetworkInterface", Some("RequestLimitExceeded")),
        3
    );
    assert_eq!(
        count("CreateNetworkInterface", None),
        1,
        "one ENI made, none twice"
    );
    assert_eq!(count("AssignPrivateIpAddresses", Some("InternalError")), 2);
    assert!(detached_enis(&cloud).is_empty());
    let metrics = agent.get_raw("/metrics").body;
    assert!(
        metrics.contains(
            "awscni_ec2api_error_count_total{fn=\"CreateNetworkInterface\",error=\"RequestLimitExceeded\"}"
        ),
        "{metrics}"
    );
    assert!(
        agent.log().contains("pool tick failed"),
        "the loop backed off"
    );
    agent.wait_for("the agent's view", SETTLE, || {
        consistent_with_ec2(&agent, &cloud, &node)
    });
}

#[test]
fn insufficient_free_addresses_backs_off() {
    let (cloud, node) = node("t3.medium");
    cloud.fail_next(
        "AssignPrivateIpAddresses",
        "InsufficientFreeAddressesInSubnet",
        1000,
    );
    let agent = EniAgent::start(
        &cloud,
        &[("ENI_IPAMD_INSUFFICIENT_CIDR_COOLDOWN_MS", "2000")],
    );
    let watched = Instant::now();
    std::thread::sleep(Duration::from_millis(3000));
    // An ADD meanwhile is refused, saying why.
    let err = agent.client().add_network(add_request("p")).unwrap_err();
    let ClientError::Agent(err) = err else {
        panic!("{err}")
    };
    assert_eq!(err.code, ErrorCode::NoAvailableAddresses);
    assert!(
        err.message.contains("InsufficientFreeAddressesInSubnet"),
        "{}",
        err.message
    );
    let tries = cloud
        .calls()
        .iter()
        .filter(|c| c.action == "AssignPrivateIpAddresses")
        .count();
    // One try per 2 s cooldown (plus the one at the edge): with a 100 ms pool interval a
    // retry storm would be dozens.
    let bound = (watched.elapsed().as_millis() / 2000 + 2) as usize;
    assert!(tries <= bound, "{tries} tries in {:?}", watched.elapsed());
    assert!(tries >= 1);
    cloud.clear_faults();
    agent.wait_for("the pool filled once the subnet has room", SETTLE, || {
        secondary_counts(&cloud, &node) == vec![5]
    });
    add(&agent, "p");
}

#[test]
fn fifty_concurrent_adds_get_fifty_distinct_addresses() {
    let (cloud, node) = node("m5.xlarge");
    let agent = EniAgent::start(&cloud, &[]);
    let socket = agent.socket();
    let answers: Vec<Assigned> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|n| {
                let socket = socket.clone();
                s.spawn(move || {
                    eni_ip::protocol::client::Client::new(socket, "conformance")
                        .with_timeout(Duration::from_secs(120))
                        .add_network(add_request(&format!("pod{n}")))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap()
                    .unwrap_or_else(|e| panic!("{e}\n{}", agent.log()))
            })
            .collect()
    });
    let distinct: BTreeSet<Ipv4Addr> = answers.iter().map(|a| a.address).collect();
    assert_eq!(distinct.len(), 50);
    let ec2 = ec2_view(&cloud, &node);
    for a in &answers {
        let holders: Vec<&String> = ec2
            .iter()
            .filter(|(_, (ips, _))| ips.contains(&a.address.to_string()))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(holders, vec![&a.eni_id], "{} on exactly its ENI", a.address);
    }
    assert!(detached_enis(&cloud).is_empty());
}

#[test]
fn protocol_versions_garbage_idempotence_and_gc() {
    let (cloud, _node) = node("t3.medium");
    let mut agent = EniAgent::start(&cloud, &[]);
    let raw = |bytes: &[u8]| -> Response {
        let mut s = UnixStream::connect(agent.socket()).unwrap();
        s.write_all(bytes).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
    };
    // Root-only: the socket 0600 in a 0700 directory the agent made.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&agent.socket()), 0o600);
    assert_eq!(mode(agent.socket().parent().unwrap()), 0o700);
    assert_eq!(mode(agent.checkpoint().parent().unwrap()), 0o700);
    // Another version, even with a body of another shape: refused, with the agent's own.
    let other = raw(br#"{"protocol":999,"client":"future","call":{"kind":"teleport"}}"#);
    assert_eq!(other.protocol, PROTOCOL_VERSION);
    assert!(other.server.starts_with("eni-ipamd/"));
    let Outcome::Error(err) = other.outcome else {
        panic!("{other:?}")
    };
    assert_eq!(err.code, ErrorCode::VersionMismatch);
    for garbage in [
        &b"hello"[..],
        b"",
        b"{\"protocol\":1}",
        b"{\"protocol\":1,\"client\":\"x\",\"call\":{\"kind\":\"addNetwork\"}}",
    ] {
        let answer = raw(garbage);
        let Outcome::Error(err) = answer.outcome else {
            panic!("{answer:?}")
        };
        assert_eq!(err.code, ErrorCode::BadRequest, "{garbage:?}");
    }
    // An empty key is refused by name.
    let err = agent.client().add_network(add_request("")).unwrap_err();
    assert!(err.to_string().contains("containerId"), "{err}");

    // Idempotent repeats.
    let a = add(&agent, "a");
    assert_eq!(add(&agent, "a"), a);
    let b = add(&agent, "b");
    assert_ne!(a.address, b.address);
    assert_eq!(a.route_table, 254, "primary ENI: main table");
    assert_eq!(a.vpc_cidrs, vec!["10.0.0.0/16".parse().unwrap()]);
    assert_eq!(del(&agent, "a"), Some(a.address));
    assert_eq!(del(&agent, "a"), None);
    // GC keeps the valid attachments of the network, and other networks' allocations.
    let c = add(&agent, "c");
    let other_net = agent
        .client()
        .add_network(AddNetwork {
            key: AttachmentKey {
                network: "other".into(),
                ..key("d")
            },
            ..add_request("d")
        })
        .unwrap();
    let collected = agent
        .client()
        .gc(Gc {
            network: "vpc".into(),
            valid: vec![ValidAttachment {
                container_id: "c".into(),
                ifname: "eth0".into(),
            }],
        })
        .unwrap();
    assert_eq!(collected.released, vec![(key("b"), b.address)]);
    let held: BTreeSet<String> = agent
        .get("/v1/pods")
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["address"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        held,
        BTreeSet::from([c.address.to_string(), other_net.address.to_string()])
    );
    let status = agent.client().status().unwrap();
    assert!(status.ready);
    assert_eq!(status.assigned, 2);
    assert_eq!(status.max_pods, 17);
    // Health, readiness and metrics on loopback.
    assert_eq!(agent.get_raw("/healthz").status, 200);
    assert_eq!(agent.get_raw("/readyz").status, 200);
    assert_eq!(agent.get_raw("/nope").status, 404);
    let metrics = agent.get_raw("/metrics").body;
    for name in [
        "awscni_eni_allocated ",
        "awscni_eni_max 3",
        "awscni_assigned_ip_addresses 2",
        "awscni_add_ip_req_count_total",
        "awscni_del_ip_req_count_total{reason=\"GC\"} 1",
        "awscni_ec2api_req_count_total{fn=\"DescribeInstanceTypes\"}",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }
    // SIGTERM: a clean exit, the socket gone, the allocations on disk.
    let status = agent.terminate();
    assert!(status.success(), "{status:?}\n{}", agent.log());
    assert!(!agent.socket().exists());
    assert_eq!(
        agent.read_checkpoint()["allocations"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn an_agent_with_no_node_in_imds_fails_to_start_clearly() {
    let cloud = Ec2Emulator::start();
    let (err, log) = EniAgent::try_start(&cloud, &[("AWS_REGION", "us-west-2")]).unwrap_err();
    assert!(err.contains("exited before it was ready"), "{err}");
    assert!(log.contains("learning the node from IMDS"), "{log}");
}

#[test]
fn reconcile_follows_an_address_unassigned_outside_the_agent() {
    let (cloud, node) = node("t3.medium");
    let agent = EniAgent::start(&cloud, &[]);
    agent.wait_for("the primary ENI filled", SETTLE, || {
        secondary_counts(&cloud, &node) == vec![5]
    });
    let a = add(&agent, "a");
    add(&agent, "b");
    // Someone takes pod a's address off the ENI behind the agent's back.
    cloud
        .ec2(
            "UnassignPrivateIpAddresses",
            &[
                ("NetworkInterfaceId", &a.eni_id),
                ("PrivateIpAddress.1", &a.address.to_string()),
            ],
        )
        .ok();
    // The next reconcile (1 s here) drops the address and its allocation, on disk too.
    agent.wait_for("the allocation dropped", SETTLE, || {
        agent.get("/v1/pods").as_array().unwrap().len() == 1
    });
    let on_disk = agent.read_checkpoint();
    let held: Vec<&str> = on_disk["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["containerID"].as_str().unwrap())
        .collect();
    assert_eq!(held, vec!["b"]);
    assert!(
        agent.log().contains("block gone from EC2"),
        "{}",
        agent.log()
    );
    agent.wait_for("the agent's view", SETTLE, || {
        consistent_with_ec2(&agent, &cloud, &node)
    });
    let metrics = agent.get_raw("/metrics").body;
    assert!(
        !metrics.contains("awscni_reconcile_count_total 0"),
        "{metrics}"
    );
}

#[test]
fn switching_to_prefix_delegation_gives_back_the_free_secondary_ips() {
    let (cloud, node) = node("t3.medium");
    let mut agent = EniAgent::start(&cloud, &[]);
    agent.wait_for("the primary ENI filled", SETTLE, || {
        secondary_counts(&cloud, &node) == vec![5]
    });
    let a = add(&agent, "a");
    assert!(agent.terminate().success());
    agent.set_env("ENABLE_PREFIX_DELEGATION", "true");
    agent.set_env("WARM_PREFIX_TARGET", "1");
    agent.restart();
    // The pod keeps its secondary IP; the 4 free ones go back; a free prefix comes.
    agent.wait_for("IPs given back and a prefix", SETTLE, || {
        let view = ec2_view(&cloud, &node);
        let (ips, prefixes) = view.values().next().unwrap();
        ips == &vec![a.address.to_string()] && prefixes.len() == 1
    });
    assert_eq!(add(&agent, "a"), a, "the restored allocation, same address");
    let b = add(&agent, "b");
    let prefix = ec2_view(&cloud, &node).values().next().unwrap().1[0].clone();
    let network: Ipv4Addr = prefix.split_once('/').unwrap().0.parse().unwrap();
    assert_eq!(
        u32::from(b.address) & !0xf,
        u32::from(network),
        "new pods from the prefix"
    );
    agent.wait_for("the agent's view", SETTLE, || {
        consistent_with_ec2(&agent, &cloud, &node)
    });
}

#[test]
fn failed_attach_or_attribute_change_leaves_nothing_half_made() {
    let (cloud, node) = node("t3.medium");
    // The first new ENI fails to attach, the second fails its delete-on-termination change;
    // the primary ENI's first fill is refused as over its limit (our view is re-read).
    cloud.fail_next("AttachNetworkInterface", "InvalidParameterValue", 1);
    cloud.fail_next(
        "ModifyNetworkInterfaceAttribute",
        "InvalidParameterValue",
        1,
    );
    cloud.fail_next(
        "AssignPrivateIpAddresses",
        "PrivateIpAddressLimitExceeded",
        1,
    );
    let agent = EniAgent::start(&cloud, &[("WARM_ENI_TARGET", "2")]);
    // A failed ENI is briefly attached before it is freed: wait for the third ENI, and for
    // the agent to hold what EC2 has.
    agent.wait_for("two full ENIs, the third one made", SETTLE, || {
        let made = cloud
            .calls()
            .iter()
            .filter(|c| c.action == "CreateNetworkInterface" && c.code.is_none())
            .count();
        made == 3
            && secondary_counts(&cloud, &node) == vec![5, 5]
            && consistent_with_ec2(&agent, &cloud, &node)
    });
    // Of the three ENIs created, the two that failed are deleted: none is left detached.
    assert!(
        detached_enis(&cloud).is_empty(),
        "{:?}",
        detached_enis(&cloud)
    );
    assert_eq!(
        cloud.state()["enis"].as_array().unwrap().len(),
        2,
        "{}",
        agent.log()
    );
    let calls = cloud.calls();
    let count = |action: &str, code: Option<&str>| {
        calls
            .iter()
            .filter(|c| c.action == action && c.code.as_deref() == code)
            .count()
    };
    assert_eq!(count("CreateNetworkInterface", None), 3);
    assert_eq!(count("DeleteNetworkInterface", None), 2);
    assert_eq!(
        count("DetachNetworkInterface", None),
        1,
        "only the attached one is detached"
    );
    // After PrivateIpAddressLimitExceeded the ENI is re-read from EC2.
    let refused = calls
        .iter()
        .position(|c| c.code.as_deref() == Some("PrivateIpAddressLimitExceeded"))
        .unwrap();
    assert_eq!(
        calls[refused + 1].action,
        "DescribeNetworkInterfaces",
        "{calls:?}"
    );
    assert_eq!(
        cloud.enis_of(&node.instance_id)[1]["attachment"]["delete_on_termination"],
        true
    );
    agent.wait_for("the agent's view", SETTLE, || {
        consistent_with_ec2(&agent, &cloud, &node)
    });
}
