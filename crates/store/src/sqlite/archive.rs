//! SQLite SQL for the message archive (XEP-0313): appending, single lookups, counting and
//! retention. Paged queries live in `archive_query`.

use rusqlite::{params, OptionalExtension, Row};

use super::accounts::account_exists;
use super::SqliteStore;
use crate::{ArchiveEntry, StoreError};

/// Most rows one retention transaction deletes: each batch holds the writer for tens of
/// milliseconds (FTS index upkeep included), so other writes interleave between them.
const PURGE_BATCH: i64 = 5_000;

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
    pub(crate) async fn archive_append(&self, owner: &str, entry: &ArchiveEntry) -> Result<(), StoreError> {
        let owner = owner.to_owned();
        let entry = entry.clone();
        self.write(move |conn| {
            if !account_exists(conn, &owner)? {
                return Err(StoreError::NoSuchAccount);
            }
            // The FTS index is kept by the `archive_fts_insert` trigger.
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO archive
                        (owner, stanza_id, with_jid, outgoing, timestamp_ms, origin_id, body, stanza)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (owner, stanza_id) DO NOTHING",
                )?
                .execute(params![
                    owner,
                    entry.stanza_id,
                    entry.with,
                    entry.outgoing,
                    entry.timestamp_ms,
                    entry.origin_id,
                    entry.body,
                    entry.stanza,
                ])?;
            match inserted {
                0 => Err(StoreError::AlreadyExists),
                _ => Ok(()),
            }
        })
        .await
    }

    pub(crate) async fn archive_get(&self, owner: &str, stanza_id: &str) -> Result<Option<ArchiveEntry>, StoreError> {
        let owner = owner.to_owned();
        let stanza_id = stanza_id.to_owned();
        self.read(move |conn| {
            let entry = conn
                .prepare_cached(concat!(
                    "SELECT ",
                    entry_columns!(),
                    " FROM archive a WHERE a.owner = ?1 AND a.stanza_id = ?2"
                ))?
                .query_row(params![owner, stanza_id], entry_from_row)
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
            // One owner at a time through (owner, timestamp_ms): every batch costs an index
            // probe per account plus the rows it deletes, never a scan of the archive.
            let deleted = self
                .write(move |conn| {
                    let deleted = conn
                        .prepare_cached(
                            "DELETE FROM archive WHERE seq IN (
                                SELECT a.seq FROM accounts CROSS JOIN archive a INDEXED BY archive_by_time
                                ON a.owner = accounts.username AND a.timestamp_ms < ?1
                                LIMIT ?2)",
                        )?
                        .execute(params![cutoff_ms, PURGE_BATCH])?;
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
