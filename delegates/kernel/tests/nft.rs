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
