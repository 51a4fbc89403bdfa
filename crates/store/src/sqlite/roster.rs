//! SQLite SQL for rosters (RFC 6121 §2): items, their groups, and the per-owner version.

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::accounts::account_exists;
use super::SqliteStore;
use crate::{Roster, RosterItem, StoreError, Subscription};

impl SqliteStore {
    pub(crate) async fn roster(&self, owner: &str) -> Result<Roster, StoreError> {
        let owner = owner.to_owned();
        self.read(move |conn| {
            // One read transaction: the version and the items come from the same snapshot.
            let tx = conn.unchecked_transaction()?;
            let version = roster_version(&tx, &owner)?;
            let mut items = tx
                .prepare_cached(
                    "SELECT contact, name, subscription, ask_out, pending_in, approved
                     FROM roster_items WHERE owner = ?1 ORDER BY contact",
                )?
                .query_map(params![owner], item_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let mut statement = tx.prepare_cached(
                "SELECT contact, name FROM roster_groups
                 WHERE owner = ?1 ORDER BY contact, position",
            )?;
            let mut groups = statement.query(params![owner])?;
            // Both lists are sorted by contact: merge them in one pass.
            let mut item_index = 0;
            while let Some(row) = groups.next()? {
                let contact: String = row.get(0)?;
                while items.get(item_index).is_some_and(|item| item.jid < contact) {
                    item_index += 1;
                }
                if let Some(item) = items.get_mut(item_index).filter(|i| i.jid == contact) {
                    item.groups.push(row.get(1)?);
                }
            }
            drop(groups);
            drop(statement);
            tx.finish()?;
            Ok(Roster { version, items })
        })
        .await
    }

    pub(crate) async fn roster_version(&self, owner: &str) -> Result<u64, StoreError> {
        let owner = owner.to_owned();
        self.read(move |conn| roster_version(conn, &owner)).await
    }

    pub(crate) async fn roster_item(&self, owner: &str, contact: &str) -> Result<Option<RosterItem>, StoreError> {
        let owner = owner.to_owned();
        let contact = contact.to_owned();
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let item = tx
                .prepare_cached(
                    "SELECT contact, name, subscription, ask_out, pending_in, approved
                     FROM roster_items WHERE owner = ?1 AND contact = ?2",
                )?
                .query_row(params![owner, contact], item_from_row)
                .optional()?;
            let Some(mut item) = item else {
                return Ok(None);
            };
            item.groups = tx
                .prepare_cached(
                    "SELECT name FROM roster_groups
                     WHERE owner = ?1 AND contact = ?2 ORDER BY position",
                )?
                .query_map(params![owner, contact], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            tx.finish()?;
            Ok(Some(item))
        })
        .await
    }

    pub(crate) async fn roster_put(&self, owner: &str, item: &RosterItem) -> Result<u64, StoreError> {
        let owner = owner.to_owned();
        let item = item.clone();
        self.write(move |conn| {
            if !account_exists(conn, &owner)? {
                return Err(StoreError::NoSuchAccount);
            }
            conn.prepare_cached(
                "INSERT INTO roster_items
                    (owner, contact, name, subscription, ask_out, pending_in, approved)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (owner, contact) DO UPDATE SET
                    name = excluded.name,
                    subscription = excluded.subscription,
                    ask_out = excluded.ask_out,
                    pending_in = excluded.pending_in,
                    approved = excluded.approved",
            )?
            .execute(params![
                owner,
                item.jid,
                item.name,
                item.subscription,
                item.ask_out,
                item.pending_in,
                item.approved,
            ])?;
            conn.prepare_cached("DELETE FROM roster_groups WHERE owner = ?1 AND contact = ?2")?
                .execute(params![owner, item.jid])?;
            let mut insert_group = conn.prepare_cached(
                "INSERT INTO roster_groups (owner, contact, name, position)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (owner, contact, name) DO NOTHING",
            )?;
            for (position, group) in item.groups.iter().enumerate() {
                insert_group.execute(params![owner, item.jid, group, position])?;
            }
            bump_roster_version(conn, &owner)
        })
        .await
    }

    pub(crate) async fn roster_remove(&self, owner: &str, contact: &str) -> Result<Option<u64>, StoreError> {
        let owner = owner.to_owned();
        let contact = contact.to_owned();
        self.write(move |conn| {
            // The groups go with the item (ON DELETE CASCADE).
            let removed = conn
                .prepare_cached("DELETE FROM roster_items WHERE owner = ?1 AND contact = ?2")?
                .execute(params![owner, contact])?;
            if removed == 0 {
                return Ok(None);
            }
            bump_roster_version(conn, &owner).map(Some)
        })
        .await
    }
}

fn roster_version(conn: &Connection, owner: &str) -> Result<u64, StoreError> {
    let version: Option<i64> = conn
        .prepare_cached("SELECT version FROM roster_versions WHERE owner = ?1")?
        .query_row(params![owner], |row| row.get(0))
        .optional()?;
    Ok(version.map_or(0, |v| u64::try_from(v).unwrap_or_default()))
}

/// Increments the owner's roster version (RFC 6121 §2.6: every change gets a new one)
/// and returns it.
fn bump_roster_version(conn: &Connection, owner: &str) -> Result<u64, StoreError> {
    let version: i64 = conn
        .prepare_cached(
            "INSERT INTO roster_versions (owner, version) VALUES (?1, 1)
             ON CONFLICT (owner) DO UPDATE SET version = version + 1
             RETURNING version",
        )?
        .query_row(params![owner], |row| row.get(0))?;
    Ok(u64::try_from(version).unwrap_or_default())
}

/// An item without its groups (they come from `roster_groups`).
fn item_from_row(row: &Row<'_>) -> rusqlite::Result<RosterItem> {
    Ok(RosterItem {
        jid: row.get(0)?,
        name: row.get(1)?,
        subscription: row.get(2)?,
        ask_out: row.get(3)?,
        pending_in: row.get(4)?,
        approved: row.get(5)?,
        groups: Vec::new(),
    })
}

impl ToSql for Subscription {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Subscription {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        Subscription::parse(text).ok_or_else(|| FromSqlError::Other(format!("unknown subscription {text:?}").into()))
    }
}
