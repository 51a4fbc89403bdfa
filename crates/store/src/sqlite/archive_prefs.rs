//! SQLite SQL for archiving preferences (XEP-0441): a default mode and two JID lists per owner.

use rusqlite::{params, OptionalExtension};

use super::accounts::account_exists;
use super::SqliteStore;
use crate::{ArchiveDefault, ArchivePrefs, StoreError};

impl SqliteStore {
    pub(crate) async fn archive_prefs(&self, owner: &str) -> Result<ArchivePrefs, StoreError> {
        let owner = owner.to_owned();
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let mode: Option<String> = tx
                .prepare_cached("SELECT default_mode FROM archive_prefs WHERE owner = ?1")?
                .query_row(params![owner], |row| row.get(0))
                .optional()?;
            let default = match mode.as_deref().map(ArchiveDefault::parse) {
                None => ArchiveDefault::default(),
                Some(Some(default)) => default,
                Some(None) => return Err(StoreError::internal(format!("bad archive default mode {mode:?}"))),
            };
            let mut prefs = ArchivePrefs { default, always: Vec::new(), never: Vec::new() };
            let mut statement =
                tx.prepare_cached("SELECT list, jid FROM archive_prefs_jids WHERE owner = ?1 ORDER BY list, jid")?;
            let mut rows = statement.query(params![owner])?;
            while let Some(row) = rows.next()? {
                let list: String = row.get(0)?;
                let jid: String = row.get(1)?;
                match list.as_str() {
                    "always" => prefs.always.push(jid),
                    _ => prefs.never.push(jid),
                }
            }
            Ok(prefs)
        })
        .await
    }

    pub(crate) async fn archive_set_prefs(&self, owner: &str, prefs: &ArchivePrefs) -> Result<(), StoreError> {
        let owner = owner.to_owned();
        let prefs = prefs.clone();
        self.write(move |conn| {
            if !account_exists(conn, &owner)? {
                return Err(StoreError::NoSuchAccount);
            }
            conn.prepare_cached(
                "INSERT INTO archive_prefs (owner, default_mode) VALUES (?1, ?2)
                 ON CONFLICT (owner) DO UPDATE SET default_mode = excluded.default_mode",
            )?
            .execute(params![owner, prefs.default.as_str()])?;
            conn.prepare_cached("DELETE FROM archive_prefs_jids WHERE owner = ?1")?.execute(params![owner])?;
            let mut insert = conn.prepare_cached(
                "INSERT INTO archive_prefs_jids (owner, list, jid) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )?;
            for (list, jids) in [("always", &prefs.always), ("never", &prefs.never)] {
                for jid in jids {
                    insert.execute(params![owner, list, jid])?;
                }
            }
            Ok(())
        })
        .await
    }
}
