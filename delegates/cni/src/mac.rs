//! MAC addresses as netconfs and annotations write them.

use std::fmt;

use serde::{Serialize, Serializer};

/// A 6-byte (Ethernet) MAC address. Written lowercase with colons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MacAddress(pub [u8; 6]);

impl MacAddress {
    /// Parses six two-digit hex bytes separated all by `:` or all by `-`
    /// (`0a:58:0a:f4:01:05`, `0A-58-0A-F4-01-05`).
    pub fn parse(text: &str) -> Option<MacAddress> {
        let separator = *text.as_bytes().get(2)?;
        if separator != b':' && separator != b'-' {
            return None;
        }
        let mut bytes = [0u8; 6];
        let mut groups = text.split(char::from(separator));
        for byte in &mut bytes {
            let group = groups.next()?;
            // from_str_radix alone would take "+f" or "f".
            if group.len() != 2 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            *byte = u8::from_str_radix(group, 16).ok()?;
        }
        groups.next().is_none().then_some(MacAddress(bytes))
    }

    /// The six bytes.
    pub fn octets(self) -> [u8; 6] {
        self.0
    }
}

impl fmt::Display for MacAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Serialize for MacAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_colon_and_dash_forms() {
        let mac = MacAddress([0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x05]);
        assert_eq!(MacAddress::parse("0a:58:0a:f4:01:05"), Some(mac));
        assert_eq!(MacAddress::parse("0A-58-0A-F4-01-05"), Some(mac));
        assert_eq!(mac.to_string(), "0a:58:0a:f4:01:05");
        assert_eq!(mac.octets(), [0x0a, 0x58, 0x0a, 0xf4, 0x01, 0x05]);
        assert_eq!(
            serde_json::to_string(&mac).unwrap(),
            "\"0a:58:0a:f4:01:05\""
        );
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "0a:58:0a:f4:01",
            "0a:58:0a:f4:01:05:06",
            "0a:58:0a:f4:01:05:",
            "0a:58-0a:f4:01:05",
            "0a:58:0a:f4:01:5",
            "0a:58:0a:f4:01:+5",
            "0a:58:0a:f4:01:zz",
            "0a.58.0a.f4.01.05",
            "0a580af40105",
            "00:00:00:00:00:00:00:00",
            " 0a:58:0a:f4:01:05",
        ] {
            assert_eq!(MacAddress::parse(bad), None, "{bad}");
        }
    }
}
