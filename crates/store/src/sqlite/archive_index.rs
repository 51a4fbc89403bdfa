//! The archive's per-owner indexes, kept in batches.
//!
//! A query reads one owner's rows, so the archive needs rows by `(owner, seq)`, by `(owner, with_jid, seq)` and by
//! `(owner, origin_id, seq)`. As SQLite indexes these cost most of an append: with many owners active, each row
//! lands on its own leaf page of each index, and every commit writes each page it dirtied to the write-ahead log
//! whole (4 KiB per index per row, at a few rows per group commit). So they are tables of our own, filled in
//! batches sorted by owner, where one leaf page takes all of an owner's new rows at once:
//!
//! - An append writes only the row. Rows past an owner's *watermark* form the *tail*, which queries read by
//!   `seq` range (the rowid: no index needed) and filter by owner; rows up to it are read through the index tables.
//!   Both parts are contiguous in `seq`, so a page is the index part followed by the tail part.
//! - [`SqliteStore::archive_index_tail`] indexes the tail: the server calls it every second, and an append that
//!   makes the tail longer than [`TAIL_ROWS`] starts it. It first reserves the `seq`s it will index (a tiny
//!   write), reads them on a reader, then indexes owners in [`CHUNKS`] groups (by a hash of the owner), each group
//!   in its own transaction that also advances the group's watermark. A transaction holds the writer for about
//!   [`ROWS_PER_JOB`] rows or one group, so group commits interleave; and as each owner is in one group, its leaf
//!   pages are written once per pass.
//! - `seq` is never reused below a watermark: an append takes `seq` past both the last row and the reservation
//!   ([`next_seq`]), else a row appended after the newest rows were deleted could fall under a watermark unindexed.
//! - Deleting an archive row deletes its index entries (a trigger), so retention and account removal stay one
//!   statement each.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use rusqlite::types::Value;
use rusqlite::{params, Connection};

use super::SqliteStore;
use crate::StoreError;

/// Migration 9: the per-owner indexes become tables kept in batches (see the module doc).
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE archive_owner_index (
        owner TEXT    NOT NULL,
        seq   INTEGER NOT NULL,
        PRIMARY KEY (owner, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE archive_with_index (
        owner    TEXT    NOT NULL,
        with_jid TEXT    NOT NULL,
        seq      INTEGER NOT NULL,
        PRIMARY KEY (owner, with_jid, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE archive_origin_index (
        owner     TEXT    NOT NULL,
        origin_id TEXT    NOT NULL,
        seq       INTEGER NOT NULL,
        PRIMARY KEY (owner, origin_id, seq)
    ) STRICT, WITHOUT ROWID;
    -- Every row of a chunk's owners up to `through` is in the index tables.
    CREATE TABLE archive_index_chunks (
        chunk   INTEGER PRIMARY KEY,
        through INTEGER NOT NULL
    ) STRICT;
    -- The highest `seq` an index pass has reserved: appends go past it.
    CREATE TABLE archive_index_reserved (
        id       INTEGER PRIMARY KEY CHECK (id = 0),
        reserved INTEGER NOT NULL
    ) STRICT;

    INSERT INTO archive_owner_index SELECT owner, seq FROM archive ORDER BY owner, seq;
    INSERT INTO archive_with_index SELECT owner, with_jid, seq FROM archive ORDER BY owner, with_jid, seq;
    INSERT INTO archive_origin_index SELECT owner, origin_id, seq FROM archive WHERE origin_id IS NOT NULL
        ORDER BY owner, origin_id, seq;
    INSERT INTO archive_index_reserved VALUES (0, coalesce((SELECT max(seq) FROM archive), 0));
    WITH RECURSIVE chunk(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM chunk WHERE n < 15)
        INSERT INTO archive_index_chunks SELECT n, (SELECT reserved FROM archive_index_reserved) FROM chunk;
    DROP INDEX archive_by_owner;
    DROP INDEX archive_by_with;
    DROP INDEX archive_by_origin_id;

    CREATE TRIGGER archive_index_delete AFTER DELETE ON archive BEGIN
        DELETE FROM archive_owner_index WHERE owner = old.owner AND seq = old.seq;
        DELETE FROM archive_with_index WHERE owner = old.owner AND with_jid = old.with_jid AND seq = old.seq;
        DELETE FROM archive_origin_index WHERE owner = old.owner AND origin_id = old.origin_id AND seq = old.seq;
    END;
"#;

/// Groups of owners with a watermark each (the migration creates this many).
pub(super) const CHUNKS: usize = 16;

/// Tail rows past which an append starts an index pass (queries scan the tail: this bounds that scan).
pub(super) const TAIL_ROWS: usize = 16_384;

/// About the most rows one index transaction takes (a larger chunk takes one transaction alone).
const ROWS_PER_JOB: usize = 512;

/// The chunk an owner's rows are indexed with: FNV-1a of the name, stable across builds and machines.
pub(super) fn chunk_of(owner: &str) -> usize {
    let hash = owner.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    hash as usize % CHUNKS
}

/// The owner's watermark: its rows up to it are in the index tables, its rows past it are in the tail.
pub(super) fn watermark(conn: &Connection, owner: &str) -> Result<i64, StoreError> {
    let through = conn
        .prepare_cached("SELECT through FROM archive_index_chunks WHERE chunk = ?1")?
        .query_row(params![chunk_of(owner) as i64], |row| row.get(0))?;
    Ok(through)
}

/// The `seq` the next appended row takes: past the last row, every `seq` an index pass has reserved and the
/// full-text index's watermark (archive.rs), which a row under it would be missing from.
pub(super) fn next_seq(conn: &Connection) -> Result<i64, StoreError> {
    Ok(next_row(conn)?.0)
}

/// [`next_seq`], and the last row's time (appends never stamp earlier: archive_order.rs), in one read of it.
pub(super) fn next_row(conn: &Connection) -> Result<(i64, Option<i64>), StoreError> {
    let next = conn
        .prepare_cached(
            "SELECT max(coalesce(last.seq, 0), r.reserved, f.through) + 1, last.timestamp_ms
             FROM archive_index_reserved r CROSS JOIN archive_fts_state f
             LEFT JOIN (SELECT seq, timestamp_ms FROM archive ORDER BY seq DESC LIMIT 1) last",
        )?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(next)
}

/// Rows past the lowest watermark (the tail's length, counted at open).
pub(super) fn count_tail(conn: &Connection) -> Result<usize, StoreError> {
    super::archive::count(
        conn,
        "SELECT count(*) FROM archive WHERE seq > (SELECT min(through) FROM archive_index_chunks)",
    )
}

/// The tail's state, shared by appends (which count it) and index passes (one at a time).
#[derive(Default)]
pub(super) struct Tail {
    /// Rows appended past the watermarks, as far as this process knows (a failed batch may have counted rows that
    /// are not there: a pass then finds fewer).
    pub(super) rows: AtomicUsize,
    running: AtomicBool,
}

impl Tail {
    pub(super) fn starting(rows: usize) -> Arc<Tail> {
        Arc::new(Tail { rows: rows.into(), running: false.into() })
    }
}

/// What a pass reads from the tail: per chunk, the rows to index and whether any has an origin-id.
struct Plan {
    upto: i64,
    chunks: Vec<(Vec<i64>, bool)>,
}

/// Reserves the tail for a pass: no row appended from now on takes a `seq` up to the returned one (runs on the
/// writer, so every row up to it is committed when the call returns).
fn reserve(conn: &Connection) -> Result<i64, StoreError> {
    let upto = next_seq(conn)? - 1;
    conn.prepare_cached("UPDATE archive_index_reserved SET reserved = ?1")?.execute(params![upto])?;
    Ok(upto)
}

/// Groups the reserved tail's rows by chunk (runs on a reader: the writer goes on meanwhile).
fn plan(conn: &Connection, upto: i64) -> Result<Plan, StoreError> {
    let throughs: Vec<i64> = conn
        .prepare_cached("SELECT through FROM archive_index_chunks ORDER BY chunk")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let from = throughs.iter().copied().min().unwrap_or(upto);
    let mut chunks: Vec<(Vec<i64>, bool)> = vec![(Vec::new(), false); CHUNKS];
    let mut tail =
        conn.prepare_cached("SELECT seq, owner, origin_id IS NOT NULL FROM archive WHERE seq > ?1 AND seq <= ?2")?;
    let mut rows = tail.query(params![from, upto])?;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let chunk = chunk_of(row.get_ref(1)?.as_str().map_err(|e| StoreError::internal(e.to_string()))?);
        if throughs.get(chunk).is_some_and(|&through| seq > through) {
            chunks[chunk].0.push(seq);
            chunks[chunk].1 |= row.get::<_, bool>(2)?;
        }
    }
    Ok(Plan { upto, chunks })
}

/// Indexes the given rows of some chunks and moves those chunks' watermarks to `upto` (runs on the writer).
fn index_chunks(
    conn: &Connection,
    upto: i64,
    chunks: &[usize],
    seqs: &[i64],
    origins: bool,
) -> Result<usize, StoreError> {
    let seqs: rusqlite::vtab::array::Array = std::rc::Rc::new(seqs.iter().copied().map(Value::from).collect());
    // Sorted by key: each leaf page is visited once, in order. A row deleted since the plan is simply not found.
    let indexed = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO archive_owner_index (owner, seq)
             SELECT owner, seq FROM archive WHERE seq IN rarray(?1) ORDER BY owner, seq",
        )?
        .execute(params![seqs])?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO archive_with_index (owner, with_jid, seq)
         SELECT owner, with_jid, seq FROM archive WHERE seq IN rarray(?1) ORDER BY owner, with_jid, seq",
    )?
    .execute(params![seqs])?;
    if origins {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO archive_origin_index (owner, origin_id, seq)
             SELECT owner, origin_id, seq FROM archive WHERE seq IN rarray(?1) AND origin_id IS NOT NULL
             ORDER BY owner, origin_id, seq",
        )?
        .execute(params![seqs])?;
    }
    let chunks: rusqlite::vtab::array::Array =
        std::rc::Rc::new(chunks.iter().map(|&c| Value::from(c as i64)).collect());
    conn.prepare_cached("UPDATE archive_index_chunks SET through = ?1 WHERE chunk IN rarray(?2) AND through < ?1")?
        .execute(params![upto, chunks])?;
    Ok(indexed)
}

impl SqliteStore {
    /// Indexes every row appended before the call (one pass; nothing when the tail is empty or a pass is running).
    /// Returns how many rows were indexed.
    pub(crate) async fn archive_index_tail(&self) -> Result<usize, StoreError> {
        let tail = self.inner.archive_tail.clone();
        if tail.rows.load(Ordering::Relaxed) == 0 || tail.running.swap(true, Ordering::Acquire) {
            return Ok(0);
        }
        /// Ends the pass however the future ends (dropped at shutdown included), so that another can start.
        struct Running<'a>(&'a AtomicBool);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _running = Running(&tail.running);
        self.index_tail_pass(&tail).await
    }

    async fn index_tail_pass(&self, tail: &Tail) -> Result<usize, StoreError> {
        let counted = tail.rows.load(Ordering::Relaxed);
        let started = std::time::Instant::now();
        let upto = self.write(reserve).await?;
        let Plan { upto, chunks } = self.read(move |conn| plan(conn, upto)).await?;
        let planned = started.elapsed();
        // Chunks packed into transactions of about ROWS_PER_JOB rows; chunks with no rows ride along.
        let mut jobs: Vec<(Vec<usize>, Vec<i64>, bool)> = vec![(Vec::new(), Vec::new(), false)];
        for (chunk, (seqs, origins)) in chunks.into_iter().enumerate() {
            let last = jobs.last_mut().expect("jobs starts non-empty");
            if !last.1.is_empty() && last.1.len() + seqs.len() > ROWS_PER_JOB {
                jobs.push((vec![chunk], seqs, origins));
            } else {
                last.0.push(chunk);
                last.1.extend(seqs);
                last.2 |= origins;
            }
        }
        let (mut total, mut longest) = (0, std::time::Duration::ZERO);
        let transactions = jobs.len();
        for (chunks, seqs, origins) in jobs {
            let (indexed, took) = self
                .write(move |conn| {
                    let started = std::time::Instant::now();
                    Ok((index_chunks(conn, upto, &chunks, &seqs, origins)?, started.elapsed()))
                })
                .await?;
            total += indexed;
            longest = longest.max(took);
        }
        tracing::debug!(rows = total, transactions, ?planned, ?longest, took = ?started.elapsed(), "archive index pass");
        // Rows appended during the pass stay counted.
        let _ = tail.rows.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(counted)));
        Ok(total)
    }

    /// Counts appended rows into the tail; starts an index pass in the background once it is long.
    pub(super) fn archive_tail_grew(&self, rows: usize) {
        let before = self.inner.archive_tail.rows.fetch_add(rows, Ordering::Relaxed);
        if before + rows >= TAIL_ROWS && !self.inner.archive_tail.running.load(Ordering::Relaxed) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let store = self.clone();
                runtime.spawn(async move {
                    if let Err(e) = store.archive_index_tail().await {
                        tracing::warn!(error = %e, "archive index pass failed; the rows stay in the tail");
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive of schema 8 (SQLite indexes, rows listed for the full-text index) keeps every row findable.
    #[test]
    fn an_archive_of_schema_8_is_migrated_with_its_rows_indexed() {
        let mut conn = Connection::open_in_memory().unwrap();
        for script in &super::super::migrations::MIGRATIONS[..8] {
            conn.execute_batch(script).unwrap();
        }
        conn.pragma_update(None, "user_version", 8).unwrap();
        conn.execute_batch(
            "INSERT INTO accounts VALUES ('alice', x'', 1, x'', x'', x'', 1, x'', x''), ('bob', x'', 1, x'', x'', x'', 1, x'', x'');
             INSERT INTO archive (owner, stanza_id, with_jid, outgoing, timestamp_ms, origin_id, body, stanza) VALUES
                ('alice', 'a1', 'bob@b', 1, 10, 'o1', 'hello world', '<m/>'),
                ('bob', 'b1', 'alice@a', 0, 10, NULL, 'hello world', '<m/>'),
                ('alice', 'a2', 'carol@c', 0, 20, NULL, NULL, '<m/>');",
        )
        .unwrap();
        super::super::migrations::migrate(&mut conn).unwrap();
        let owner: Vec<(String, i64)> = conn
            .prepare("SELECT owner, seq FROM archive_owner_index ORDER BY owner, seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(owner, [("alice".into(), 1), ("alice".into(), 3), ("bob".into(), 2)]);
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(count("SELECT count(*) FROM archive_with_index WHERE owner = 'alice' AND with_jid = 'carol@c'"), 1);
        assert_eq!(count("SELECT count(*) FROM archive_origin_index"), 1);
        assert_eq!(count("SELECT count(*) FROM archive_fts WHERE archive_fts MATCH 'hello'"), 2);
        assert_eq!(count("SELECT min(through) FROM archive_index_chunks"), 3);
        assert_eq!(next_seq(&conn).unwrap(), 4);
        // Deleting keeps both indexes consistent.
        conn.execute("DELETE FROM accounts WHERE username = 'bob'", []).unwrap();
        assert_eq!(count("SELECT count(*) FROM archive_owner_index"), 2);
        assert_eq!(count("SELECT count(*) FROM archive_fts WHERE archive_fts MATCH 'hello'"), 1);
        conn.execute_batch("INSERT INTO archive_fts (archive_fts) VALUES ('integrity-check')").unwrap();
    }

    #[test]
    fn chunks_are_stable_and_spread() {
        // Fixed values: a chunk is stored state, so the hash must never change.
        assert_eq!(chunk_of(""), 0x811c_9dc5 % CHUNKS);
        assert_eq!(chunk_of("alice"), chunk_of("alice"));
        let mut seen = [0usize; CHUNKS];
        for i in 0..1_600 {
            seen[chunk_of(&format!("user{i}"))] += 1;
        }
        assert!(seen.iter().all(|&n| (50..=150).contains(&n)), "{seen:?}");
    }
}
