//! Offline messages (RFC 6121 §8.5.2.2.1): a bounded FIFO per owner.

mod common;

use drupe_store::{OfflineMessage, OfflinePush, StoreError};

fn stored(push: OfflinePush) -> i64 {
    match push {
        OfflinePush::Stored(id) => id,
        OfflinePush::Full => panic!("expected Stored, got Full"),
    }
}

#[tokio::test]
async fn messages_are_listed_in_order_and_deleted_through_an_id() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    store.account_create("bob", &common::credentials(2)).await.unwrap();
    assert_eq!(store.offline_list("alice").await.unwrap(), []);

    let mut ids = Vec::new();
    for n in 0..5 {
        let stanza = format!("<message id='{n}'/>");
        ids.push(stored(store.offline_push("alice", &stanza, 1000 + n, 10).await.unwrap()));
        stored(store.offline_push("bob", "<message/>", 5, 10).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");
    let listed = store.offline_list("alice").await.unwrap();
    let expected: Vec<_> = (0..5)
        .map(|n| OfflineMessage {
            id: ids[n],
            stanza: format!("<message id='{n}'/>"),
            stored_at_unix_ms: 1000 + n as i64,
        })
        .collect();
    assert_eq!(listed, expected);
    assert_eq!(store.offline_count("alice").await.unwrap(), 5);

    assert_eq!(store.offline_delete_through("alice", ids[2]).await.unwrap(), 3);
    assert_eq!(store.offline_list("alice").await.unwrap(), expected[3..]);
    // Another owner's messages are out of reach, whatever the id.
    assert_eq!(store.offline_delete_through("alice", i64::MAX).await.unwrap(), 2);
    assert_eq!(store.offline_count("alice").await.unwrap(), 0);
    assert_eq!(store.offline_count("bob").await.unwrap(), 5);
}

#[tokio::test]
async fn a_full_queue_refuses_and_stores_nothing() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    for n in 0..3 {
        stored(store.offline_push("alice", &format!("<m>{n}</m>"), n, 3).await.unwrap());
    }
    assert_eq!(store.offline_push("alice", "<m>late</m>", 9, 3).await.unwrap(), OfflinePush::Full);
    assert_eq!(store.offline_count("alice").await.unwrap(), 3);
    // A limit of zero stores nothing at all; a higher one lets more in.
    assert_eq!(store.offline_push("alice", "<m/>", 9, 0).await.unwrap(), OfflinePush::Full);
    stored(store.offline_push("alice", "<m>4</m>", 9, 4).await.unwrap());
    assert_eq!(store.offline_count("alice").await.unwrap(), 4);
}

#[tokio::test]
async fn ids_are_never_reused_after_a_delete() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    let first = stored(store.offline_push("alice", "<m/>", 0, 10).await.unwrap());
    store.offline_delete_through("alice", first).await.unwrap();
    let second = stored(store.offline_push("alice", "<m/>", 0, 10).await.unwrap());
    assert!(second > first, "{second} > {first}");
}

#[tokio::test]
async fn messages_need_an_account() {
    let (_dir, store) = common::fresh();
    let result = store.offline_push("ghost", "<m/>", 0, 10).await;
    assert!(matches!(result, Err(StoreError::NoSuchAccount)), "{result:?}");
    assert_eq!(store.offline_count("ghost").await.unwrap(), 0);
}
