//! CNI specification versions and the rules that depend on them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A CNI specification version this library speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// 0.1.0: `ip4`/`ip6` results.
    V0_1_0,
    /// 0.2.0: same result format as 0.1.0.
    V0_2_0,
    /// 0.3.0: `interfaces`/`ips` results, `ips[].version`.
    V0_3_0,
    /// 0.3.1: as 0.3.0.
    V0_3_1,
    /// 0.4.0: adds CHECK and `prevResult` on DEL.
    V0_4_0,
    /// 1.0.0: drops `ips[].version`.
    V1_0_0,
    /// 1.1.0: adds STATUS, GC, `cniVersions`, interface and route attributes.
    V1_1_0,
}

/// The shape a result takes on the wire in a given version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultFormat {
    /// 0.1.0 and 0.2.0: `ip4`, `ip6`, `dns`.
    Legacy,
    /// 0.3.0 to 0.4.0: `interfaces`, `ips` with `version`, `routes`, `dns`.
    Versioned,
    /// 1.0.0 and later: `interfaces`, `ips`, `routes`, `dns`.
    Current,
}

impl Version {
    /// Every version, oldest first.
    pub const ALL: [Version; 7] = [
        Version::V0_1_0,
        Version::V0_2_0,
        Version::V0_3_0,
        Version::V0_3_1,
        Version::V0_4_0,
        Version::V1_0_0,
        Version::V1_1_0,
    ];

    /// The newest version: what we answer in when the caller named none we know.
    pub const LATEST: Version = Version::V1_1_0;

    /// The version's text, e.g. `"0.4.0"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V0_1_0 => "0.1.0",
            Version::V0_2_0 => "0.2.0",
            Version::V0_3_0 => "0.3.0",
            Version::V0_3_1 => "0.3.1",
            Version::V0_4_0 => "0.4.0",
            Version::V1_0_0 => "1.0.0",
            Version::V1_1_0 => "1.1.0",
        }
    }

    /// How results are shaped in this version.
    pub fn result_format(self) -> ResultFormat {
        match self {
            Version::V0_1_0 | Version::V0_2_0 => ResultFormat::Legacy,
            Version::V0_3_0 | Version::V0_3_1 | Version::V0_4_0 => ResultFormat::Versioned,
            Version::V1_0_0 | Version::V1_1_0 => ResultFormat::Current,
        }
    }

    /// CHECK exists from 0.4.0 on.
    pub fn has_check(self) -> bool {
        self >= Version::V0_4_0
    }

    /// STATUS and GC exist from 1.1.0 on.
    pub fn has_status_and_gc(self) -> bool {
        self >= Version::V1_1_0
    }

    /// Parses a netconf's `cniVersion`, where an empty value means 0.1.0 as in libcni.
    /// Fails (code 1 as a CNI error) naming the supported versions.
    pub fn from_config(text: &str, supported: &[Version]) -> Result<Version, Incompatible> {
        let text = if text.is_empty() { "0.1.0" } else { text };
        match text.parse::<Version>() {
            Ok(v) if supported.contains(&v) => Ok(v),
            _ => Err(Incompatible {
                asked: text.to_string(),
                supported: supported.to_vec(),
            }),
        }
    }

    /// Picks the newest of `offered` that is also in `supported` (`cniVersions` negotiation).
    pub fn negotiate<'a>(
        offered: impl IntoIterator<Item = &'a str>,
        supported: &[Version],
    ) -> Option<Version> {
        offered
            .into_iter()
            .filter_map(|s| s.parse::<Version>().ok())
            .filter(|v| supported.contains(v))
            .max()
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A `cniVersion` that is not among the versions a plugin speaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("config is {asked:?}, plugin supports {supported:?}")]
pub struct Incompatible {
    /// The version asked for.
    pub asked: String,
    /// The versions spoken.
    pub supported: Vec<Version>,
}

/// A version string that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown CNI version {0:?}")]
pub struct UnknownVersion(pub String);

impl FromStr for Version {
    type Err = UnknownVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| UnknownVersion(s.to_string()))
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_version_and_round_trips() {
        for v in Version::ALL {
            assert_eq!(v.as_str().parse::<Version>().unwrap(), v);
        }
        assert!("9.9.9".parse::<Version>().is_err());
    }

    #[test]
    fn empty_config_version_means_0_1_0() {
        assert_eq!(
            Version::from_config("", &Version::ALL).unwrap(),
            Version::V0_1_0
        );
    }

    #[test]
    fn unsupported_config_version_is_code_1_naming_supported() {
        let e: crate::Error = Version::from_config("1.0.0", &[Version::V0_3_1, Version::V0_4_0])
            .unwrap_err()
            .into();
        assert_eq!(e.code, crate::ErrorCode::INCOMPATIBLE_VERSION);
        assert!(e.details.contains("\"0.3.1\""), "{}", e.details);
        assert!(e.details.contains("\"1.0.0\""), "{}", e.details);
    }

    #[test]
    fn negotiation_picks_newest_common() {
        let v = Version::negotiate(["0.3.1", "1.0.0", "7.0.0"], &Version::ALL);
        assert_eq!(v, Some(Version::V1_0_0));
        assert_eq!(Version::negotiate(["7.0.0"], &Version::ALL), None);
    }

    #[test]
    fn gates() {
        assert!(!Version::V0_3_1.has_check());
        assert!(Version::V0_4_0.has_check());
        assert!(!Version::V1_0_0.has_status_and_gc());
        assert!(Version::V1_1_0.has_status_and_gc());
    }
}
