//! The group-commit writer: batching, per-write isolation inside a batch, full disks,
//! clean shutdown, and what an acknowledged write leaves on disk.

mod common;

use std::collections::HashSet;

use common::{credentials, enqueue, WriteLock};
use drupe_store::{OfflinePush, RosterItem, SqliteOptions, Store, StoreError, Subscription};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_writes_all_commit_in_far_fewer_transactions() {
    let (_dir, store) = common::fresh();
    store.account_create("alice", &credentials(1)).await.unwrap();
    let commits_before = store.commit_count();

    let tasks: Vec<_> = (0..1000)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.offline_push("alice", &format!("<message id='{n}'/>"), n, 10_000).await })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        match task.await.unwrap().unwrap() {
            OfflinePush::Stored(id) => assert!(ids.insert(id), "id {id} given twice"),
            OfflinePush::Full => panic!("limit not reached yet"),
        }
    }

    let listed = store.offline_list("alice").await.unwrap();
    assert_eq!(listed.len(), 1000);
    assert_eq!(listed.iter().map(|m| m.id).collect::<HashSet<_>>(), ids);
    let stanzas: HashSet<_> = listed.iter().map(|m| m.stanza.as_str()).collect();
    assert_eq!(stanzas.len(), 1000);
    let commits = store.commit_count() - commits_before;
    assert!(commits <= 500, "1000 writes took {commits} commits: no group commit");
    eprintln!("1000 concurrent writes committed in {commits} transactions");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_are_committed_together_up_to_max_batch() {
    let (dir, store) = common::fresh();
    store.account_create("alice", &credentials(1)).await.unwrap();
    let commits_before = store.commit_count();

    // While another connection holds the write lock, the writer waits in BEGIN with
    // its first batch and every other write stays queued.
    let lock = WriteLock::take(&common::db_path(&dir));
    let mut writes = Vec::new();
    for n in 0..1000 {
        let store = store.clone();
        writes.push(enqueue(async move { store.offline_push("alice", "<m/>", n, 10_000).await }).await);
    }
    let queued = store.write_queue_len();
    assert!((1000 - 512..=1000).contains(&queued), "{queued} writes queued");
    lock.release();
    for write in writes {
        assert!(matches!(write.await.unwrap(), Ok(OfflinePush::Stored(_))));
    }

    // The first batch, then what was queued in batches of at most 512 (max_batch).
    let commits = store.commit_count() - commits_before;
    assert!((2..=3).contains(&commits), "{commits} commits");
    assert_eq!(store.offline_count("alice").await.unwrap(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_undoes_only_itself_within_its_batch() {
    let (dir, store) = common::fresh();
    store.account_create("alice", &credentials(1)).await.unwrap();
    let commits_before = store.commit_count();
    let roster_item = |jid: &str| RosterItem {
        jid: jid.into(),
        name: None,
        subscription: Subscription::Both,
        ask_out: false,
        pending_in: false,
        approved: false,
        groups: vec!["Friends".into()],
    };

    // Five writes queued behind the lock: at most two batches, and however the writer
    // splits them, each failing write shares its transaction with a succeeding one.
    let lock = WriteLock::take(&common::db_path(&dir));
    let s = store.clone();
    let ok_push = enqueue(async move { s.offline_push("alice", "<m/>", 1, 10).await }).await;
    let s = store.clone();
    let duplicate = enqueue(async move { s.account_create("alice", &credentials(2)).await }).await;
    let s = store.clone();
    let ok_create = enqueue(async move { s.account_create("carol", &credentials(3)).await }).await;
    let (s, item) = (store.clone(), roster_item("x@example.org"));
    let orphan = enqueue(async move { s.roster_put("ghost", &item).await }).await;
    let (s, item) = (store.clone(), roster_item("carol@example.org"));
    let ok_roster = enqueue(async move { s.roster_put("alice", &item).await }).await;
    lock.release();

    assert!(matches!(ok_push.await.unwrap(), Ok(OfflinePush::Stored(_))));
    assert!(matches!(duplicate.await.unwrap(), Err(StoreError::AlreadyExists)));
    ok_create.await.unwrap().unwrap();
    assert!(matches!(orphan.await.unwrap(), Err(StoreError::NoSuchAccount)));
    assert_eq!(ok_roster.await.unwrap().unwrap(), 1);

    let commits = store.commit_count() - commits_before;
    assert!((1..=2).contains(&commits), "{commits} commits");
    assert_eq!(store.account_credentials("alice").await.unwrap(), Some(credentials(1)));
    assert_eq!(store.account_list().await.unwrap(), ["alice", "carol"]);
    assert_eq!(store.offline_count("alice").await.unwrap(), 1);
    assert_eq!(store.roster("alice").await.unwrap().items, [roster_item("carol@example.org")]);
    assert_eq!(store.roster_version("ghost").await.unwrap(), 0);
}

#[tokio::test]
async fn a_full_disk_refuses_the_write_and_the_store_keeps_working() {
    // A quota of the empty schema's size plus a dozen pages (the schema grows with features).
    let (dir, store) = common::fresh();
    store.close().await;
    let schema_pages: u64 = rusqlite::Connection::open(common::db_path(&dir))
        .unwrap()
        .query_row("PRAGMA page_count", [], |row| row.get(0))
        .unwrap();
    let options = SqliteOptions { max_page_count: Some(schema_pages + 12), ..SqliteOptions::default() };
    let store = Store::open_sqlite(&common::db_path(&dir), options.clone()).unwrap();
    store.account_create("alice", &credentials(1)).await.unwrap();
    let stanza = "x".repeat(16 * 1024);

    let mut stored = 0;
    let refused = loop {
        match store.offline_push("alice", &stanza, 0, 10_000).await {
            Ok(OfflinePush::Stored(_)) => stored += 1,
            Ok(OfflinePush::Full) => panic!("limit not reached"),
            Err(error) => break error,
        }
        assert!(stored < 100, "40 pages never filled up");
    };
    assert!(matches!(refused, StoreError::DiskFull), "{refused:?}");
    assert!(stored > 0);
    assert_eq!(store.offline_count("alice").await.unwrap(), stored);

    // Small writes may still fit; after freeing space, big ones do again.
    let through = store.offline_list("alice").await.unwrap().last().unwrap().id;
    store.offline_delete_through("alice", through).await.unwrap();
    assert!(matches!(store.offline_push("alice", &stanza, 0, 10_000).await, Ok(OfflinePush::Stored(_))));
    store.close().await;
    drop(store);

    let conn = rusqlite::Connection::open(common::db_path(&dir)).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).unwrap();
    assert_eq!(check, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_lets_queued_writes_finish_then_refuses_more() {
    let (dir, store) = common::fresh();
    let path = common::db_path(&dir);
    store.account_create("alice", &credentials(1)).await.unwrap();

    let lock = WriteLock::take(&path);
    let mut writes = Vec::new();
    for n in 0..100 {
        let store = store.clone();
        writes.push(enqueue(async move { store.offline_push("alice", "<m/>", n, 1000).await }).await);
    }
    let s = store.clone();
    let closing = enqueue(async move { s.close().await }).await;
    lock.release();
    closing.await.unwrap();
    for write in writes {
        assert!(matches!(write.await.unwrap(), Ok(OfflinePush::Stored(_))));
    }

    let late = store.offline_push("alice", "<m/>", 0, 1000).await;
    assert!(matches!(late, Err(StoreError::Closed)), "{late:?}");
    assert!(matches!(store.offline_count("alice").await, Err(StoreError::Closed)));
    assert!(matches!(store.flush().await, Err(StoreError::Closed)));
    store.close().await; // idempotent

    let reopened = Store::open_sqlite(&path, SqliteOptions::default()).unwrap();
    assert_eq!(reopened.offline_count("alice").await.unwrap(), 100);
}

#[tokio::test]
async fn acknowledged_writes_survive_dropping_the_store() {
    let (dir, store) = common::fresh();
    store.account_create("alice", &credentials(1)).await.unwrap();
    let item = RosterItem {
        jid: "bob@example.org".into(),
        name: Some("Bob".into()),
        subscription: Subscription::To,
        ask_out: false,
        pending_in: true,
        approved: false,
        groups: vec!["Friends".into()],
    };
    store.roster_put("alice", &item).await.unwrap();
    store.offline_push("alice", "<message/>", 42, 10).await.unwrap();
    store.flush().await.unwrap();
    drop(store); // no close: the acknowledgements alone must be enough

    let store = Store::open_sqlite(&common::db_path(&dir), SqliteOptions::default()).unwrap();
    assert_eq!(store.account_credentials("alice").await.unwrap(), Some(credentials(1)));
    let roster = store.roster("alice").await.unwrap();
    assert_eq!((roster.version, roster.items), (1, vec![item]));
    let messages = store.offline_list("alice").await.unwrap();
    assert_eq!(messages.len(), 1);
    assert_eq!((messages[0].stanza.as_str(), messages[0].stored_at_unix_ms), ("<message/>", 42));
}

/// Under writes that never pause, a checkpoint from another connection can copy the whole log back but never
/// rewind it (a new batch always lands meanwhile); the writer must do the last step itself, so the WAL file
/// stays far smaller than everything written through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_under_steady_writes() {
    let (dir, store) = common::fresh();
    store.account_create("alice", &credentials(1)).await.unwrap();
    // 24 writers, each always with one write in flight: about 40 MB of pages go through the log.
    let stanza = format!("<message><body>{}</body></message>", "x".repeat(3_000));
    let writers: Vec<_> = (0..24)
        .map(|w| {
            let (store, stanza) = (store.clone(), stanza.clone());
            tokio::spawn(async move {
                for n in 0..500 {
                    store.offline_push("alice", &stanza, w * 1_000 + n, 1_000_000).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let written = 24 * 500 * stanza.len() as u64;
    let mut wal_path = common::db_path(&dir).into_os_string();
    wal_path.push("-wal");
    let wal = std::fs::metadata(&wal_path).unwrap().len();
    // Without the rewind the log holds every page written: about twice the stanzas' bytes.
    assert!(wal < written, "WAL is {wal} bytes after {written} bytes written: it never started over");
    eprintln!("WAL {wal} bytes after {written} bytes of stanzas");
}

/// A batch's answers are handed out by a task of the runtime the store was opened in; once that runtime is gone,
/// the writer answers from its own thread, so a store used from another runtime keeps working.
#[test]
fn a_store_outlives_the_runtime_it_was_opened_in() {
    let multi = || tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let first = multi();
    let (_dir, store) = first.block_on(async { common::fresh() });
    first.block_on(async {
        store.account_create("alice", &credentials(1)).await.unwrap();
        store.offline_push("alice", "<m id='1'/>", 1, 100).await.unwrap();
    });
    drop(first);

    let second = multi();
    second.block_on(async {
        let pushes: Vec<_> = (2..50)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move { store.offline_push("alice", "<m/>", n, 100).await })
            })
            .collect();
        for push in pushes {
            assert!(matches!(push.await.unwrap(), Ok(OfflinePush::Stored(_))));
        }
        store.flush().await.unwrap();
        assert_eq!(store.offline_count("alice").await.unwrap(), 49);
        store.close().await;
    });
}
