//! Accounts: create, look up, change credentials, list, remove with everything the user owns.

mod common;

use common::credentials;
use drupe_store::{OfflinePush, RosterItem, StoreError, Subscription};

#[tokio::test]
async fn an_account_is_created_once_and_its_credentials_read_back() {
    let (_dir, store) = common::fresh();
    assert!(!store.account_exists("alice").await.unwrap());
    assert_eq!(store.account_credentials("alice").await.unwrap(), None);

    store.account_create("alice", &credentials(1)).await.unwrap();
    assert!(store.account_exists("alice").await.unwrap());
    assert_eq!(store.account_credentials("alice").await.unwrap(), Some(credentials(1)));

    let again = store.account_create("alice", &credentials(2)).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists)), "{again:?}");
    // The refused create changed nothing.
    assert_eq!(store.account_credentials("alice").await.unwrap(), Some(credentials(1)));
}

#[tokio::test]
async fn credentials_are_replaced_only_for_an_existing_account() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &credentials(1)).await.unwrap();

    assert!(store.account_set_credentials("alice", &credentials(7)).await.unwrap());
    assert_eq!(store.account_credentials("alice").await.unwrap(), Some(credentials(7)));
    assert!(!store.account_set_credentials("nobody", &credentials(7)).await.unwrap());
    assert!(!store.account_exists("nobody").await.unwrap());
}

#[tokio::test]
async fn accounts_are_listed_sorted_and_counted() {
    let (_dir, store) = common::fresh();
    assert_eq!(store.account_count().await.unwrap(), 0);
    assert!(store.account_list().await.unwrap().is_empty());

    for name in ["mallory", "alice", "zoë", "bob"] {
        store.account_create(name, &credentials(3)).await.unwrap();
    }
    assert_eq!(store.account_count().await.unwrap(), 4);
    assert_eq!(store.account_list().await.unwrap(), ["alice", "bob", "mallory", "zoë"]);
}

#[tokio::test]
async fn removing_an_account_removes_its_roster_and_offline_messages() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &credentials(1)).await.unwrap();
    store.account_create("bob", &credentials(2)).await.unwrap();
    let item = RosterItem {
        jid: "carol@example.org".into(),
        name: Some("Carol".into()),
        subscription: Subscription::Both,
        ask_out: false,
        pending_in: false,
        approved: false,
        groups: vec!["Friends".into()],
    };
    for owner in ["alice", "bob"] {
        store.roster_put(owner, &item).await.unwrap();
        let pushed = store.offline_push(owner, "<message/>", 1, 100).await.unwrap();
        assert!(matches!(pushed, OfflinePush::Stored(_)));
    }

    assert!(store.account_remove("alice").await.unwrap());
    assert!(!store.account_remove("alice").await.unwrap());

    assert!(!store.account_exists("alice").await.unwrap());
    assert_eq!(store.account_list().await.unwrap(), ["bob"]);
    let roster = store.roster("alice").await.unwrap();
    assert_eq!((roster.version, roster.items.len()), (0, 0));
    assert_eq!(store.offline_count("alice").await.unwrap(), 0);

    // A new account of the same name starts empty, not with the old user's data.
    store.account_create("alice", &credentials(9)).await.unwrap();
    assert_eq!(store.roster("alice").await.unwrap().items, []);
    assert_eq!(store.roster_version("alice").await.unwrap(), 0);
    assert_eq!(store.offline_list("alice").await.unwrap(), []);

    // Bob lost nothing.
    assert_eq!(store.roster("bob").await.unwrap().items, [item]);
    assert_eq!(store.offline_count("bob").await.unwrap(), 1);
}
