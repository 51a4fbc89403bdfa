//! XEP-0363 upload accounting: slots granted under the quota and daily limit in one transaction, completion,
//! expiry listing and removal.

mod common;

use drupe_store::{SlotGrant, SlotRequest, StoreError};

const DAY: i64 = 86_400_000;

fn request(slot: &str, owner: &str, size: u64, now: i64) -> SlotRequest {
    SlotRequest {
        slot: slot.into(),
        owner: owner.into(),
        filename: format!("{slot}.bin"),
        size,
        content_type: "application/octet-stream".into(),
        now_ms: now,
        quota_bytes: 1000,
        daily_bytes: 1500,
        pending_since_ms: now - 300_000,
        day_since_ms: now - DAY,
    }
}

#[tokio::test]
async fn slots_are_granted_within_quota_and_daily_limit() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    let now = 10 * DAY;
    assert_eq!(store.upload_slot_grant(&request("s1", "alice", 600, now)).await.unwrap(), SlotGrant::Granted);
    // An open slot holds its bytes.
    assert_eq!(
        store.upload_slot_grant(&request("s2", "alice", 500, now)).await.unwrap(),
        SlotGrant::OverQuota { used: 600 }
    );
    // Once it has lapsed unused it no longer does.
    let later = now + 600_000;
    assert_eq!(store.upload_slot_grant(&request("s2", "alice", 500, later)).await.unwrap(), SlotGrant::Granted);
    assert!(store.upload_complete("s2").await.unwrap());
    assert!(!store.upload_complete("s2").await.unwrap(), "completes once");
    // The daily limit counts every slot of the last 24 hours, used or not.
    assert_eq!(
        store.upload_slot_grant(&request("s3", "alice", 450, later)).await.unwrap(),
        SlotGrant::OverDaily { used: 1100 }
    );
    assert_eq!(store.upload_usage("alice").await.unwrap(), (1, 500));
    let f = store.upload_file("s2").await.unwrap().unwrap();
    assert!(f.complete && f.size == 500 && f.owner == "alice" && f.filename == "s2.bin");
    assert_eq!(
        store.upload_slot_grant(&request("s9", "nobody", 1, now)).await.unwrap_err().to_string(),
        StoreError::NoSuchAccount.to_string()
    );
}

#[tokio::test]
async fn expired_files_and_lapsed_slots_are_listed_then_removed() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    let mut r = request("old", "alice", 1, DAY);
    r.quota_bytes = 0;
    r.daily_bytes = 0;
    store.upload_slot_grant(&r).await.unwrap();
    store.upload_complete("old").await.unwrap();
    store.upload_slot_grant(&SlotRequest { slot: "lapsed".into(), ..r.clone() }).await.unwrap();
    store.upload_slot_grant(&SlotRequest { slot: "new".into(), now_ms: 9 * DAY, ..r.clone() }).await.unwrap();
    store.upload_complete("new").await.unwrap();

    let ids = |v: Vec<drupe_store::UploadFile>| v.into_iter().map(|f| f.slot).collect::<Vec<_>>();
    // Files never expire without a cutoff; the unused slot lapses.
    assert_eq!(ids(store.upload_expired(None, 5 * DAY, 10).await.unwrap()), ["lapsed"]);
    let expired = ids(store.upload_expired(Some(5 * DAY), 5 * DAY, 10).await.unwrap());
    assert_eq!(expired.len(), 2);
    assert_eq!(store.upload_remove(&expired).await.unwrap(), 2);
    assert_eq!(store.upload_file("old").await.unwrap(), None);
    assert!(store.upload_file("new").await.unwrap().is_some());
    // Removing the account keeps its files listed, so that they are purged from disk when they expire.
    assert!(store.account_remove("alice").await.unwrap());
    assert_eq!(ids(store.upload_expired(Some(10 * DAY), 5 * DAY, 10).await.unwrap()), ["new"]);
}
