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

#[test]
fn a_refused_batch_changes_nothing_and_its_error_carries_nfts_words() {
    let ns = PrivateNetns::new().unwrap();
    let netns = ns.netns().unwrap();
    netns
        .run(|| {
            let mut batch = Batch::new();
            batch.add(NfListObject::Table(table()));
            batch.add(NfListObject::Chain(chain("a")));
            batch.add(NfListObject::Rule(jump("a", "missing")));
            let err = nft::apply(batch, "add a jump to a missing chain").unwrap_err();
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

/// An `nft` started ahead in a namespace takes the next batch there (the batch applies and
/// the process is gone, reaped); one started in another namespace is left waiting by it,
/// and ended, unused, when dropped.
#[test]
fn a_batch_goes_to_the_nft_started_ahead_in_its_namespace() {
    let (a, b) = (PrivateNetns::new().unwrap(), PrivateNetns::new().unwrap());
    let (a, b) = (a.netns().unwrap(), b.netns().unwrap());
    let in_a = a.run(nft::prestart).unwrap().unwrap();
    let in_b = b.run(nft::prestart).unwrap().unwrap();
    let (pid_a, pid_b) = (in_a.pid().unwrap(), in_b.pid().unwrap());
    assert_ne!(pid_a, pid_b);
    // A second start in a namespace that has one keeps the first.
    let again = a.run(nft::prestart).unwrap().unwrap();
    assert_eq!(again.pid(), Some(pid_a));
    a.run(|| {
        let mut batch = Batch::new();
        batch.add(NfListObject::Table(table()));
        batch.add(NfListObject::Chain(chain("warm")));
        nft::apply(batch, "add a table through the nft started ahead").unwrap();
        assert!(nft::list_table(NfFamily::IP, "kernel_nft_test")
            .unwrap()
            .is_some());
    })
    .unwrap();
    let gone = |pid: u32| !std::path::Path::new(&format!("/proc/{pid}")).exists();
    assert_eq!(in_a.pid(), None, "the batch took the waiting nft");
    assert!(gone(pid_a), "the nft that applied the batch is reaped");
    assert_eq!(in_b.pid(), Some(pid_b), "b's nft still waits");
    drop(in_b);
    assert!(
        gone(pid_b),
        "an unused nft is ended and reaped when dropped"
    );
    // b is untouched: the killed nft read nothing.
    b.run(|| {
        assert!(nft::list_table(NfFamily::IP, "kernel_nft_test")
            .unwrap()
            .is_none());
    })
    .unwrap();
    drop((in_a, again));
}
