//! SQL for XEP-0363 HTTP File Upload: one row per granted slot, which becomes a stored file once its upload
//! completed. The rows are the per-account accounting (quota, bytes per day); the files themselves live on disk
//! under the server's data directory, named by slot id.
//!
//! A slot is granted in one write transaction that sums the owner's rows and inserts the new one, so two
//! concurrent requests can never both slip under a limit.

use rusqlite::{params, OptionalExtension, Row};

use super::SqliteStore;
use crate::upload::{SlotGrant, SlotRequest, UploadFile};
use crate::StoreError;

/// Migration 6 (see `migrations.rs`). `owner` has no foreign key on purpose: when an account is removed its files
/// stay listed until they expire, so the purge still deletes them from disk (a cascade would orphan the files).
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE upload_files (
        slot         TEXT    NOT NULL PRIMARY KEY,
        owner        TEXT    NOT NULL,
        filename     TEXT    NOT NULL,
        size         INTEGER NOT NULL CHECK (size >= 0),
        content_type TEXT    NOT NULL,
        created_ms   INTEGER NOT NULL,
        complete     INTEGER NOT NULL CHECK (complete IN (0, 1))
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX upload_files_by_owner ON upload_files(owner, created_ms);
    CREATE INDEX upload_files_by_time ON upload_files(created_ms);
"#;

const COLUMNS: &str = "slot, owner, filename, size, content_type, created_ms, complete";

fn file_from_row(row: &Row<'_>) -> rusqlite::Result<UploadFile> {
    Ok(UploadFile {
        slot: row.get(0)?,
        owner: row.get(1)?,
        filename: row.get(2)?,
        size: row.get::<_, i64>(3)? as u64,
        content_type: row.get(4)?,
        created_ms: row.get(5)?,
        complete: row.get(6)?,
    })
}

impl SqliteStore {
    pub(crate) async fn upload_slot_grant(&self, request: &SlotRequest) -> Result<SlotGrant, StoreError> {
        let r = request.clone();
        self.write(move |conn| {
            let exists = conn
                .prepare_cached("SELECT 1 FROM accounts WHERE username = ?1")?
                .query_row(params![r.owner], |_| Ok(()))
                .optional()?;
            if exists.is_none() {
                return Err(StoreError::NoSuchAccount);
            }
            let size = r.size as i64;
            // Stored files, and slots that may still be uploaded, count against the quota.
            let held: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(size), 0) FROM upload_files
                     WHERE owner = ?1 AND (complete = 1 OR created_ms >= ?2)",
                )?
                .query_row(params![r.owner, r.pending_since_ms], |row| row.get(0))?;
            if r.quota_bytes > 0 && held.saturating_add(size) > r.quota_bytes as i64 {
                return Ok(SlotGrant::OverQuota { used: held as u64 });
            }
            let today: i64 = conn
                .prepare_cached(
                    "SELECT COALESCE(SUM(size), 0) FROM upload_files WHERE owner = ?1 AND created_ms >= ?2",
                )?
                .query_row(params![r.owner, r.day_since_ms], |row| row.get(0))?;
            if r.daily_bytes > 0 && today.saturating_add(size) > r.daily_bytes as i64 {
                return Ok(SlotGrant::OverDaily { used: today as u64 });
            }
            conn.prepare_cached(
                "INSERT INTO upload_files (slot, owner, filename, size, content_type, created_ms, complete)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0)",
            )?
            .execute(params![r.slot, r.owner, r.filename, size, r.content_type, r.now_ms])?;
            Ok(SlotGrant::Granted)
        })
        .await
    }

    pub(crate) async fn upload_file(&self, slot: &str) -> Result<Option<UploadFile>, StoreError> {
        let slot = slot.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM upload_files WHERE slot = ?1"))?
                .query_row(params![slot], file_from_row)
                .optional()?)
        })
        .await
    }

    pub(crate) async fn upload_complete(&self, slot: &str) -> Result<bool, StoreError> {
        let slot = slot.to_owned();
        self.write(move |conn| {
            let n = conn
                .prepare_cached("UPDATE upload_files SET complete = 1 WHERE slot = ?1 AND complete = 0")?
                .execute(params![slot])?;
            Ok(n > 0)
        })
        .await
    }

    pub(crate) async fn upload_expired(
        &self,
        files_before_ms: Option<i64>,
        slots_before_ms: i64,
        limit: usize,
    ) -> Result<Vec<UploadFile>, StoreError> {
        self.read(move |conn| {
            let files = files_before_ms.unwrap_or(i64::MIN);
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM upload_files
                     WHERE (complete = 1 AND created_ms < ?1) OR (complete = 0 AND created_ms < ?2)
                     ORDER BY created_ms LIMIT ?3"
                ))?
                .query_map(params![files, slots_before_ms, limit as i64], file_from_row)?
                .collect::<Result<_, _>>()?)
        })
        .await
    }

    pub(crate) async fn upload_remove(&self, slots: &[String]) -> Result<usize, StoreError> {
        let slots = slots.to_vec();
        self.write(move |conn| {
            let mut removed = 0;
            let mut delete = conn.prepare_cached("DELETE FROM upload_files WHERE slot = ?1")?;
            for slot in &slots {
                removed += delete.execute(params![slot])?;
            }
            Ok(removed)
        })
        .await
    }

    pub(crate) async fn upload_usage(&self, owner: &str) -> Result<(u64, u64), StoreError> {
        let owner = owner.to_owned();
        self.read(move |conn| {
            let (count, bytes): (i64, i64) = conn
                .prepare_cached(
                    "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM upload_files WHERE owner = ?1 AND complete = 1",
                )?
                .query_row(params![owner], |row| Ok((row.get(0)?, row.get(1)?)))?;
            Ok((count as u64, bytes as u64))
        })
        .await
    }
}
