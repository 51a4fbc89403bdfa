//! SQLite SQL for the message archive (XEP-0313): appending, single lookups, counting and
//! retention, and the batched upkeep of the full-text index (XEP-0431). Paged queries live in
//! `archive_query`, the per-owner indexes in `archive_index`.
//!
//! The FTS5 index is not updated row by row: FTS5 writes a segment per transaction and merges
//! them later, which made indexing cost as much as the rest of an append. Every row with a body up
//! to the watermark in `archive_fts_state` is indexed; rows past it are indexed in bulk: by the
//! append that brings the backlog to [`FTS_BATCH`] rows (inside its own group commit), by
//! [`SqliteStore::archive_index_pending`] (which the server calls every second), and before any
//! text search, so a search always sees every committed message. A watermark, not a list of
//! pending rows, so that an append writes nothing for the index.

use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{archive_index, archive_order, SqliteStore};
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

/// Migration 10: the rows waiting for the full-text index are those past a watermark, not rows of a list that
/// every append wrote to (see the module doc). Rows still listed are indexed first.
pub(super) const FTS_WATERMARK_MIGRATION: &str = r#"
    CREATE TABLE archive_fts_state (
        id      INTEGER PRIMARY KEY CHECK (id = 0),
        through INTEGER NOT NULL
    ) STRICT;
    INSERT INTO archive_fts (rowid, body)
        SELECT a.seq, a.body FROM archive_fts_pending p CROSS JOIN archive a ON a.seq = p.seq;
    INSERT INTO archive_fts_state VALUES (0, coalesce((SELECT max(seq) FROM archive), 0));
    DROP TRIGGER archive_fts_pending_insert;
    DROP TRIGGER archive_fts_delete;
    DROP TABLE archive_fts_pending;
    -- Only rows that are in the index may be deleted from it (an external-content FTS5 index
    -- is corrupted by deleting what it does not hold). Also fired by account removal.
    CREATE TRIGGER archive_fts_delete AFTER DELETE ON archive
        WHEN old.body IS NOT NULL AND old.seq <= (SELECT through FROM archive_fts_state) BEGIN
        INSERT INTO archive_fts (archive_fts, rowid, body) VALUES ('delete', old.seq, old.body);
    END;
"#;

/// Indexes the rows of the next `limit` past the watermark and moves it past them; returns how many rows it
/// passed (0: none were left) and how many of them had a body to index.
fn index_pending(conn: &Connection, limit: usize) -> Result<(usize, usize), StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let through: i64 = conn.prepare_cached("SELECT through FROM archive_fts_state")?.query_row([], |row| row.get(0))?;
    let (upto, passed): (Option<i64>, i64) = conn
        .prepare_cached(
            "SELECT max(seq), count(*) FROM (SELECT seq FROM archive WHERE seq > ?1 ORDER BY seq LIMIT ?2)",
        )?
        .query_row(params![through, limit], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let Some(upto) = upto else { return Ok((0, 0)) };
    let indexed = conn
        .prepare_cached(
            "INSERT INTO archive_fts (rowid, body)
             SELECT seq, body FROM archive WHERE seq > ?1 AND seq <= ?2 AND body IS NOT NULL",
        )?
        .execute(params![through, upto])?;
    conn.prepare_cached("UPDATE archive_fts_state SET through = ?1")?.execute(params![upto])?;
    Ok((usize::try_from(passed).unwrap_or_default(), indexed))
}

/// Rows with a body past the watermark, counted at open (a failed batch may later count rows that are not
/// there: an index pass then finds fewer). Only the writer thread changes it.
pub(super) fn count_pending(conn: &Connection) -> Result<usize, StoreError> {
    count(conn, "SELECT count(*) FROM archive WHERE seq > (SELECT through FROM archive_fts_state) AND body IS NOT NULL")
}

/// The count a `SELECT count(*)` without parameters gives.
pub(super) fn count(conn: &Connection, sql: &str) -> Result<usize, StoreError> {
    let n: i64 = conn.query_row(sql, [], |row| row.get(0))?;
    Ok(usize::try_from(n).unwrap_or_default())
}

/// Indexes the whole backlog inside a savepoint of the current transaction: a failure is
/// logged and undoes only the indexing (the rows stay pending), never the caller's write.
fn index_backlog(conn: &Connection, pending: &AtomicUsize) -> usize {
    let run = || -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let (passed, indexed) = index_pending(conn, 8 * FTS_BATCH)?;
            total += indexed;
            if passed < 8 * FTS_BATCH {
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
        let outcomes = self
            .write(move |conn| {
                // `seq` explicit: never one an index pass has reserved (archive_index.rs). Time never earlier than
                // the last row: `seq` order is time order (archive_order.rs).
                let (mut seq, last) = archive_index::next_row(conn)?;
                let mut last = last.unwrap_or(i64::MIN);
                let mut outcomes = Vec::with_capacity(rows.len());
                for (owner, entry) in &rows {
                    let timestamp_ms = entry.timestamp_ms.max(last);
                    // The owner's foreign key refuses a row of no account (one lookup, not a check and then the key's).
                    let inserted = conn
                        .prepare_cached(
                            "INSERT INTO archive
                        (seq, owner, stanza_id, with_jid, outgoing, timestamp_ms, origin_id, body, stanza)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        )?
                        .execute(params![
                            seq,
                            owner,
                            entry.stanza_id,
                            entry.with,
                            entry.outgoing,
                            timestamp_ms,
                            entry.origin_id,
                            entry.body,
                            entry.stanza,
                        ]);
                    match inserted {
                        Ok(_) => {}
                        Err(rusqlite::Error::SqliteFailure(e, _))
                            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
                        {
                            outcomes.push(Err(StoreError::NoSuchAccount));
                            continue;
                        }
                        Err(e) => return Err(e.into()),
                    }
                    last = timestamp_ms;
                    seq += 1;
                    outcomes.push(Ok(()));
                    if entry.body.is_some() && pending.fetch_add(1, Ordering::Relaxed) + 1 >= FTS_BATCH {
                        index_backlog(conn, &pending);
                    }
                }
                Ok(outcomes)
            })
            .await?;
        self.archive_tail_grew(outcomes.iter().filter(|outcome| outcome.is_ok()).count());
        Ok(outcomes)
    }

    /// Adds every pending row to the full-text index (one write; nothing when none are pending).
    /// Returns how many rows were indexed.
    pub(crate) async fn archive_index_pending(&self) -> Result<usize, StoreError> {
        // The count is kept by write jobs, and a rolled-back transaction may have undone the indexing that set it to
        // zero (the backlog itself is read from the database): after a rollback, look.
        let rollbacks = self.inner.writer.rollback_count();
        if self.inner.fts_pending.load(Ordering::Relaxed) == 0
            && self.inner.fts_rollbacks_seen.load(Ordering::Relaxed) == rollbacks
        {
            return Ok(0);
        }
        self.inner.fts_rollbacks_seen.store(rollbacks, Ordering::Relaxed);
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
            // The tail first (the newest rows), then the index table (archive_index.rs).
            let tail = archive_index::watermark(conn, &owner)?;
            let latest = conn
                .prepare_cached(concat!(
                    "SELECT ",
                    entry_columns!(),
                    " FROM archive a WHERE a.seq > ?3 AND a.owner = ?1 AND a.origin_id = ?2
                      ORDER BY a.seq DESC LIMIT 1"
                ))?
                .query_row(params![owner, origin_id, tail], entry_from_row)
                .optional()?;
            if latest.is_some() {
                return Ok(latest);
            }
            let entry = conn
                .prepare_cached(concat!(
                    "SELECT ",
                    entry_columns!(),
                    " FROM archive_origin_index i CROSS JOIN archive a ON a.seq = i.seq
                      WHERE i.owner = ?1 AND i.origin_id = ?2 ORDER BY i.seq DESC LIMIT 1"
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
            let tail = archive_index::watermark(conn, &owner)?;
            let count: i64 = conn
                .prepare_cached(
                    "SELECT (SELECT count(*) FROM archive_owner_index WHERE owner = ?1)
                          + (SELECT count(*) FROM archive WHERE seq > ?2 AND owner = ?1)",
                )?
                .query_row(params![owner, tail], |row| row.get(0))?;
            Ok(u64::try_from(count).unwrap_or_default())
        })
        .await
    }
}
