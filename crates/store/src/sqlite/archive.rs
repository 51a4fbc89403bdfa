//! SQLite SQL for the message archive (XEP-0313): appending, single lookups, counting and
//! retention, and the batched upkeep of the full-text index (XEP-0431). Paged queries live in
//! `archive_query`.
//!
//! The FTS5 index is not updated row by row: FTS5 writes a segment per transaction and merges
//! them later, which made indexing cost as much as the rest of an append. New rows with a
//! body are listed in `archive_fts_pending` (by a trigger) and indexed in bulk: by the append
//! that brings the backlog to [`FTS_BATCH`] rows (inside its own group commit), by
//! [`SqliteStore::archive_index_pending`] (which the server calls every second), and before any
//! text search, so a search always sees every committed message.

use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::accounts::account_exists;
use super::{archive_order, SqliteStore};
use crate::{ArchiveEntry, StoreError};

/// Most rows one retention transaction deletes: each batch holds the writer for tens of
/// milliseconds (FTS index upkeep included), so other writes interleave between them.
const PURGE_BATCH: i64 = 5_000;

/// Rows waiting for the full-text index past which an append indexes them in its own batch.
pub(super) const FTS_BATCH: usize = 1_024;

/// Migration 7: the full-text index is kept in batches (see the module doc). Rows already in the
/// archive were indexed by the triggers of migration 2.
pub(super) const FTS_BATCHED_MIGRATION: &str = r#"
    DROP TRIGGER archive_fts_insert;
    DROP TRIGGER archive_fts_delete;
    CREATE TABLE archive_fts_pending (seq INTEGER PRIMARY KEY) STRICT;
    CREATE TRIGGER archive_fts_pending_insert AFTER INSERT ON archive WHEN new.body IS NOT NULL BEGIN
        INSERT INTO archive_fts_pending (seq) VALUES (new.seq);
    END;
    -- Only rows that are in the index may be deleted from it (an external-content FTS5 index
    -- is corrupted by deleting what it does not hold). Also fired by account removal.
    CREATE TRIGGER archive_fts_delete AFTER DELETE ON archive WHEN old.body IS NOT NULL BEGIN
        INSERT INTO archive_fts (archive_fts, rowid, body)
            SELECT 'delete', old.seq, old.body
            WHERE NOT EXISTS (SELECT 1 FROM archive_fts_pending WHERE seq = old.seq);
        DELETE FROM archive_fts_pending WHERE seq = old.seq;
    END;
"#;

/// Indexes up to `limit` pending rows, oldest first; returns how many were indexed.
fn index_pending(conn: &Connection, limit: usize) -> Result<usize, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let through: Option<i64> = conn
        .prepare_cached("SELECT max(seq) FROM (SELECT seq FROM archive_fts_pending ORDER BY seq LIMIT ?1)")?
        .query_row(params![limit], |row| row.get(0))?;
    let Some(through) = through else { return Ok(0) };
    let indexed = conn
        .prepare_cached(
            "INSERT INTO archive_fts (rowid, body)
             SELECT a.seq, a.body FROM archive_fts_pending p CROSS JOIN archive a ON a.seq = p.seq
             WHERE p.seq <= ?1",
        )?
        .execute(params![through])?;
    conn.prepare_cached("DELETE FROM archive_fts_pending WHERE seq <= ?1")?.execute(params![through])?;
    Ok(indexed)
}

/// Rows appended and not yet indexed, as far as this process knows (it may count rows whose
/// batch then failed: an index pass then finds fewer). Only the writer thread changes it.
pub(super) fn count_pending(conn: &Connection) -> Result<usize, StoreError> {
    let n: i64 = conn.query_row("SELECT count(*) FROM archive_fts_pending", [], |row| row.get(0))?;
    Ok(usize::try_from(n).unwrap_or_default())
}

/// Indexes the whole backlog inside a savepoint of the current transaction: a failure is
/// logged and undoes only the indexing (the rows stay pending), never the caller's write.
fn index_backlog(conn: &Connection, pending: &AtomicUsize) -> usize {
    let run = || -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let n = index_pending(conn, 8 * FTS_BATCH)?;
            total += n;
            if n < 8 * FTS_BATCH {
                return Ok(total);
            }
        }
    };
    if let Err(e) = conn.execute_batch("SAVEPOINT fts") {
        tracing::warn!(error = %e, "full-text indexing skipped");
        return 0;
    }
    match run() {
        Ok(total) => match conn.execute_batch("RELEASE fts") {
            Ok(()) => {
                pending.store(0, Ordering::Relaxed);
                total
            }
            Err(e) => {
                tracing::warn!(error = %e, "full-text indexing failed");
                0
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "full-text indexing failed; rows stay pending");
            let _ = conn.execute_batch("ROLLBACK TO fts; RELEASE fts");
            0
        }
    }
}

/// The columns [`entry_from_row`] reads, in its order, as a literal for `concat!`.
macro_rules! entry_columns {
    () => {
        "a.stanza_id, a.with_jid, a.outgoing, a.timestamp_ms, a.origin_id, a.body, a.stanza"
    };
}
pub(super) use entry_columns;

pub(super) fn entry_from_row(row: &Row<'_>) -> rusqlite::Result<ArchiveEntry> {
    Ok(ArchiveEntry {
        stanza_id: row.get(0)?,
        with: row.get(1)?,
        outgoing: row.get(2)?,
        timestamp_ms: row.get(3)?,
        origin_id: row.get(4)?,
        body: row.get(5)?,
        stanza: row.get(6)?,
    })
}

impl SqliteStore {
    /// Appends rows, all in one write job: a message's sender and recipient copies share it. Each row succeeds or
    /// fails on its own (a missing owner refuses only its row).
    pub(crate) async fn archive_append_all(
        &self,
        rows: Vec<(String, ArchiveEntry)>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        let pending = self.inner.fts_pending.clone();
        self.write(move |conn| {
            // Never earlier than the last row: `seq` order is time order (archive_order.rs).
            let mut last: i64 = conn
                .prepare_cached("SELECT timestamp_ms FROM archive ORDER BY seq DESC LIMIT 1")?
                .query_row([], |row| row.get(0))
                .optional()?
                .unwrap_or(i64::MIN);
            let mut outcomes = Vec::with_capacity(rows.len());
            for (owner, entry) in &rows {
                if !account_exists(conn, owner)? {
                    outcomes.push(Err(StoreError::NoSuchAccount));
                    continue;
                }
                let timestamp_ms = entry.timestamp_ms.max(last);
                // The `archive_fts_pending_insert` trigger lists the row for the full-text index.
                conn.prepare_cached(
                    "INSERT INTO archive
                        (owner, stanza_id, with_jid, outgoing, timestamp_ms, origin_id, body, stanza)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    owner,
                    entry.stanza_id,
                    entry.with,
                    entry.outgoing,
                    timestamp_ms,
                    entry.origin_id,
                    entry.body,
                    entry.stanza,
                ])?;
                last = timestamp_ms;
                outcomes.push(Ok(()));
                if entry.body.is_some() && pending.fetch_add(1, Ordering::Relaxed) + 1 >= FTS_BATCH {
                    index_backlog(conn, &pending);
                }
            }
            Ok(outcomes)
        })
        .await
    }

    /// Adds every pending row to the full-text index (one write; nothing when none are pending).
    /// Returns how many rows were indexed.
    pub(crate) async fn archive_index_pending(&self) -> Result<usize, StoreError> {
        if self.inner.fts_pending.load(Ordering::Relaxed) == 0 {
            return Ok(0);
        }
        let pending = self.inner.fts_pending.clone();
        self.write(move |conn| Ok(index_backlog(conn, &pending))).await
    }

    pub(crate) async fn archive_get(&self, owner: &str, stanza_id: &str) -> Result<Option<ArchiveEntry>, StoreError> {
        let owner = owner.to_owned();
        let stanza_id = stanza_id.to_owned();
        self.read(move |conn| {
            let Some(seq) = archive_order::find(conn, &owner, &stanza_id)? else { return Ok(None) };
            let entry = conn
                .prepare_cached(concat!("SELECT ", entry_columns!(), " FROM archive a WHERE a.seq = ?1"))?
                .query_row(params![seq], entry_from_row)
                .optional()?;
            Ok(entry)
        })
        .await
    }

    pub(crate) async fn archive_find_origin(
        &self,
        owner: &str,
        origin_id: &str,
    ) -> Result<Option<ArchiveEntry>, StoreError> {
        let owner = owner.to_owned();
        let origin_id = origin_id.to_owned();
        self.read(move |conn| {
            // origin-ids are the sender's and need not be unique: the latest one is the
            // message a correction or retraction refers to.
            let entry = conn
                .prepare_cached(concat!(
                    "SELECT ",
                    entry_columns!(),
                    " FROM archive a INDEXED BY archive_by_origin_id
                      WHERE a.owner = ?1 AND a.origin_id = ?2 AND a.origin_id IS NOT NULL
                      ORDER BY a.seq DESC LIMIT 1"
                ))?
                .query_row(params![owner, origin_id], entry_from_row)
                .optional()?;
            Ok(entry)
        })
        .await
    }

    pub(crate) async fn archive_purge_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            // Rows before the cutoff are a prefix of `seq` (archive_order.rs): delete it oldest first.
            let deleted = self
                .write(move |conn| {
                    let boundary = archive_order::seq_boundary(conn, cutoff_ms)?;
                    let deleted = conn
                        .prepare_cached(
                            "DELETE FROM archive WHERE seq IN (
                                SELECT seq FROM archive WHERE seq < ?1 AND timestamp_ms < ?2 ORDER BY seq LIMIT ?3)",
                        )?
                        .execute(params![boundary, cutoff_ms, PURGE_BATCH])?;
                    Ok(deleted as u64)
                })
                .await?;
            total += deleted;
            if deleted < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    pub(crate) async fn archive_count(&self, owner: &str) -> Result<u64, StoreError> {
        let owner = owner.to_owned();
        self.read(move |conn| {
            let count: i64 = conn
                .prepare_cached("SELECT count(*) FROM archive INDEXED BY archive_by_owner WHERE owner = ?1")?
                .query_row(params![owner], |row| row.get(0))?;
            Ok(u64::try_from(count).unwrap_or_default())
        })
        .await
    }
}
