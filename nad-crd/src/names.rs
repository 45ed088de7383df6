//! The name rules for what an annotation refers to: namespaces and NAD names as Kubernetes
//! checks them (DNS-1123), interface names as the CNI spec says. These names end up in API
//! paths, cache file names and the kernel, so they are checked before any use.

/// The longest namespace (a DNS-1123 label).
pub const MAX_NAMESPACE_LEN: usize = 63;

/// The longest NAD name (a DNS-1123 subdomain).
pub const MAX_NAD_NAME_LEN: usize = 253;

/// Why `namespace` is not a DNS-1123 label, if it is not one.
pub fn namespace_problem(namespace: &str) -> Option<&'static str> {
    if namespace.is_empty() {
        Some("must not be empty")
    } else if namespace.len() > MAX_NAMESPACE_LEN {
        Some("must be at most 63 characters")
    } else if !is_label(namespace) {
        Some(
            "must consist of lower case alphanumeric characters or '-', \
             and start and end with an alphanumeric character",
        )
    } else {
        None
    }
}

/// Why `name` is not a DNS-1123 subdomain (what Kubernetes requires of a NAD's name), if it is
/// not one.
pub fn nad_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_NAD_NAME_LEN {
        Some("must be at most 253 characters")
    } else if !name.split('.').all(is_label) {
        Some(
            "must consist of lower case alphanumeric characters, '-' or '.', \
             each '.'-separated part starting and ending with an alphanumeric character",
        )
    } else {
        None
    }
}

/// Why `name` is not a valid interface name (1-15 bytes, not `.` or `..`, no `/`, `:` or
/// whitespace), if it is not one.
pub fn interface_name_problem(name: &str) -> Option<&'static str> {
    // One rule for CNI_IFNAME and requested names: the CNI crate owns it.
    cni::validate::ifname_problem(name)
}

// The label syntax alone; lengths are checked by the callers, which differ.
fn is_label(part: &str) -> bool {
    let bytes = part.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_dns_1123_labels() {
        for good in ["a", "default", "kube-system", "0", "a-0", &"a".repeat(63)] {
            assert_eq!(namespace_problem(good), None, "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a.b",
            "a_b",
            "..",
            "a b",
            "é",
            &"a".repeat(64),
        ] {
            assert!(namespace_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn nad_names_are_dns_1123_subdomains() {
        for good in [
            "a",
            "macvlan-conf",
            "net.v2",
            "a.b-c.d",
            "1.2",
            &"a".repeat(253),
        ] {
            assert_eq!(nad_name_problem(good), None, "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            ".a",
            "a.",
            "a..b",
            "a.-b",
            "a-.b",
            "Net",
            "a/b",
            "a_b",
            &"a".repeat(254),
        ] {
            assert!(nad_name_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn interface_names_follow_the_cni_spec() {
        for good in ["eth0", "net1", "a", "Data-0.1", &"x".repeat(15)] {
            assert_eq!(interface_name_problem(good), None, "{good}");
        }
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "a\tb", &"x".repeat(16)] {
            assert!(interface_name_problem(bad).is_some(), "{bad}");
        }
    }
}
