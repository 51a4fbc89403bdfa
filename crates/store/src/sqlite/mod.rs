//! The SQLite backend: opening and migrating the file, the group-commit writer, the reader pool.
//!
//! One write connection lives on the writer thread ([`writer`]); reads run on a small pool
//! of read-only WAL connections through `spawn_blocking`. The SQL of each domain lives in
//! its own file (`accounts`, `roster`, `offline`, `archive*`, `blocking`) as `impl SqliteStore`
//! blocks.

mod accounts;
mod archive;
mod archive_index;
mod archive_order;
mod archive_prefs;
mod archive_query;
mod blocking;
mod checkpoint;
mod fast;
mod migrations;
mod muc;
mod offline;
mod pubsub;
mod roster;
mod upload;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use crate::StoreError;
pub use archive_order::stanza_id_millis;
pub use migrations::SCHEMA_VERSION;
use writer::Writer;

/// Prepared statements each connection keeps (the store has about 100 distinct ones).
const STATEMENT_CACHE: usize = 128;

/// How the SQLite store is run. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqliteOptions {
    /// Read-only connections in the pool (default 2; at least 1).
    pub readers: usize,
    /// Most writes committed in one transaction (default 512; at least 1).
    pub max_batch: usize,
    /// Writes that may wait for the writer before callers wait (asynchronously) for room
    /// (default 4096; at least 1).
    pub queue_capacity: usize,
    /// How long a connection waits for a lock held by another process (default 5 s).
    pub busy_timeout: Duration,
    /// `PRAGMA max_page_count` on the write connection: a size quota past which writes fail
    /// with [`StoreError::DiskFull`]. `None` keeps SQLite's default (no practical limit).
    pub max_page_count: Option<u64>,
    /// Page cache of the write connection, in KiB (default 16 MiB; it fills only as pages are used).
    pub writer_cache_kib: usize,
    /// Niceness added to the writer and checkpointer threads (default 10; 0 leaves them as the process; Linux
    /// only). On a busy core their long transactions then wait for the network threads instead of delaying them.
    pub background_nice: i32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            readers: 2,
            max_batch: 512,
            queue_capacity: 4096,
            busy_timeout: Duration::from_secs(5),
            max_page_count: None,
            writer_cache_kib: 16 * 1024,
            background_nice: 10,
        }
    }
}

/// A store kept in one SQLite file (plus its `-wal` and `-shm`). Cheap to clone: every
/// clone shares the writer thread and the reader pool.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Writer,
    readers: Arc<ReaderPool>,
    checkpointer: Arc<checkpoint::Checkpointer>,
    /// Archive rows not yet in the full-text index (see `archive.rs`).
    fts_pending: Arc<std::sync::atomic::AtomicUsize>,
    /// The writer's rollback count when the full-text backlog was last indexed: a rollback since may have undone
    /// an indexing that zeroed `fts_pending`.
    fts_rollbacks_seen: std::sync::atomic::AtomicU64,
    /// Archive rows not yet in the per-owner indexes (see `archive_index.rs`).
    archive_tail: Arc<archive_index::Tail>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.inner.path).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`, then starts the
    /// writer thread. Blocking: call it at startup, not on an async worker under load.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let mut conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(options.busy_timeout)?;
        // Every domain's statements stay prepared (rusqlite keeps 16 by default: fewer than the writer runs).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // WAL: readers never block the writer nor each other. The mode is stored in the
        // file; check it took (it cannot on some file systems).
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::internal(format!(
                "could not switch {} to WAL (journal_mode is {mode})",
                path.display()
            )));
        }
        // FULL: a commit is on disk when COMMIT returns, even in WAL mode. Group commit
        // pays that fsync once per batch, not once per write.
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // The writer's page cache holds the hot index pages (SQLite's default, 2 MiB, makes it re-read them with
        // a syscall per page once the archive grows); checkpoints run on their own thread (checkpoint.rs).
        conn.pragma_update(None, "cache_size", -(options.writer_cache_kib as i64))?;
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let _: i64 =
            conn.pragma_update_and_check(None, "journal_size_limit", checkpoint::JOURNAL_SIZE_LIMIT, |row| row.get(0))?;
        let found = migrations::migrate(&mut conn)?;
        if let Some(pages) = options.max_page_count {
            let _: i64 = conn.pragma_update_and_check(None, "max_page_count", pages, |row| row.get(0))?;
        }
        tracing::info!(
            path = %path.display(),
            schema_from = found,
            schema = SCHEMA_VERSION,
            "opened sqlite store"
        );

        let fts_pending = Arc::new(archive::count_pending(&conn)?.into());
        let archive_tail = archive_index::Tail::starting(archive_index::count_tail(&conn)?);
        // Index passes hand the writer lists of `seq`s as arrays.
        rusqlite::vtab::array::load_module(&conn)?;
        let readers = Arc::new(ReaderPool::open(path, &options)?);
        let wal_restart = Arc::new(checkpoint::WalRestart::default());
        let nice = options.background_nice;
        let writer = Writer::spawn(conn, options.max_batch, options.queue_capacity, wal_restart.clone(), nice)?;
        let checkpointer = Arc::new(checkpoint::Checkpointer::spawn(path, options.busy_timeout, wal_restart, nice)?);
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer,
                readers,
                checkpointer,
                fts_pending,
                fts_rollbacks_seen: 0.into(),
                archive_tail,
            }),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.writer.write(work).await
    }

    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        self.inner.readers.read(work).await
    }

    pub(crate) async fn flush(&self) -> Result<(), StoreError> {
        self.inner.writer.flush().await
    }

    pub(crate) async fn close(&self) {
        self.inner.writer.close().await;
        // Closing connections is file I/O: off the async workers.
        let readers = self.inner.readers.clone();
        let checkpointer = self.inner.checkpointer.clone();
        let _ = tokio::task::spawn_blocking(move || {
            readers.close();
            checkpointer.close();
        })
        .await;
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| {
            conn.query_row("SELECT 1", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    pub(crate) fn commit_count(&self) -> u64 {
        self.inner.writer.commit_count()
    }

    pub(crate) fn write_queue_len(&self) -> usize {
        self.inner.writer.queue_len()
    }
}

/// Read-only connections, at most `permits` in use at once, opened when a read first needs one (a server nobody
/// uses holds none: each costs SQLite's lookaside and schema cache, ~50–100 KB). A connection lost to a panicking
/// read is replaced by opening a new one.
struct ReaderPool {
    path: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReaderPool {
    fn open(path: &Path, options: &SqliteOptions) -> Result<ReaderPool, StoreError> {
        let size = options.readers.max(1);
        let pool = ReaderPool {
            path: path.to_owned(),
            busy_timeout: options.busy_timeout,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Arc::new(Semaphore::new(size)),
        };
        // Opened once to fail at start, not at the first read, when the file cannot be read; then let go.
        pool.connect()?;
        Ok(pool)
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // `rarray(?)`: binds a list (the XEP-0313 ids filter) as one parameter.
        rusqlite::vtab::array::load_module(&conn)?;
        Ok(conn)
    }

    /// Runs `work` on a pooled connection on a blocking thread, after waiting
    /// (asynchronously) for a free one.
    async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| StoreError::Closed)?;
        let pool = self.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = match pool.take() {
                Some(conn) => conn,
                None => pool.connect()?,
            };
            let result = work(&conn);
            pool.give_back(conn);
            result
        });
        match task.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(_) => Err(StoreError::Closed),
        }
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop()
    }

    fn give_back(&self, conn: Connection) {
        if !self.permits.is_closed() {
            self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
        }
    }

    /// Refuses new reads and closes idle connections; reads in flight finish and then
    /// close theirs.
    fn close(&self) {
        self.permits.close();
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

/// Lowers the calling thread's priority by `nice` (on Linux a thread has a priority of its own: `setpriority` on
/// its thread id). Lowering needs no privilege; a failure is logged and changes nothing else.
pub(crate) fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    if nice > 0 {
        let tid = Some(rustix::thread::gettid());
        let lowered = rustix::process::getpriority_process(tid)
            .and_then(|current| rustix::process::setpriority_process(tid, current.saturating_add(nice).min(19)));
        if let Err(error) = lowered {
            tracing::warn!(%error, "could not lower a store thread's priority");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}
