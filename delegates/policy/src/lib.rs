//! The `policy` plugin: network policy per interface of a multi-interface pod, chained
//! after the interface plugin in a NAD's conflist. It reads `prevResult` and passes it on
//! unchanged.
//!
//! - Rules come from security groups written inline in the netconf (`securityGroups`,
//!   `attach`, `podSelectableGroups` with the pod's `args.cni.securityGroups`,
//!   `groupMembers`, `policyTypes`, `stateful`, `allowNDP`, `allowDHCP`), and from
//!   MultiNetworkPolicy objects the meta plugin injects under `multiNetworkPolicy`
//!   ([`MultiNetworkContext`]): the delegate never talks to Kubernetes. Both become one IR
//!   ([`ir`]); the policies that apply are ORed with the inline groups.
//! - ADD validates everything first (codes 2, 6, 7 naming the JSON path), then, in the pod's
//!   netns, installs table `inet cni_policy` with the interface's chains in one nft
//!   transaction before returning, so the first packet already meets the policy. When
//!   nothing is enforced (no inline group applied and no policy applies), ADD installs
//!   nothing: NetworkPolicy leaves a pod no policy selects unisolated, and an empty chain
//!   would cost every packet a jump for nothing. A runner may start that transaction
//!   before the interface plugin runs ([`ahead`]); ADD then waits for it.
//! - DEL removes the interface's chains in one idempotent transaction; it reads nothing of
//!   the config but the interface, so a config that became invalid cannot block cleanup, and
//!   a netns that is gone is success.
//! - CHECK (prevResult required) lists the table and compares it with a fresh rendering
//!   ([`check`]): a removed, added or changed rule, a flushed or deleted chain is code 102.
//! - STATUS is code 50 when `nft` is not in `PATH` or a probe `nft -c` fails.
//! - GC has nothing to do: the rules live in the pod's netns and go with it.
//!
//! - Running pods: in thick mode the meta-cni daemon is the agent. It watches
//!   MultiNetworkPolicies, pods and namespaces, recomputes the context of every attachment
//!   cached on its node whose list runs this delegate, and when the rendering changes
//!   replaces the interface's chains in one transaction ([`live`]): established flows are
//!   kept (the stateful rule comes first), new ones meet the new rules, and the cache is
//!   rewritten so CHECK verifies the new rules. Nothing in the netconf turns this on: it is
//!   automatic with the daemon; thin mode keeps the rules ADD installed.
//!
//! Not supported, refused with code 7 naming the field: `mode: dynamic` and `agent` (the
//! netconf has no say: the daemon updates running pods by itself), `placement: host`,
//! `logDropped`, `resetOnUpdate`, `onUnavailable`, and `prefixList` peers.
//!
//! Semantics that deliberately differ from the upstream MultiNetworkPolicy implementations:
//! `except` excludes only within its own peer (never a DROP, never pooled across peers);
//! `policyTypes` defaults follow NetworkPolicy (Ingress always, Egress with egress rules);
//! `matchExpressions` are supported; named ports are resolved against the pod's container
//! ports (an unresolvable one matches nothing); NDP (and DHCP when asked) pass under
//! default deny; the rules exist before the workload starts; one transaction per change.

pub mod ahead;
mod attachment;
mod check;
pub mod config;
mod error;
mod fields;
pub mod ir;
pub mod live;
pub mod multi_network;
pub mod render;
mod security_groups;
mod selector;
pub mod transaction;

use std::path::Path;

use cni::{CniResult, Error, ErrorCode, Plugin, Request};
use kernel::Netns;

pub use attachment::interface_policy;
pub use config::{Config, CONTEXT_KEY};
pub use error::PolicyError;
pub use multi_network::MultiNetworkContext;
pub use selector::matches as selector_matches;

/// The policy plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy;

/// The container's netns: `Ok(None)` when it is gone (only DEL asks for that).
fn open_netns(req: &Request) -> Result<Option<Netns>, Error> {
    let path = req.netns_path()?;
    match Netns::open(path) {
        Ok(ns) => Ok(Some(ns)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(Error::netns(path, false, e)),
    }
}

fn enter<R>(ns: &Netns, f: impl FnOnce() -> Result<R, PolicyError>) -> Result<R, Error> {
    ns.run(f)
        .map_err(|e| Error::io(format!("enter netns {}", ns.path().display()), e))?
        .map_err(Error::from)
}

fn require_netns(req: &Request) -> Result<Netns, Error> {
    open_netns(req)?.ok_or_else(|| {
        let path = req.inv.netns.as_deref().unwrap_or(Path::new(""));
        Error::netns(path, true, "no such file or directory")
    })
}

impl Plugin for Policy {
    fn name(&self) -> &'static str {
        "policy"
    }

    fn add(&self, req: &Request) -> Result<CniResult, Error> {
        let config = Config::parse(&req.netconf)?;
        let prev = req.netconf.prev_result(req.version)?.ok_or_else(|| {
            Error::new(
                ErrorCode::INVALID_NETWORK_CONFIG,
                "required prevResult missing",
                "the policy plugin is chained after the interface plugin",
            )
        })?;
        let Some(rendered) = attachment::add_rendering(&config, &req.inv.ifname)? else {
            return Ok(prev);
        };
        let ns = require_netns(req)?;
        enter(&ns, || transaction::add(&req.inv.ifname, &rendered))?;
        Ok(prev)
    }

    fn del(&self, req: &Request) -> Result<(), Error> {
        let Some(ns) = req
            .inv
            .netns
            .as_ref()
            .and_then(|_| open_netns(req).transpose())
        else {
            return Ok(());
        };
        enter(&ns?, || transaction::del(&req.inv.ifname))
    }

    fn check(&self, req: &Request) -> Result<(), Error> {
        let config = Config::parse(&req.netconf)?;
        req.netconf.check_prev_result(req.version)?;
        let policy = interface_policy(&config, &req.inv.ifname)?;
        let ns = require_netns(req)?;
        let ifname = req.inv.ifname.clone();
        enter(&ns, || {
            let op = format!("list the policy of {ifname}");
            let listing = kernel::nft::list_table(render::FAMILY, render::TABLE)
                .map_err(|source| PolicyError::Kernel { op, source })?;
            if !policy.enforces_any() {
                // Nothing installed for this interface: none of its chains may exist.
                return match listing.as_ref().and_then(|l| stray_chain(l, &ifname)) {
                    Some(name) => Err(PolicyError::Tampered {
                        ifname: ifname.clone(),
                        what: format!("chain {name} exists, the policy enforces nothing"),
                    }),
                    None => Ok(()),
                };
            }
            check::compare(&ifname, listing.as_ref(), &render::render(&ifname, &policy))
        })
    }

    fn status(&self, _req: &Request) -> Result<(), Error> {
        let in_path = std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .any(|dir| dir.join("nft").is_file());
        if !in_path {
            return Err(Error::new(
                ErrorCode::PLUGIN_NOT_AVAILABLE,
                "nftables unusable: nft is not in PATH",
                std::env::var("PATH").unwrap_or_default(),
            ));
        }
        let mut probe = nftables::batch::Batch::new();
        probe.add(nftables::schema::NfListObject::Table(
            render::Rendered::table(),
        ));
        kernel::nft::check(probe, "probe nftables (nft -c)").map_err(|e| {
            Error::new(
                ErrorCode::PLUGIN_NOT_AVAILABLE,
                "nftables unusable",
                e.to_string(),
            )
        })
    }

    /// Nothing to collect: the rules live in each pod's netns and are gone with it.
    fn gc(&self, _req: &Request) -> Result<(), Error> {
        Ok(())
    }
}

/// A chain of `ifname` in the listing, if any.
fn stray_chain(listing: &nftables::schema::Nftables<'_>, ifname: &str) -> Option<String> {
    let ours: Vec<String> = render::HOOK_CHAINS
        .iter()
        .map(|h| h.name(ifname))
        .chain(
            [ir::Direction::Ingress, ir::Direction::Egress].map(|d| render::rule_chain(ifname, d)),
        )
        .collect();
    listing.objects.iter().find_map(|o| match o {
        nftables::schema::NfObject::ListObject(nftables::schema::NfListObject::Chain(c))
            if ours.iter().any(|n| *n == c.name) =>
        {
            Some(c.name.to_string())
        }
        _ => None,
    })
}
