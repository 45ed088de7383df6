//! Validation of the names that end up in paths or kernel objects: container IDs, interface
//! names, network names, plugin types. Checked before any path is built from them.

use crate::error::Error;

/// The longest interface name the kernel takes (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

fn is_id(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `CNI_CONTAINERID`: `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, code 4 otherwise.
pub fn container_id(id: &str) -> Result<(), Error> {
    if is_id(id) {
        Ok(())
    } else {
        Err(Error::environment(
            format!("invalid CNI_CONTAINERID {id:?}"),
            "must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$",
        ))
    }
}

/// Why `name` is not a valid interface name, if it is not one.
pub fn ifname_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_IFNAME_LEN {
        Some("must be at most 15 bytes")
    } else if name == "." || name == ".." {
        Some("must not be . or ..")
    } else if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace())
    {
        Some("must not contain '/', ':' or whitespace")
    } else {
        None
    }
}

/// `CNI_IFNAME`: the spec's interface name rules, code 4 otherwise.
pub fn ifname(name: &str) -> Result<(), Error> {
    match ifname_problem(name) {
        None => Ok(()),
        Some(why) => Err(Error::environment(
            format!("invalid CNI_IFNAME {name:?}"),
            why,
        )),
    }
}

/// A network's `name`: present and `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`, code 7 otherwise.
pub fn network_name(name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::invalid_config("name", "", "missing network name"));
    }
    if is_id(name) {
        Ok(())
    } else {
        Err(Error::invalid_config(
            "name",
            name,
            "must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$",
        ))
    }
}

/// A plugin `type`: a bare file name we may look up in `CNI_PATH`, code 7 otherwise.
pub fn plugin_type(t: &str) -> Result<(), Error> {
    if t.is_empty() {
        return Err(Error::invalid_config("type", "", "missing plugin type"));
    }
    if is_id(t) && t != "." && t != ".." {
        Ok(())
    } else {
        Err(Error::invalid_config(
            "type",
            t,
            "must be a file name matching ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids() {
        for ok in ["abc", "a", "0-1_2.3", "ABCdef0123456789"] {
            assert!(container_id(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-abc", "a b", ".a", "a/b", "_x", "a:b", "é"] {
            let e = container_id(bad).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::INVALID_ENVIRONMENT, "{bad}");
        }
    }

    #[test]
    fn ifnames() {
        for ok in [
            "eth0",
            "net1",
            "a",
            "123456789012345",
            "eth0.100",
            "veth-x_y",
        ] {
            assert!(ifname(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1234567890123456",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\tb",
        ] {
            let e = ifname(bad).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::INVALID_ENVIRONMENT, "{bad}");
        }
    }

    #[test]
    fn network_names_and_types() {
        assert!(network_name("my-net.v1_2").is_ok());
        for bad in ["", "-x", "a/b", "..", "a b"] {
            assert_eq!(
                network_name(bad).unwrap_err().code,
                crate::ErrorCode::INVALID_NETWORK_CONFIG,
                "{bad}"
            );
            assert_eq!(
                plugin_type(bad).unwrap_err().code,
                crate::ErrorCode::INVALID_NETWORK_CONFIG,
                "{bad}"
            );
        }
        assert!(plugin_type("host-local").is_ok());
    }
}
