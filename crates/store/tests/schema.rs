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
    let expected = [
        "accounts",
        "archive",
        "archive_fts",
        "archive_fts_config",
        "archive_fts_data",
        "archive_fts_docsize",
        "archive_fts_idx",
        "archive_fts_state",
        "archive_index_chunks",
        "archive_index_reserved",
        "archive_origin_index",
        "archive_owner_index",
        "archive_prefs",
        "archive_prefs_jids",
        "archive_with_index",
        "blocklist",
        "fast_tokens",
        "offline_messages",
        "roster_groups",
        "roster_items",
        "roster_versions",
    ];
    // Domains with their own migration file own the tables under their prefix (their tests check them).
    let owned = |t: &str| ["muc_", "pubsub_", "vcard", "upload_"].iter().any(|p| t.starts_with(p));
    let core: Vec<&str> = tables.iter().map(String::as_str).filter(|t| !owned(t)).collect();
    assert_eq!(core, expected);
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

/// Migration 1 as it shipped: a database left by the first release.
const SCHEMA_V1: &str = r#"
    CREATE TABLE accounts (
        username TEXT NOT NULL PRIMARY KEY,
        sha1_salt BLOB NOT NULL, sha1_iterations INTEGER NOT NULL,
        sha1_stored_key BLOB NOT NULL, sha1_server_key BLOB NOT NULL,
        sha256_salt BLOB NOT NULL, sha256_iterations INTEGER NOT NULL,
        sha256_stored_key BLOB NOT NULL, sha256_server_key BLOB NOT NULL
    ) STRICT;
    CREATE TABLE roster_versions (
        owner TEXT NOT NULL PRIMARY KEY REFERENCES accounts(username) ON DELETE CASCADE,
        version INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE roster_items (
        owner TEXT NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
        contact TEXT NOT NULL,
        name TEXT,
        subscription TEXT NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
        ask_out INTEGER NOT NULL CHECK (ask_out IN (0, 1)),
        pending_in INTEGER NOT NULL CHECK (pending_in IN (0, 1)),
        approved INTEGER NOT NULL CHECK (approved IN (0, 1)),
        PRIMARY KEY (owner, contact)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE roster_groups (
        owner TEXT NOT NULL, contact TEXT NOT NULL, name TEXT NOT NULL, position INTEGER NOT NULL,
        PRIMARY KEY (owner, contact, name),
        FOREIGN KEY (owner, contact) REFERENCES roster_items(owner, contact) ON DELETE CASCADE
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE offline_messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        owner TEXT NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
        stanza TEXT NOT NULL,
        stored_at_unix_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX offline_messages_by_owner ON offline_messages(owner, id);
    PRAGMA user_version = 1;
"#;

#[tokio::test]
async fn a_version_1_database_with_data_is_migrated_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        let c = common::credentials(1);
        conn.execute(
            "INSERT INTO accounts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params![
                "alice",
                c.sha1.salt,
                c.sha1.iterations,
                c.sha1.stored_key,
                c.sha1.server_key,
                c.sha256.salt,
                c.sha256.iterations,
                c.sha256.stored_key,
                c.sha256.server_key
            ],
        )
        .unwrap();
        conn.execute_batch(
            "INSERT INTO roster_versions VALUES ('alice', 3);
             INSERT INTO roster_items VALUES ('alice', 'bob@example.org', 'Bob', 'both', 0, 0, 0);
             INSERT INTO offline_messages (owner, stanza, stored_at_unix_ms) VALUES ('alice', '<message/>', 7);",
        )
        .unwrap();
    }
    assert_eq!(user_version(&path), 1);

    let store = Store::open_sqlite(&path, SqliteOptions::default()).expect("migrate");
    assert_eq!(user_version(&path), SQLITE_SCHEMA_VERSION);
    assert_eq!(SQLITE_SCHEMA_VERSION, 10);
    assert_eq!(store.account_credentials("alice").await.unwrap(), Some(common::credentials(1)));
    let roster = store.roster("alice").await.unwrap();
    assert_eq!((roster.version, roster.items[0].jid.as_str()), (3, "bob@example.org"));
    assert_eq!(store.offline_list("alice").await.unwrap()[0].stanza, "<message/>");
    // The new tables work, for the old accounts too.
    store.block("alice", &["spam.example".into()]).await.unwrap();
    assert_eq!(store.blocklist("alice").await.unwrap(), ["spam.example"]);
    assert_eq!(store.archive_count("alice").await.unwrap(), 0);
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
