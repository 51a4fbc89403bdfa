//! Shared test fixtures: stores in temporary directories, credentials, and a way to hold
//! the database's write lock from outside so writes pile up in the queue.
#![allow(dead_code)] // each test binary uses its own subset

use std::future::Future;
use std::path::{Path, PathBuf};

use drupe_proto::sasl::{Credentials, ScramKeys};
use drupe_store::{SqliteOptions, Store};
use tokio::task::JoinHandle;

pub fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("data").join("drupe.sqlite")
}

/// A fresh store in a new temporary directory (kept alive by the returned guard).
pub fn fresh() -> (tempfile::TempDir, Store) {
    fresh_with(SqliteOptions::default())
}

pub fn fresh_with(options: SqliteOptions) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_sqlite(&db_path(&dir), options).expect("open store");
    (dir, store)
}

/// Distinct, recognisable credentials for each `seed`.
pub fn credentials(seed: u8) -> Credentials {
    let keys = |hash: u8, len: usize| ScramKeys {
        salt: vec![seed, hash, 1],
        iterations: 4096 + u32::from(seed),
        stored_key: vec![seed ^ hash; len],
        server_key: vec![seed.wrapping_add(hash); len],
    };
    Credentials { sha1: keys(1, 20), sha256: keys(2, 32) }
}

/// Holds the database's write lock from a second connection, as another process could:
/// the store's writer then waits in `BEGIN IMMEDIATE` and new writes queue up behind it.
pub struct WriteLock(rusqlite::Connection);

impl WriteLock {
    pub fn take(path: &Path) -> WriteLock {
        let conn = rusqlite::Connection::open(path).expect("open second connection");
        conn.execute_batch("BEGIN IMMEDIATE").expect("take write lock");
        WriteLock(conn)
    }

    pub fn release(self) {
        self.0.execute_batch("COMMIT").expect("release write lock");
    }
}

/// Starts `write` and returns once it is queued (or already answered), with a handle
/// for its result. Polls it once, outside tokio's cooperative budget so the queue's send
/// cannot yield spuriously, then lets a task drive the rest.
pub async fn enqueue<F>(write: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut write = Box::pin(write);
    let answered = tokio::task::unconstrained(async {
        tokio::select! {
            biased;
            output = &mut write => Some(output),
            () = std::future::ready(()) => None,
        }
    })
    .await;
    match answered {
        Some(output) => tokio::spawn(async move { output }),
        None => tokio::spawn(write),
    }
}
