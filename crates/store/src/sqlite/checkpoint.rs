//! WAL checkpoints on a thread of their own, so that copying pages back into the database file (and its fsync)
//! never runs inside the writer's group commit (the writer connection has `wal_autocheckpoint = 0`).

use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// How often the WAL is checkpointed (PASSIVE: never waits for readers or the writer).
const INTERVAL: Duration = Duration::from_millis(500);

pub(crate) struct Checkpointer {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    pub(crate) fn spawn(path: &Path, busy_timeout: Duration) -> Result<Checkpointer, StoreError> {
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(busy_timeout)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = stop.clone();
        let handle = std::thread::Builder::new().name("drupe-store-ckpt".into()).spawn(move || {
            let (lock, cvar) = &*stop2;
            loop {
                let stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                let (stopped, _) = cvar.wait_timeout(stopped, INTERVAL).unwrap_or_else(|e| e.into_inner());
                if *stopped {
                    break;
                }
                drop(stopped);
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
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
