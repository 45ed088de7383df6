//! The policy of one attachment: the inline groups it gets, ORed with the
//! MultiNetworkPolicies that apply to it, as one [`InterfacePolicy`].

use crate::config::Config;
use crate::error::PolicyError;
use crate::ir::{Direction, InterfacePolicy};
use crate::render::{self, Rendered};
use crate::security_groups;

/// The interface's policy under `config`, and how many nft rules it renders to for
/// `ifname` (bounded by `maxRulesPerInterface`). Nothing enforced means nothing to install.
pub fn interface_policy(config: &Config, ifname: &str) -> Result<InterfacePolicy, PolicyError> {
    let mut policy = InterfacePolicy {
        ingress: false,
        egress: false,
        stateful: config.stateful,
        allow_ndp: config.allow_ndp,
        allow_dhcp: config.allow_dhcp,
        rules: Vec::new(),
    };
    // Inline groups enforce their policyTypes once at least one group is applied.
    if !config.applied.is_empty() {
        policy.ingress = config.policy_types.contains(&Direction::Ingress);
        policy.egress = config.policy_types.contains(&Direction::Egress);
        policy.rules = security_groups::rules(
            &config.groups,
            &config.group_members,
            &config.applied,
            &config.policy_types,
        );
    }
    if let Some(context) = &config.context {
        let mnp = context.rules()?;
        policy.ingress |= mnp.ingress;
        policy.egress |= mnp.egress;
        policy.rules.extend(mnp.rules);
    }
    let count = render::render(ifname, &policy).rule_count();
    if count > config.max_rules {
        return Err(PolicyError::invalid(
            "maxRulesPerInterface",
            config.max_rules,
            format!("the policy of {ifname} renders to {count} rules"),
        ));
    }
    Ok(policy)
}

/// What ADD installs for `ifname` under `config`: the rendered policy, `None` when it
/// enforces nothing (NetworkPolicy leaves such a pod unisolated, so nothing is installed).
pub(crate) fn add_rendering(
    config: &Config,
    ifname: &str,
) -> Result<Option<Rendered>, PolicyError> {
    let policy = interface_policy(config, ifname)?;
    Ok(policy
        .enforces_any()
        .then(|| render::render(ifname, &policy)))
}
