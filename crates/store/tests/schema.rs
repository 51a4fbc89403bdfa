//! Opening a database: directories created, WAL on, migrations applied once, newer schemas refused.

mod common;

use drupe_store::{SqliteOptions, Store, StoreError, SQLITE_SCHEMA_VERSION};

fn user_version(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.pragma_query_value(None, "user_version", |row| row.get(0)).expect("user_version")
}

#[tokio::test]
async fn a_fresh_file_is_migrated_to_the_latest_version_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = common::db_path(&dir); // its parent directory does not exist yet
    let store = Store::open_sqlite(&path, SqliteOptions::default()).expect("open");
    store.ping().await.expect("ping");

    const { assert!(SQLITE_SCHEMA_VERSION >= 1) };
    assert_eq!(user_version(&path), SQLITE_SCHEMA_VERSION);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["accounts", "offline_messages", "roster_groups", "roster_items", "roster_versions"]);
}

#[tokio::test]
async fn reopening_is_idempotent_and_keeps_the_data() {
    let (dir, store) = common::fresh();
    let path = common::db_path(&dir);
    store.account_create("alice", &common::credentials(1)).await.unwrap();
    store.close().await;
    drop(store);

    for _ in 0..2 {
        let store = Store::open_sqlite(&path, SqliteOptions::default()).expect("reopen");
        assert_eq!(user_version(&path), SQLITE_SCHEMA_VERSION);
        assert_eq!(store.account_list().await.unwrap(), ["alice"]);
        // Nothing was rewritten: reopening an up-to-date file commits no write.
        assert_eq!(store.commit_count(), 0);
        store.close().await;
    }
}

#[tokio::test]
async fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE from_the_future (x INTEGER)").unwrap();
        conn.pragma_update(None, "user_version", SQLITE_SCHEMA_VERSION + 1).unwrap();
    }

    let error = Store::open_sqlite(&path, SqliteOptions::default()).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("upgrade drupe"), "{message}");
    match error {
        StoreError::NewerSchema { found, known } => {
            assert_eq!(found, SQLITE_SCHEMA_VERSION + 1);
            assert_eq!(known, SQLITE_SCHEMA_VERSION);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert_eq!(user_version(&path), SQLITE_SCHEMA_VERSION + 1);
}

#[test]
fn the_store_is_cheap_to_share_across_tasks() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync_clone::<Store>();
}
