//! The warm-pool settings, read from the same environment variables as the AWS VPC CNI
//! (`WARM_ENI_TARGET`, `WARM_IP_TARGET`, …) so an existing aws-node configuration carries over.
//!
//! One difference on purpose: upstream logs and falls back to the default when a value does
//! not parse; we refuse it, naming the key, so a typo cannot silently resize every node's pool.

use std::time::Duration;

use crate::datastore::{DataStoreOptions, DEFAULT_IP_COOLDOWN, MIN_ENI_LIFETIME};

/// `WARM_ENI_TARGET`.
pub const WARM_ENI_TARGET: &str = "WARM_ENI_TARGET";
/// `WARM_IP_TARGET`.
pub const WARM_IP_TARGET: &str = "WARM_IP_TARGET";
/// `MINIMUM_IP_TARGET`.
pub const MINIMUM_IP_TARGET: &str = "MINIMUM_IP_TARGET";
/// `WARM_PREFIX_TARGET`.
pub const WARM_PREFIX_TARGET: &str = "WARM_PREFIX_TARGET";
/// `MAX_ENI`.
pub const MAX_ENI: &str = "MAX_ENI";
/// `ENABLE_PREFIX_DELEGATION`.
pub const ENABLE_PREFIX_DELEGATION: &str = "ENABLE_PREFIX_DELEGATION";
/// `IP_COOLDOWN_PERIOD` (seconds).
pub const IP_COOLDOWN_PERIOD: &str = "IP_COOLDOWN_PERIOD";

/// A value that could not be used; every variant names its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not a non-negative integer.
    #[error("{key}: {value:?} is not a non-negative integer")]
    NotAnInteger {
        /// The variable.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// Not one of Go's `strconv.ParseBool` spellings.
    #[error("{key}: {value:?} is not a boolean (true/false, 1/0, t/f)")]
    NotABool {
        /// The variable.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// `MAX_ENI` is at least 1, or -1 for "the instance's limit" (upstream's default value).
    #[error("{key}: {value:?} must be at least 1, or -1 for the instance limit")]
    MaxEniOutOfRange {
        /// The variable.
        key: &'static str,
        /// Its value.
        value: String,
    },
    /// Prefix mode with no target at all: the pool would never grow (the aws-node
    /// entrypoint refuses this too).
    #[error(
        "{key}: setting WARM_PREFIX_TARGET = 0 is not supported while WARM_IP_TARGET/MINIMUM_IP_TARGET is not set"
    )]
    NoPrefixModeTarget {
        /// `WARM_PREFIX_TARGET`.
        key: &'static str,
    },
    /// `MINIMUM_IP_TARGET` without `WARM_IP_TARGET` (the aws-node entrypoint refuses this).
    #[error("{key}: must be set when MINIMUM_IP_TARGET is set")]
    MinimumWithoutWarm {
        /// `WARM_IP_TARGET`.
        key: &'static str,
    },
}

impl ConfigError {
    /// The variable at fault.
    pub fn key(&self) -> &'static str {
        match self {
            ConfigError::NotAnInteger { key, .. }
            | ConfigError::NotABool { key, .. }
            | ConfigError::MaxEniOutOfRange { key, .. }
            | ConfigError::NoPrefixModeTarget { key }
            | ConfigError::MinimumWithoutWarm { key } => key,
        }
    }
}

/// The warm-pool targets. As upstream, 0 means "not set" for `WARM_IP_TARGET` and
/// `MINIMUM_IP_TARGET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WarmPoolConfig {
    /// Spare ENIs' worth of free addresses to keep (default 1); used when neither IP target
    /// is set.
    pub warm_eni_target: u32,
    /// Free addresses to keep (0: unset).
    pub warm_ip_target: u32,
    /// Floor on the total addresses (0: unset).
    pub minimum_ip_target: u32,
    /// Free /28 prefixes to keep in prefix mode (default 0); overridden by the IP targets.
    pub warm_prefix_target: u32,
    /// Cap on the ENIs the pool attaches, below the instance's own limit (`None`: no cap).
    pub max_eni: Option<u32>,
    /// Addresses come from /28 prefixes.
    pub prefix_delegation: bool,
    /// How long a released address is kept out of circulation (default 30 s).
    pub ip_cooldown: Duration,
}

impl Default for WarmPoolConfig {
    fn default() -> Self {
        WarmPoolConfig {
            warm_eni_target: 1,
            warm_ip_target: 0,
            minimum_ip_target: 0,
            warm_prefix_target: 0,
            max_eni: None,
            prefix_delegation: false,
            ip_cooldown: DEFAULT_IP_COOLDOWN,
        }
    }
}

impl WarmPoolConfig {
    /// Reads the settings from environment-like pairs. Other keys are ignored, an empty value
    /// is the same as an absent one (as `os.Getenv` sees it), and a later pair wins.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = WarmPoolConfig::default();
        let (mut warm_ip_set, mut minimum_ip_set) = (false, false);
        for (key, value) in vars {
            let value = value.as_ref().trim();
            if value.is_empty() {
                continue;
            }
            match key.as_ref() {
                WARM_ENI_TARGET => config.warm_eni_target = int(WARM_ENI_TARGET, value)?,
                WARM_IP_TARGET => {
                    config.warm_ip_target = int(WARM_IP_TARGET, value)?;
                    warm_ip_set = true;
                }
                MINIMUM_IP_TARGET => {
                    config.minimum_ip_target = int(MINIMUM_IP_TARGET, value)?;
                    minimum_ip_set = true;
                }
                WARM_PREFIX_TARGET => config.warm_prefix_target = int(WARM_PREFIX_TARGET, value)?,
                MAX_ENI => config.max_eni = max_eni(value)?,
                ENABLE_PREFIX_DELEGATION => {
                    config.prefix_delegation = boolean(ENABLE_PREFIX_DELEGATION, value)?
                }
                IP_COOLDOWN_PERIOD => {
                    config.ip_cooldown =
                        Duration::from_secs(u64::from(int(IP_COOLDOWN_PERIOD, value)?))
                }
                _ => {}
            }
        }
        // The two cross-key checks of the aws-node entrypoint (`validate_env_variable`).
        if config.prefix_delegation
            && config.warm_ip_target == 0
            && config.warm_prefix_target == 0
            && config.minimum_ip_target == 0
        {
            return Err(ConfigError::NoPrefixModeTarget {
                key: WARM_PREFIX_TARGET,
            });
        }
        if minimum_ip_set && !warm_ip_set {
            return Err(ConfigError::MinimumWithoutWarm {
                key: WARM_IP_TARGET,
            });
        }
        Ok(config)
    }

    /// Whether `WARM_IP_TARGET` or `MINIMUM_IP_TARGET` is set (upstream
    /// `warmIPTargetsDefined`): they then override the ENI and prefix targets.
    pub fn ip_targets_defined(&self) -> bool {
        self.warm_ip_target > 0 || self.minimum_ip_target > 0
    }

    /// Whether `WARM_PREFIX_TARGET` applies (upstream `warmPrefixTargetDefined`): whenever
    /// prefix mode is on, since the target's default 0 is itself a target.
    pub fn warm_prefix_target_defined(&self) -> bool {
        self.prefix_delegation
    }

    /// The datastore options these settings imply.
    pub fn datastore_options(&self) -> DataStoreOptions {
        DataStoreOptions {
            prefix_delegation: self.prefix_delegation,
            ip_cooldown: self.ip_cooldown,
            min_eni_lifetime: MIN_ENI_LIFETIME,
        }
    }

    /// The targets an ENI may be needed for when deciding what to detach.
    pub fn deletable_targets(&self) -> crate::datastore::DeletableTargets {
        crate::datastore::DeletableTargets {
            warm_ip_target: self.warm_ip_target,
            minimum_ip_target: self.minimum_ip_target,
            warm_prefix_target: self.warm_prefix_target,
        }
    }
}

fn int(key: &'static str, value: &str) -> Result<u32, ConfigError> {
    value.parse().map_err(|_| ConfigError::NotAnInteger {
        key,
        value: value.to_string(),
    })
}

fn max_eni(value: &str) -> Result<Option<u32>, ConfigError> {
    let out_of_range = || ConfigError::MaxEniOutOfRange {
        key: MAX_ENI,
        value: value.to_string(),
    };
    match value.parse::<i64>() {
        Ok(-1) => Ok(None),
        Ok(n) if n >= 1 => u32::try_from(n).map(Some).map_err(|_| out_of_range()),
        Ok(_) => Err(out_of_range()),
        Err(_) => Err(ConfigError::NotAnInteger {
            key: MAX_ENI,
            value: value.to_string(),
        }),
    }
}

/// Go's `strconv.ParseBool`, which upstream reads these flags with.
fn boolean(key: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(ConfigError::NotABool {
            key,
            value: value.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<WarmPoolConfig, ConfigError> {
        WarmPoolConfig::from_vars(pairs.iter().copied())
    }

    #[test]
    fn defaults_are_upstreams() {
        let c = parse(&[]).unwrap();
        assert_eq!(c, WarmPoolConfig::default());
        assert_eq!(c.warm_eni_target, 1);
        assert!(!c.ip_targets_defined());
        assert!(!c.warm_prefix_target_defined());
        assert_eq!(c.ip_cooldown, Duration::from_secs(30));
    }

    #[test]
    fn every_key_is_read() {
        let c = parse(&[
            ("WARM_ENI_TARGET", "2"),
            ("WARM_IP_TARGET", "5"),
            ("MINIMUM_IP_TARGET", "10"),
            ("WARM_PREFIX_TARGET", "3"),
            ("MAX_ENI", "4"),
            ("ENABLE_PREFIX_DELEGATION", "true"),
            ("IP_COOLDOWN_PERIOD", "45"),
            ("UNRELATED", "x"),
        ])
        .unwrap();
        assert_eq!(
            c,
            WarmPoolConfig {
                warm_eni_target: 2,
                warm_ip_target: 5,
                minimum_ip_target: 10,
                warm_prefix_target: 3,
                max_eni: Some(4),
                prefix_delegation: true,
                ip_cooldown: Duration::from_secs(45),
            }
        );
        assert!(c.ip_targets_defined());
        assert!(c.warm_prefix_target_defined());
    }

    #[test]
    fn empty_is_unset_and_later_pairs_win() {
        let c = parse(&[
            ("WARM_IP_TARGET", "3"),
            ("WARM_IP_TARGET", " 7 "),
            ("MAX_ENI", ""),
        ])
        .unwrap();
        assert_eq!(c.warm_ip_target, 7);
        assert_eq!(c.max_eni, None);
        assert_eq!(parse(&[("MAX_ENI", "-1")]).unwrap().max_eni, None);
    }

    #[test]
    fn cross_key_checks_of_the_entrypoint() {
        let err = parse(&[("ENABLE_PREFIX_DELEGATION", "true")]).unwrap_err();
        assert_eq!(err.key(), "WARM_PREFIX_TARGET");
        assert!(parse(&[
            ("ENABLE_PREFIX_DELEGATION", "true"),
            ("WARM_PREFIX_TARGET", "1")
        ])
        .is_ok());
        assert!(parse(&[
            ("ENABLE_PREFIX_DELEGATION", "true"),
            ("WARM_IP_TARGET", "5")
        ])
        .is_ok());
        let err = parse(&[("MINIMUM_IP_TARGET", "10")]).unwrap_err();
        assert_eq!(err.key(), "WARM_IP_TARGET");
        assert_eq!(
            err.to_string(),
            "WARM_IP_TARGET: must be set when MINIMUM_IP_TARGET is set"
        );
        // Present counts, even as 0: upstream compares the strings.
        assert!(parse(&[("MINIMUM_IP_TARGET", "10"), ("WARM_IP_TARGET", "0")]).is_ok());
    }

    #[test]
    fn go_bool_spellings() {
        for (v, want) in [
            ("1", true),
            ("t", true),
            ("True", true),
            ("0", false),
            ("F", false),
        ] {
            assert_eq!(
                parse(&[("ENABLE_PREFIX_DELEGATION", v), ("WARM_PREFIX_TARGET", "1")])
                    .unwrap()
                    .prefix_delegation,
                want,
                "{v}"
            );
        }
    }

    #[test]
    fn errors_name_the_key() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "WARM_ENI_TARGET",
                "-1",
                "WARM_ENI_TARGET: \"-1\" is not a non-negative integer",
            ),
            (
                "WARM_IP_TARGET",
                "five",
                "WARM_IP_TARGET: \"five\" is not a non-negative integer",
            ),
            (
                "MINIMUM_IP_TARGET",
                "1.5",
                "MINIMUM_IP_TARGET: \"1.5\" is not a non-negative integer",
            ),
            (
                "WARM_PREFIX_TARGET",
                "-2",
                "WARM_PREFIX_TARGET: \"-2\" is not a non-negative integer",
            ),
            (
                "IP_COOLDOWN_PERIOD",
                "30s",
                "IP_COOLDOWN_PERIOD: \"30s\" is not a non-negative integer",
            ),
            (
                "MAX_ENI",
                "0",
                "MAX_ENI: \"0\" must be at least 1, or -1 for the instance limit",
            ),
            (
                "MAX_ENI",
                "-3",
                "MAX_ENI: \"-3\" must be at least 1, or -1 for the instance limit",
            ),
            (
                "MAX_ENI",
                "many",
                "MAX_ENI: \"many\" is not a non-negative integer",
            ),
            (
                "ENABLE_PREFIX_DELEGATION",
                "yes",
                "ENABLE_PREFIX_DELEGATION: \"yes\" is not a boolean (true/false, 1/0, t/f)",
            ),
        ];
        for (key, value, message) in cases {
            let err = parse(&[(key, value)]).unwrap_err();
            assert_eq!(err.key(), *key);
            assert_eq!(err.to_string(), *message);
        }
    }
}
