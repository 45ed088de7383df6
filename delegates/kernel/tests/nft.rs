//! nftables transactions: applied whole, refused whole, and a refusal says what nft said.

use std::borrow::Cow;

use kernel::{nft, PrivateNetns};
use nftables::batch::Batch;
use nftables::schema::{Chain, NfListObject, Rule, Table};
use nftables::stmt::{JumpTarget, Statement};
use nftables::types::NfFamily;

fn table() -> Table<'static> {
    Table {
        family: NfFamily::IP,
        name: "kernel_nft_test".into(),
        handle: None,
    }
}

fn chain(name: &'static str) -> Chain<'static> {
    Chain {
        family: NfFamily::IP,
        table: "kernel_nft_test".into(),
        name: name.into(),
        ..Chain::default()
    }
}

fn jump(from: &'static str, to: &'static str) -> Rule<'static> {
    Rule {
        family: NfFamily::IP,
        table: "kernel_nft_test".into(),
        chain: from.into(),
        expr: Cow::Owned(vec![Statement::Jump(JumpTarget { target: to.into() })]),
        handle: None,
        index: None,
        comment: None,
    }
}

/// Table, chain `a`, and a jump from `a` to a chain that does not exist: nft refuses it.
fn jump_to_missing() -> Batch<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table()));
    batch.add(NfListObject::Chain(chain("a")));
    batch.add(NfListObject::Rule(jump("a", "missing")));
    batch
}

#[test]
fn a_refused_batch_changes_nothing_and_its_error_carries_nfts_words() {
    let ns = PrivateNetns::new().unwrap();
    let netns = ns.netns().unwrap();
    netns
        .run(|| {
            let err = nft::apply(jump_to_missing(), "add a jump to a missing chain").unwrap_err();
            let text = err.to_string();
            assert!(text.contains("add a jump to a missing chain"), "{text}");
            assert!(text.contains("Could not process rule"), "{text}");
            // The table in the same batch was not made either.
            assert!(nft::table_rules(NfFamily::IP, "kernel_nft_test")
                .unwrap()
                .is_empty());

            let mut batch = Batch::new();
            batch.add(NfListObject::Table(table()));
            batch.add(NfListObject::Chain(chain("a")));
            batch.add(NfListObject::Chain(chain("b")));
            batch.add(NfListObject::Rule(jump("a", "b")));
            nft::apply(batch, "add a jump").unwrap();
            assert_eq!(
                nft::table_rules(NfFamily::IP, "kernel_nft_test")
                    .unwrap()
                    .len(),
                1
            );
        })
        .unwrap();
}

fn table_and_chain(name: &'static str) -> Batch<'static> {
    let mut batch = Batch::new();
    batch.add(NfListObject::Table(table()));
    batch.add(NfListObject::Chain(chain(name)));
    batch
}

/// `batch` started ahead as one transaction in the calling thread's namespace.
fn start_ahead(batch: nftables::batch::Batch<'_>, op: &str) -> kernel::Result<nft::ahead::Ahead> {
    nft::ahead::spawn(op)?.start(batch)
}

fn has_table() -> bool {
    nft::list_table(NfFamily::IP, "kernel_nft_test")
        .unwrap()
        .is_some()
}

/// A batch started ahead is claimed by the apply of the same batch in its namespace (which
/// reports its outcome, and the batch applies once); a different batch, or the same batch
/// in another namespace, runs on its own; a batch nothing claimed still applies, and
/// settling says so, with its outcome.
#[test]
fn a_batch_started_ahead_is_claimed_by_the_same_batch_in_its_namespace() {
    let (a, b) = (PrivateNetns::new().unwrap(), PrivateNetns::new().unwrap());
    let (a, b) = (a.netns().unwrap(), b.netns().unwrap());
    let in_a = a
        .run(|| start_ahead(table_and_chain("x"), "ahead in a"))
        .unwrap()
        .unwrap();
    let in_b = b
        .run(|| start_ahead(table_and_chain("x"), "ahead in b"))
        .unwrap()
        .unwrap();
    a.run(|| {
        // Another batch is not the one started ahead: it runs, and the claim stays open.
        nft::apply(table_and_chain("y"), "another batch").unwrap();
        nft::apply(table_and_chain("x"), "the batch started ahead").unwrap();
        assert!(has_table());
        let chains = nft::list_table(NfFamily::IP, "kernel_nft_test")
            .unwrap()
            .unwrap()
            .objects
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    nftables::schema::NfObject::ListObject(NfListObject::Chain(_))
                )
            })
            .count();
        assert_eq!(chains, 2);
    })
    .unwrap();
    assert!(matches!(in_a.settle(), nft::ahead::Settled::Claimed));
    match in_b.settle() {
        nft::ahead::Settled::Unclaimed(outcome) => outcome.unwrap(),
        other => panic!("b's batch was claimed: {other:?}"),
    }
    b.run(|| assert!(has_table())).unwrap();
}

/// A refused batch started ahead reports nft's words to its claimer, or to `settle` when
/// unclaimed; dropping an unsettled one waits for it: its batch has applied when the drop
/// returns, so nothing applies after its owner moved on. (Whether the process was reaped is
/// not looked at here: the other tests of this binary run nft processes of their own.)
#[test]
fn a_batch_started_ahead_reports_its_refusal_and_is_waited_for_when_dropped() {
    let ns = PrivateNetns::new().unwrap();
    let netns = ns.netns().unwrap();
    netns
        .run(|| {
            let claimed =
                start_ahead(jump_to_missing(), "ahead: a jump to a missing chain").unwrap();
            let err = nft::apply(jump_to_missing(), "claim it")
                .unwrap_err()
                .to_string();
            // The claimer's words: it is the one reporting what it was doing.
            assert!(err.starts_with("claim it"), "{err}");
            assert!(err.contains("Could not process rule"), "{err}");
            assert!(matches!(claimed.settle(), nft::ahead::Settled::Claimed));

            let unclaimed = start_ahead(jump_to_missing(), "unclaimed").unwrap();
            match unclaimed.settle() {
                nft::ahead::Settled::Unclaimed(Err(e)) => {
                    assert!(e.to_string().contains("Could not process rule"), "{e}")
                }
                other => panic!("{other:?}"),
            }
            assert!(!has_table());

            let dropped = start_ahead(table_and_chain("b"), "dropped").unwrap();
            drop(dropped);
            assert!(has_table(), "dropping waited for the transaction");
        })
        .unwrap();
}

/// An nft spawned in a namespace applies the batch it is given later, from any thread and
/// namespace, in the namespace it was spawned in, where the same batch's apply claims it;
/// one dropped before it is given a batch applies nothing.
#[test]
fn a_spawned_nft_applies_its_later_batch_where_it_was_spawned_or_nothing_when_dropped() {
    let (a, b) = (PrivateNetns::new().unwrap(), PrivateNetns::new().unwrap());
    let (a, b) = (a.netns().unwrap(), b.netns().unwrap());
    let spawned = a
        .run(|| nft::ahead::spawn("spawned in a"))
        .unwrap()
        .unwrap();
    let dropped = b
        .run(|| nft::ahead::spawn("dropped in b"))
        .unwrap()
        .unwrap();
    // Given its batch from namespace b's thread: it still applies in a.
    let ahead = b
        .run(|| spawned.start(table_and_chain("x")))
        .unwrap()
        .unwrap();
    drop(dropped);
    a.run(|| nft::apply(table_and_chain("x"), "claim it in a").unwrap())
        .unwrap();
    assert!(matches!(ahead.settle(), nft::ahead::Settled::Claimed));
    a.run(|| assert!(has_table())).unwrap();
    b.run(|| assert!(!has_table(), "the dropped nft applied nothing"))
        .unwrap();
}
