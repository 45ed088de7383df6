//! The VPC's source/destination check, in the router's nftables: per ENI port, a set of
//! the addresses and prefixes the ENI owns and a rule dropping, with a counter, whatever
//! arrives from the port with another source.

use std::process::{Command, Stdio};

/// The table of the check.
const TABLE: &str = "vpc";

/// The table and its forward chain (run in the router).
pub(super) fn create() {
    nft(
        &["-f", "-"],
        &format!(
            "add table inet {TABLE}\n\
             add chain inet {TABLE} src_check \
             {{ type filter hook forward priority 0; policy accept; }}\n"
        ),
    );
}

/// The check of a newly plugged port: an empty set and its rule (run in the router).
pub(super) fn watch(router_link: &str) {
    nft(
        &["-f", "-"],
        &format!(
            "add set inet {TABLE} {set} {{ type ipv4_addr; flags interval; }}\n\
             flush set inet {TABLE} {set}\n\
             add rule inet {TABLE} src_check iifname \"{router_link}\" \
             ip saddr != @{set} counter drop\n",
            set = owned_set(router_link),
        ),
    );
}

/// Sets what a port owns, in one transaction (run in the router).
pub(super) fn own(router_link: &str, blocks: &std::collections::BTreeSet<ipnet::Ipv4Net>) {
    let set = owned_set(router_link);
    let mut update = format!("flush set inet {TABLE} {set}\n");
    if !blocks.is_empty() {
        let elements: Vec<String> = blocks.iter().map(ipnet::Ipv4Net::to_string).collect();
        update.push_str(&format!(
            "add element inet {TABLE} {set} {{ {} }}\n",
            elements.join(", ")
        ));
    }
    nft(&["-f", "-"], &update);
}

/// The packets the rule of `router_link` dropped (run in the router).
pub(super) fn drops(router_link: &str) -> u64 {
    let listing = nft(&["list", "table", "inet", TABLE], "");
    let needle = format!("iifname \"{router_link}\"");
    listing
        .lines()
        .find(|line| line.contains(&needle))
        .and_then(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "packets")?;
            words.next()?.parse().ok()
        })
        .unwrap_or(0)
}

/// The nftables set of what the ENI behind the router's `router_link` owns.
fn owned_set(router_link: &str) -> String {
    format!("owned_{}", router_link.replace('-', "_"))
}

/// Removes an unplugged port's check (its rule, found by handle, then its set), so an ENI
/// attached later at the same index starts from a fresh counter.
pub(super) fn unwatch(router_link: &str) {
    let listing = nft(&["-a", "list", "chain", "inet", TABLE, "src_check"], "");
    let needle = format!("iifname \"{router_link}\"");
    let mut script = String::new();
    for line in listing.lines().filter(|line| line.contains(&needle)) {
        if let Some(handle) = line
            .rsplit("# handle ")
            .next()
            .filter(|h| h.trim().parse::<u64>().is_ok())
        {
            script.push_str(&format!(
                "delete rule inet {TABLE} src_check handle {}\n",
                handle.trim()
            ));
        }
    }
    script.push_str(&format!(
        "delete set inet {TABLE} {}\n",
        owned_set(router_link)
    ));
    nft(&["-f", "-"], &script);
}

/// Runs `nft` with `args` and `script` on stdin (in the calling thread's namespace);
/// returns its stdout.
fn nft(args: &[&str], script: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new("nft")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nft");
    child
        .stdin
        .take()
        .expect("nft's stdin")
        .write_all(script.as_bytes())
        .expect("write the nft script");
    let out = child.wait_with_output().expect("wait for nft");
    assert!(
        out.status.success(),
        "nft {args:?} failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
