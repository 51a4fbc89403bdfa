//! Blocking (XEP-0191): a sorted set of JIDs per owner; block and unblock are idempotent.

mod common;

use drupe_store::StoreError;

fn jids(list: &[&str]) -> Vec<String> {
    list.iter().map(|jid| jid.to_string()).collect()
}

#[tokio::test]
async fn jids_are_blocked_and_unblocked_idempotently() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    store.account_create("bob", &common::credentials(2)).await.unwrap();
    assert!(store.blocklist("alice").await.unwrap().is_empty());

    // Bare, full and domain JIDs are kept as given, listed sorted.
    store.block("alice", &jids(&["romeo@montague.lit/orchard", "spam.example", "iago@shakespeare.lit"])).await.unwrap();
    store.block("alice", &jids(&["iago@shakespeare.lit", "iago@shakespeare.lit"])).await.unwrap();
    store.block("alice", &[]).await.unwrap();
    let all = jids(&["iago@shakespeare.lit", "romeo@montague.lit/orchard", "spam.example"]);
    assert_eq!(store.blocklist("alice").await.unwrap(), all);
    assert!(store.blocklist("bob").await.unwrap().is_empty(), "per owner");

    store.unblock("alice", &jids(&["spam.example", "never@blocked.lit", "romeo@montague.lit"])).await.unwrap();
    store.unblock("alice", &jids(&["spam.example"])).await.unwrap();
    assert_eq!(store.blocklist("alice").await.unwrap(), jids(&["iago@shakespeare.lit", "romeo@montague.lit/orchard"]));
}

#[tokio::test]
async fn unblocking_nothing_in_particular_unblocks_everything_of_that_owner() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    store.account_create("bob", &common::credentials(2)).await.unwrap();
    store.block("alice", &jids(&["a@example.org", "b@example.org"])).await.unwrap();
    store.block("bob", &jids(&["a@example.org"])).await.unwrap();

    store.unblock("alice", &[]).await.unwrap();
    assert!(store.blocklist("alice").await.unwrap().is_empty());
    store.unblock("alice", &[]).await.unwrap();
    assert_eq!(store.blocklist("bob").await.unwrap(), jids(&["a@example.org"]));
}

#[tokio::test]
async fn blocking_needs_an_account() {
    let (_dir, store) = common::fresh();
    let result = store.block("ghost", &jids(&["a@example.org"])).await;
    assert!(matches!(result, Err(StoreError::NoSuchAccount)), "{result:?}");
    store.unblock("ghost", &[]).await.unwrap();
    assert!(store.blocklist("ghost").await.unwrap().is_empty());
}
