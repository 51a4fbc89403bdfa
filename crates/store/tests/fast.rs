//! XEP-0484 FAST token storage: one per (account, user agent), replaced on rotation, revocable, gone with the account.

mod common;

use drupe_store::{FastToken, StoreError};

fn token(ua: &str, nonce: u8) -> FastToken {
    FastToken { user_agent: ua.into(), mechanism: "HT-SHA-256-NONE".into(), nonce: vec![nonce; 16], expires_ms: 1000 }
}

#[tokio::test]
async fn tokens_rotate_revoke_and_cascade() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    assert!(matches!(store.fast_token_put("nobody", &token("ua", 1)).await, Err(StoreError::NoSuchAccount)));
    store.fast_token_put("alice", &token("phone", 1)).await.unwrap();
    store.fast_token_put("alice", &token("laptop", 2)).await.unwrap();
    assert_eq!(store.fast_token("alice", "phone").await.unwrap(), Some(token("phone", 1)));
    store.fast_token_put("alice", &token("phone", 3)).await.unwrap();
    assert_eq!(store.fast_token("alice", "phone").await.unwrap().unwrap().nonce, vec![3; 16], "rotation replaces");
    assert_eq!(store.fast_tokens_revoke("alice", Some("phone")).await.unwrap(), 1);
    assert_eq!(store.fast_token("alice", "phone").await.unwrap(), None);
    assert!(store.fast_token("alice", "laptop").await.unwrap().is_some());
    store.account_remove("alice").await.unwrap();
    assert_eq!(store.fast_token("alice", "laptop").await.unwrap(), None);
}

#[tokio::test]
async fn revoke_all() {
    let (_dir, store) = common::fresh();
    store.account_create("bob", &common::credentials(2)).await.unwrap();
    store.fast_token_put("bob", &token("a", 1)).await.unwrap();
    store.fast_token_put("bob", &token("b", 1)).await.unwrap();
    assert_eq!(store.fast_tokens_revoke("bob", None).await.unwrap(), 2);
}
