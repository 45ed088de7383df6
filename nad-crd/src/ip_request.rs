//! A requested IP: an address with an optional prefix, as in the `ips` of a networks
//! annotation entry (`10.1.1.5/24`, `fd00::5`).

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Serialize, Serializer};

/// An address, with the prefix length when one was given. Written back as given (addresses
/// normalised: `fd00:0::5` becomes `fd00::5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpRequest {
    /// A bare address.
    Address(IpAddr),
    /// An address with its prefix length; host bits stay as given.
    Network(IpNet),
}

impl IpRequest {
    /// Parses `addr` or `addr/prefix`.
    pub fn parse(text: &str) -> Option<IpRequest> {
        if text.contains('/') {
            text.parse().ok().map(IpRequest::Network)
        } else {
            text.parse().ok().map(IpRequest::Address)
        }
    }

    /// The address.
    pub fn addr(&self) -> IpAddr {
        match self {
            IpRequest::Address(addr) => *addr,
            IpRequest::Network(net) => net.addr(),
        }
    }

    /// The prefix length, if one was given.
    pub fn prefix_len(&self) -> Option<u8> {
        match self {
            IpRequest::Address(_) => None,
            IpRequest::Network(net) => Some(net.prefix_len()),
        }
    }
}

impl fmt::Display for IpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpRequest::Address(addr) => addr.fmt(f),
            IpRequest::Network(net) => net.fmt(f),
        }
    }
}

impl Serialize for IpRequest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_with_and_without_prefix() {
        let with = IpRequest::parse("10.1.1.5/24").unwrap();
        assert_eq!(with.addr(), "10.1.1.5".parse::<IpAddr>().unwrap());
        assert_eq!(with.prefix_len(), Some(24));
        assert_eq!(with.to_string(), "10.1.1.5/24");
        let bare = IpRequest::parse("fd00:0::5").unwrap();
        assert_eq!(bare.prefix_len(), None);
        assert_eq!(bare.to_string(), "fd00::5");
        assert_eq!(serde_json::to_string(&with).unwrap(), "\"10.1.1.5/24\"");
    }

    #[test]
    fn rejects_what_is_not_an_address() {
        for bad in [
            "",
            "10.1.1",
            "10.1.1.5/33",
            "10.1.1.5/",
            "/24",
            "fd00::/129",
            "x",
            " 10.1.1.5",
        ] {
            assert_eq!(IpRequest::parse(bad), None, "{bad}");
        }
    }
}
