//! SQLite SQL for blocking (XEP-0191): a set of JIDs per owner, kept as given.

use rusqlite::params;

use super::accounts::account_exists;
use super::SqliteStore;
use crate::StoreError;

impl SqliteStore {
    pub(crate) async fn blocklist(&self, owner: &str) -> Result<Vec<String>, StoreError> {
        let owner = owner.to_owned();
        self.read(move |conn| {
            let jids = conn
                .prepare_cached("SELECT jid FROM blocklist WHERE owner = ?1 ORDER BY jid")?
                .query_map(params![owner], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(jids)
        })
        .await
    }

    pub(crate) async fn block(&self, owner: &str, jids: &[String]) -> Result<(), StoreError> {
        let owner = owner.to_owned();
        let jids = jids.to_vec();
        self.write(move |conn| {
            if !account_exists(conn, &owner)? {
                return Err(StoreError::NoSuchAccount);
            }
            let mut insert =
                conn.prepare_cached("INSERT INTO blocklist (owner, jid) VALUES (?1, ?2) ON CONFLICT DO NOTHING")?;
            for jid in &jids {
                insert.execute(params![owner, jid])?;
            }
            Ok(())
        })
        .await
    }

    pub(crate) async fn unblock(&self, owner: &str, jids: &[String]) -> Result<(), StoreError> {
        let owner = owner.to_owned();
        let jids = jids.to_vec();
        self.write(move |conn| {
            if jids.is_empty() {
                conn.prepare_cached("DELETE FROM blocklist WHERE owner = ?1")?.execute(params![owner])?;
                return Ok(());
            }
            let mut delete = conn.prepare_cached("DELETE FROM blocklist WHERE owner = ?1 AND jid = ?2")?;
            for jid in &jids {
                delete.execute(params![owner, jid])?;
            }
            Ok(())
        })
        .await
    }
}
