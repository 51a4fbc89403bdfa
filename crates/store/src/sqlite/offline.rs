//! SQLite SQL for offline messages (RFC 6121 §8.5.2.2.1): a bounded FIFO per owner.

use rusqlite::params;

use super::accounts::account_exists;
use super::SqliteStore;
use crate::{OfflineMessage, OfflinePush, StoreError};

impl SqliteStore {
    pub(crate) async fn offline_push(
        &self,
        owner: &str,
        stanza: &str,
        stored_at_unix_ms: i64,
        limit: u32,
    ) -> Result<OfflinePush, StoreError> {
        let owner = owner.to_owned();
        let stanza = stanza.to_owned();
        self.write(move |conn| {
            if !account_exists(conn, &owner)? {
                return Err(StoreError::NoSuchAccount);
            }
            // Count and insert run in the writer's transaction: no other write can slip
            // between them, so the limit holds exactly.
            let stored: i64 = conn
                .prepare_cached("SELECT count(*) FROM offline_messages WHERE owner = ?1")?
                .query_row(params![owner], |row| row.get(0))?;
            if stored >= i64::from(limit) {
                return Ok(OfflinePush::Full);
            }
            let id = conn
                .prepare_cached(
                    "INSERT INTO offline_messages (owner, stanza, stored_at_unix_ms)
                     VALUES (?1, ?2, ?3) RETURNING id",
                )?
                .query_row(params![owner, stanza, stored_at_unix_ms], |row| row.get(0))?;
            Ok(OfflinePush::Stored(id))
        })
        .await
    }

    pub(crate) async fn offline_list(&self, owner: &str) -> Result<Vec<OfflineMessage>, StoreError> {
        let owner = owner.to_owned();
        self.read(move |conn| {
            let messages = conn
                .prepare_cached(
                    "SELECT id, stanza, stored_at_unix_ms FROM offline_messages
                     WHERE owner = ?1 ORDER BY id",
                )?
                .query_map(params![owner], |row| {
                    Ok(OfflineMessage { id: row.get(0)?, stanza: row.get(1)?, stored_at_unix_ms: row.get(2)? })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(messages)
        })
        .await
    }

    pub(crate) async fn offline_delete_through(&self, owner: &str, through: i64) -> Result<u64, StoreError> {
        let owner = owner.to_owned();
        self.write(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM offline_messages WHERE owner = ?1 AND id <= ?2")?
                .execute(params![owner, through])?;
            Ok(deleted as u64)
        })
        .await
    }

    pub(crate) async fn offline_count(&self, owner: &str) -> Result<u64, StoreError> {
        let owner = owner.to_owned();
        self.read(move |conn| {
            let count: i64 = conn
                .prepare_cached("SELECT count(*) FROM offline_messages WHERE owner = ?1")?
                .query_row(params![owner], |row| row.get(0))?;
            Ok(u64::try_from(count).unwrap_or_default())
        })
        .await
    }
}
