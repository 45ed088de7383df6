//! nftables through the `nft` program's JSON interface: atomic batches in, rule listings
//! out. Every batch is one `nft -j -f -` transaction, so a ruleset is never half-applied.

use std::borrow::Cow;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use nftables::batch::Batch;
use nftables::helper::{self, NftablesError};
use nftables::schema::{NfListObject, NfObject, Nftables, Rule};
use nftables::types::NfFamily;

use crate::error::{Error, Result};

pub mod ahead;

/// The arguments of a transaction: JSON, from standard input.
const APPLY_ARGS: [&str; 3] = ["-j", "-f", "-"];

/// Where `nft` is looked for when it is not in `PATH` (runtimes often run plugins with a
/// minimal environment).
const NFT_FALLBACKS: [&str; 3] = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"];

fn nft_program() -> &'static Path {
    static NFT: OnceLock<PathBuf> = OnceLock::new();
    NFT.get_or_init(|| {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("nft"))
            .chain(NFT_FALLBACKS.iter().map(PathBuf::from))
            .find(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("nft"))
    })
}

fn nft_error(op: &str, e: NftablesError) -> Error {
    let msg = match e {
        NftablesError::NftFailed { stderr, .. } => stderr.trim().to_string(),
        other => other.to_string(),
    };
    Error::Invalid {
        op: op.to_string(),
        msg: format!("nft: {msg}"),
    }
}

/// A rule as listed by the kernel: enough to find it again and delete it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftRule {
    /// The chain the rule is in.
    pub chain: String,
    /// The kernel's handle for the rule.
    pub handle: u32,
    /// The rule's comment, if any.
    pub comment: Option<String>,
}

/// Applies `batch` as one transaction (`nft -j -f -`); `op` describes it for the error,
/// which carries what nft said. (The nftables crate's own helper lets nft's stderr go to
/// ours, so its error would say nothing.)
/// When [`ahead::Spawned::start`] already started this same batch in the calling thread's
/// namespace, that transaction is waited for instead: the batch applies once.
pub fn apply(batch: Batch<'_>, op: &str) -> Result<()> {
    run_batch(batch, op, &APPLY_ARGS)
}

/// Asks nft whether `batch` would apply (`nft -c -j -f -`: parsed and validated by nft,
/// nothing committed); the error carries what nft said.
pub fn check(batch: Batch<'_>, op: &str) -> Result<()> {
    run_batch(batch, op, &["-c", "-j", "-f", "-"])
}

/// `nft <args>` taking a batch on its standard input; its errors are read, its output not.
fn spawn(args: &[&str]) -> std::io::Result<std::process::Child> {
    Command::new(nft_program())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
}

/// `batch` as nft reads it.
fn payload(batch: Batch<'_>, op: &str) -> Result<Vec<u8>> {
    serde_json::to_vec(&batch.to_nftables()).map_err(|e| Error::Invalid {
        op: op.to_string(),
        msg: format!("serialize the nftables batch: {e}"),
    })
}

fn run_batch(batch: Batch<'_>, op: &str, args: &[&str]) -> Result<()> {
    let payload = payload(batch, op)?;
    if args == APPLY_ARGS {
        if let Some(running) = ahead::claim(&payload) {
            return finish(running, op);
        }
    }
    let mut child =
        spawn(args).map_err(|e| Error::io(format!("{op}: run {}", nft_program().display()), e))?;
    let written = child
        .stdin
        .take()
        .expect("nft's stdin is piped")
        .write_all(&payload);
    outcome(child, written, op)
}

/// Waits for a transaction started ahead: its outcome.
fn finish(running: ahead::Running, op: &str) -> Result<()> {
    let written = running
        .writer
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("the thread feeding nft panicked")));
    outcome(running.child, written, op)
}

/// nft's verdict on a batch, once it exits; a batch it could not be given all of is an
/// error even when nft, reading a truncated batch, applied nothing and said nothing.
fn outcome(child: std::process::Child, written: std::io::Result<()>, op: &str) -> Result<()> {
    let out = child
        .wait_with_output()
        .map_err(|e| Error::io(format!("{op}: wait for nft"), e))?;
    if out.status.success() {
        return written.map_err(|e| Error::io(format!("{op}: write to nft"), e));
    }
    Err(Error::Invalid {
        op: op.to_string(),
        msg: format!("nft: {}", String::from_utf8_lossy(&out.stderr).trim()),
    })
}

/// Table `table` of `family` as nft lists it (`nft -j list table`); `None` when the table
/// does not exist.
pub fn list_table(family: NfFamily, table: &str) -> Result<Option<Nftables<'static>>> {
    let family_name = family_word(family);
    let op = format!("list nftables table {family_name} {table}");
    match helper::get_current_ruleset_with_args(
        Some(nft_program()),
        &["list", "table", family_name, table],
    ) {
        Ok(listing) => Ok(Some(listing)),
        // nft reports a missing table as a failure ("No such file or directory").
        Err(NftablesError::NftFailed { stderr, .. })
            if stderr.contains("No such file or directory") =>
        {
            Ok(None)
        }
        Err(e) => Err(nft_error(&op, e)),
    }
}

/// The rules of table `table` of `family`; empty when the table does not exist.
pub fn table_rules(family: NfFamily, table: &str) -> Result<Vec<NftRule>> {
    let Some(listing) = list_table(family, table)? else {
        return Ok(Vec::new());
    };
    Ok(listing
        .objects
        .iter()
        .filter_map(|o| match o {
            NfObject::ListObject(NfListObject::Rule(r)) => Some(NftRule {
                chain: r.chain.to_string(),
                handle: r.handle?,
                comment: r.comment.as_ref().map(|c| c.to_string()),
            }),
            _ => None,
        })
        .collect())
}

/// Deletes `rules` of table `table` in one transaction. Nothing to delete is no call.
pub fn delete_rules(family: NfFamily, table: &str, rules: &[NftRule]) -> Result<()> {
    if rules.is_empty() {
        return Ok(());
    }
    let mut batch = Batch::new();
    for r in rules {
        batch.delete(NfListObject::Rule(Rule {
            family,
            table: Cow::Owned(table.to_string()),
            chain: Cow::Owned(r.chain.clone()),
            expr: Cow::Borrowed(&[]),
            handle: Some(r.handle),
            index: None,
            comment: None,
        }));
    }
    apply(
        batch,
        &format!(
            "delete {} rules from nftables table {} {table}",
            rules.len(),
            family_word(family)
        ),
    )
}

/// The family as `nft` spells it on its command line.
pub fn family_word(family: NfFamily) -> &'static str {
    match family {
        NfFamily::IP => "ip",
        NfFamily::IP6 => "ip6",
        NfFamily::INet => "inet",
        NfFamily::ARP => "arp",
        NfFamily::Bridge => "bridge",
        NfFamily::NetDev => "netdev",
    }
}
