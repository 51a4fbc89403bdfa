//! WAL checkpoints on a thread of their own, so that copying pages back into the database file (and its fsync)
//! never runs inside the writer's group commit (the writer connection has `wal_autocheckpoint = 0`).
//!
//! A checkpoint from another connection can copy every frame but cannot make the WAL start over: SQLite rewinds
//! the log only when a write transaction begins after *all* of it was copied back, and under steady load a new
//! batch always lands while this thread copies. The log then grew without end (1.3 GB in a 10 s burst of 4,000
//! msgs/s), and every append went to fresh page-cache pages that the kernel first zeroes: 17 % of the server's
//! CPU. So when a pass finds a long log, this thread raises [`WalRestart`]: the writer, between two batches,
//! copies back the few frames committed since (one small checkpoint of its own) and its next batch rewinds the
//! log, which is then truncated to [`JOURNAL_SIZE_LIMIT`].

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// How often the WAL is checkpointed (PASSIVE: never waits for readers or the writer).
const INTERVAL: Duration = Duration::from_millis(500);

/// Pause between passes while the log is longer than [`RESTART_FRAMES`], so the writer's own checkpoint finds
/// little left to copy.
const BUSY_INTERVAL: Duration = Duration::from_millis(50);

/// Log length (frames of one page each) past which the writer is asked to rewind the WAL: 4 MiB at 4 KiB pages.
const RESTART_FRAMES: i64 = 1_024;

/// Bytes the WAL file is truncated to when it is rewound (`PRAGMA journal_size_limit`), so that one burst does
/// not keep a large file.
pub(crate) const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// Set by the checkpointer when the log is long; taken by the writer, which then checkpoints between batches.
#[derive(Default)]
pub(crate) struct WalRestart(AtomicBool);

impl WalRestart {
    /// Whether a restart was asked for since the last call (and clears the request).
    pub(crate) fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }

    fn request(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

pub(crate) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    pub(crate) fn spawn(
        path: &Path,
        busy_timeout: Duration,
        restart: Arc<WalRestart>,
        nice: i32,
    ) -> Result<Checkpointer, StoreError> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(busy_timeout)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new().name("drupe-store-ckpt".into()).spawn(move || {
            super::lower_thread_priority(nice);
            let (lock, cvar) = &*stop2;
            let mut interval = INTERVAL;
            loop {
                let stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                let (stopped, _) = cvar.wait_timeout(stopped, interval).unwrap_or_else(|e| e.into_inner());
                if *stopped {
                    break;
                }
                drop(stopped);
                // The row is (busy, frames in the log, frames copied back).
                match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get::<_, i64>(1)) {
                    Ok(frames) if frames > RESTART_FRAMES => {
                        restart.request();
                        interval = BUSY_INTERVAL;
                    }
                    Ok(_) => interval = INTERVAL,
                    Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
                }
            }
            // A last full pass so the WAL is small when the process exits.
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        })?;
        Ok(Checkpointer { stop, handle: Mutex::new(Some(handle)) })
    }

    /// Stops the thread after a final checkpoint. Blocking; idempotent.
    pub(crate) fn close(&self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
        let handle = self.handle.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}
