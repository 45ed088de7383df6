//! The merged result: every attachment's interfaces, IPs and routes in plan order (cluster
//! network first), IP interface indexes shifted to point into the merged list.

use cni::CniResult;

/// Merges `results` (in plan order); DNS comes from the cluster network.
pub(crate) fn merged<'a>(results: impl IntoIterator<Item = &'a CniResult>) -> CniResult {
    let mut out = CniResult::default();
    for (i, r) in results.into_iter().enumerate() {
        let offset = out.interfaces.len();
        out.interfaces.extend(r.interfaces.iter().cloned());
        out.ips.extend(r.ips.iter().cloned().map(|mut ip| {
            ip.interface = ip.interface.map(|k| k + offset);
            ip
        }));
        out.routes.extend(r.routes.iter().cloned());
        if i == 0 {
            out.dns = r.dns.clone();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cni::{Interface, IpConfig};

    fn result(names: &[&str], addr: &str) -> CniResult {
        CniResult {
            interfaces: names
                .iter()
                .map(|n| Interface {
                    name: n.to_string(),
                    ..Interface::default()
                })
                .collect(),
            ips: vec![IpConfig {
                interface: Some(names.len() - 1),
                address: addr.parse().unwrap(),
                gateway: None,
            }],
            ..CniResult::default()
        }
    }

    #[test]
    fn indexes_are_remapped() {
        let m = merged(&[
            result(&["cni0", "veth1", "eth0"], "10.0.0.2/24"),
            result(&["net1"], "10.1.0.2/24"),
        ]);
        assert_eq!(m.interfaces.len(), 4);
        assert_eq!(m.ips[0].interface, Some(2));
        assert_eq!(m.ips[1].interface, Some(3));
        m.validate().unwrap();
    }
}
