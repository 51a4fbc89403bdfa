//! SQL for XEP-0060/0163 PubSub (PEP) nodes, items and affiliations, XEP-0054 vcard-temp, and XEP-0049 private
//! XML storage (kept with PEP because bookmarks are synchronised between them).

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::accounts::account_exists;
use super::SqliteStore;
use crate::pubsub::{
    AccessModel, Affiliation, ItemsPage, ItemsQuery, NodeConfig, NodeCreated, Published, PubsubItem, SendLast,
};
use crate::StoreError;

/// Migration 5 (see `migrations.rs`).
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE pubsub_nodes (
        owner          TEXT    NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
        node           TEXT    NOT NULL,
        access_model   TEXT    NOT NULL CHECK (access_model IN ('open', 'presence', 'whitelist')),
        persist_items  INTEGER NOT NULL CHECK (persist_items IN (0, 1)),
        max_items      INTEGER NOT NULL CHECK (max_items >= 1),
        send_last      TEXT    NOT NULL CHECK (send_last IN ('never', 'on_sub', 'on_sub_and_presence')),
        notify_retract INTEGER NOT NULL CHECK (notify_retract IN (0, 1)),
        notify_delete  INTEGER NOT NULL CHECK (notify_delete IN (0, 1)),
        title          TEXT,
        PRIMARY KEY (owner, node)
    ) STRICT, WITHOUT ROWID;

    -- `seq` (the rowid) is publication order; republishing an id deletes and inserts, so it moves to the end.
    CREATE TABLE pubsub_items (
        seq          INTEGER PRIMARY KEY,
        owner        TEXT    NOT NULL,
        node         TEXT    NOT NULL,
        item_id      TEXT    NOT NULL,
        publisher    TEXT    NOT NULL,
        payload      TEXT    NOT NULL,
        published_ms INTEGER NOT NULL,
        FOREIGN KEY (owner, node) REFERENCES pubsub_nodes(owner, node) ON DELETE CASCADE
    ) STRICT;
    CREATE UNIQUE INDEX pubsub_items_by_id ON pubsub_items(owner, node, item_id);
    CREATE INDEX pubsub_items_by_node ON pubsub_items(owner, node, seq);

    CREATE TABLE pubsub_affiliations (
        owner       TEXT NOT NULL,
        node        TEXT NOT NULL,
        jid         TEXT NOT NULL,
        affiliation TEXT NOT NULL CHECK (affiliation IN ('member', 'publisher', 'outcast')),
        PRIMARY KEY (owner, node, jid),
        FOREIGN KEY (owner, node) REFERENCES pubsub_nodes(owner, node) ON DELETE CASCADE
    ) STRICT, WITHOUT ROWID;

    -- XEP-0049: one element per (owner, namespace).
    CREATE TABLE pubsub_private_xml (
        owner     TEXT NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
        namespace TEXT NOT NULL,
        xml       TEXT NOT NULL,
        PRIMARY KEY (owner, namespace)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE vcard_temp (
        owner TEXT NOT NULL PRIMARY KEY REFERENCES accounts(username) ON DELETE CASCADE,
        vcard TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
"#;

/// The columns [`config_from_row`] reads, in its order, as a literal for `concat!`.
macro_rules! node_columns {
    () => {
        "access_model, persist_items, max_items, send_last, notify_retract, notify_delete, title"
    };
}

/// The columns [`item_from_row`] reads, as a literal for `concat!`.
macro_rules! item_select {
    () => {
        "SELECT item_id, publisher, payload, published_ms FROM pubsub_items "
    };
}

fn config_from_row(row: &Row<'_>, first: usize) -> rusqlite::Result<NodeConfig> {
    let access: String = row.get(first)?;
    let send_last: String = row.get(first + 3)?;
    let max_items: i64 = row.get(first + 2)?;
    Ok(NodeConfig {
        // The CHECK constraints keep these columns to the values `parse` knows.
        access_model: AccessModel::parse(&access).unwrap_or_default(),
        persist_items: row.get(first + 1)?,
        max_items: u32::try_from(max_items).unwrap_or(u32::MAX),
        send_last: SendLast::parse(&send_last).unwrap_or_default(),
        notify_retract: row.get(first + 4)?,
        notify_delete: row.get(first + 5)?,
        title: row.get(first + 6)?,
    })
}

fn item_from_row(row: &Row<'_>) -> rusqlite::Result<PubsubItem> {
    Ok(PubsubItem { id: row.get(0)?, publisher: row.get(1)?, payload: row.get(2)?, published_ms: row.get(3)? })
}

fn node_config(conn: &Connection, owner: &str, node: &str) -> Result<Option<NodeConfig>, StoreError> {
    let sql = concat!("SELECT ", node_columns!(), " FROM pubsub_nodes WHERE owner = ?1 AND node = ?2");
    Ok(conn.prepare_cached(sql)?.query_row(params![owner, node], |row| config_from_row(row, 0)).optional()?)
}

/// `?1`–`?9` of the statements that write a node: owner, node, then the configuration columns in table order.
fn node_params<'a>(owner: &'a str, node: &'a str, c: &'a NodeConfig) -> impl rusqlite::Params + 'a {
    (
        owner,
        node,
        c.access_model.as_str(),
        c.persist_items,
        c.max_items.max(1),
        c.send_last.as_str(),
        c.notify_retract,
        c.notify_delete,
        c.title.as_deref(),
    )
}

fn insert_node(conn: &Connection, owner: &str, node: &str, c: &NodeConfig) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO pubsub_nodes
            (owner, node, access_model, persist_items, max_items, send_last, notify_retract, notify_delete, title)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(node_params(owner, node, c))?;
    Ok(())
}

fn node_count(conn: &Connection, owner: &str) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM pubsub_nodes WHERE owner = ?1")?
        .query_row(params![owner], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or_default())
}

/// Drops the oldest items beyond `keep`.
fn trim(conn: &Connection, owner: &str, node: &str, keep: u32) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM pubsub_items WHERE owner = ?1 AND node = ?2 AND seq < (
            SELECT seq FROM pubsub_items WHERE owner = ?1 AND node = ?2 ORDER BY seq DESC LIMIT 1 OFFSET ?3 - 1)",
    )?
    .execute(params![owner, node, keep.max(1)])?;
    Ok(())
}

fn item_seq(conn: &Connection, owner: &str, node: &str, id: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT seq FROM pubsub_items WHERE owner = ?1 AND node = ?2 AND item_id = ?3")?
        .query_row(params![owner, node, id], |r| r.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)
}

impl SqliteStore {
    pub(crate) async fn pubsub_node(&self, owner: &str, node: &str) -> Result<Option<NodeConfig>, StoreError> {
        let (owner, node) = (owner.to_owned(), node.to_owned());
        self.read(move |conn| node_config(conn, &owner, &node)).await
    }

    pub(crate) async fn pubsub_nodes(&self, owner: &str) -> Result<Vec<(String, NodeConfig)>, StoreError> {
        let owner = owner.to_owned();
        self.read(move |conn| {
            let sql = concat!("SELECT node, ", node_columns!(), " FROM pubsub_nodes WHERE owner = ?1 ORDER BY node");
            let nodes = conn
                .prepare_cached(sql)?
                .query_map(params![owner], |row| Ok((row.get(0)?, config_from_row(row, 1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(nodes)
        })
        .await
    }

    pub(crate) async fn pubsub_node_create(
        &self,
        owner: &str,
        node: &str,
        config: &NodeConfig,
        max_nodes: u32,
    ) -> Result<NodeCreated, StoreError> {
        let (owner, node, config) = (owner.to_owned(), node.to_owned(), config.clone());
        self.write(move |conn| {
            if !account_exists(conn, &owner)? {
                return Err(StoreError::NoSuchAccount);
            }
            if node_config(conn, &owner, &node)?.is_some() {
                return Ok(NodeCreated::Exists);
            }
            if node_count(conn, &owner)? >= u64::from(max_nodes) {
                return Ok(NodeCreated::TooManyNodes);
            }
            insert_node(conn, &owner, &node, &config)?;
            Ok(NodeCreated::Created)
        })
        .await
    }

    pub(crate) async fn pubsub_node_configure(
        &self,
        owner: &str,
        node: &str,
        config: &NodeConfig,
    ) -> Result<bool, StoreError> {
        let (owner, node, c) = (owner.to_owned(), node.to_owned(), config.clone());
        self.write(move |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE pubsub_nodes SET access_model = ?3, persist_items = ?4, max_items = ?5, send_last = ?6,
                        notify_retract = ?7, notify_delete = ?8, title = ?9
                     WHERE owner = ?1 AND node = ?2",
                )?
                .execute(node_params(&owner, &node, &c))?;
            if changed == 0 {
                return Ok(false);
            }
            trim(conn, &owner, &node, c.kept_items())?;
            Ok(true)
        })
        .await
    }

    pub(crate) async fn pubsub_node_delete(&self, owner: &str, node: &str) -> Result<bool, StoreError> {
        let (owner, node) = (owner.to_owned(), node.to_owned());
        self.write(move |conn| {
            // Items and affiliations go with it (ON DELETE CASCADE).
            let deleted = conn
                .prepare_cached("DELETE FROM pubsub_nodes WHERE owner = ?1 AND node = ?2")?
                .execute(params![owner, node])?;
            Ok(deleted > 0)
        })
        .await
    }

    pub(crate) async fn pubsub_publish(
        &self,
        owner: &str,
        node: &str,
        create: &NodeConfig,
        item: &PubsubItem,
        max_nodes: u32,
    ) -> Result<Published, StoreError> {
        let (owner, node, create, item) = (owner.to_owned(), node.to_owned(), create.clone(), item.clone());
        self.write(move |conn| {
            let (created, config) = match node_config(conn, &owner, &node)? {
                Some(config) => (false, config),
                None => {
                    if !account_exists(conn, &owner)? {
                        return Err(StoreError::NoSuchAccount);
                    }
                    if node_count(conn, &owner)? >= u64::from(max_nodes) {
                        return Ok(Published::TooManyNodes);
                    }
                    insert_node(conn, &owner, &node, &create)?;
                    (true, create.clone())
                }
            };
            conn.prepare_cached("DELETE FROM pubsub_items WHERE owner = ?1 AND node = ?2 AND item_id = ?3")?
                .execute(params![owner, node, item.id])?;
            conn.prepare_cached(
                "INSERT INTO pubsub_items (owner, node, item_id, publisher, payload, published_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![owner, node, item.id, item.publisher, item.payload, item.published_ms])?;
            trim(conn, &owner, &node, config.kept_items())?;
            Ok(Published::Stored { created, config })
        })
        .await
    }

    pub(crate) async fn pubsub_retract(&self, owner: &str, node: &str, id: &str) -> Result<bool, StoreError> {
        let (owner, node, id) = (owner.to_owned(), node.to_owned(), id.to_owned());
        self.write(move |conn| {
            let deleted = conn
                .prepare_cached("DELETE FROM pubsub_items WHERE owner = ?1 AND node = ?2 AND item_id = ?3")?
                .execute(params![owner, node, id])?;
            Ok(deleted > 0)
        })
        .await
    }

    pub(crate) async fn pubsub_purge(&self, owner: &str, node: &str) -> Result<bool, StoreError> {
        let (owner, node) = (owner.to_owned(), node.to_owned());
        self.write(move |conn| {
            if node_config(conn, &owner, &node)?.is_none() {
                return Ok(false);
            }
            conn.prepare_cached("DELETE FROM pubsub_items WHERE owner = ?1 AND node = ?2")?
                .execute(params![owner, node])?;
            Ok(true)
        })
        .await
    }

    pub(crate) async fn pubsub_items(
        &self,
        owner: &str,
        node: &str,
        query: &ItemsQuery,
    ) -> Result<ItemsPage, StoreError> {
        let (owner, node, q) = (owner.to_owned(), node.to_owned(), query.clone());
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let count: i64 = tx
                .prepare_cached("SELECT count(*) FROM pubsub_items WHERE owner = ?1 AND node = ?2")?
                .query_row(params![owner, node], |r| r.get(0))?;
            let count = u64::try_from(count).unwrap_or_default();
            let max = i64::try_from(q.max).unwrap_or(i64::MAX);
            if !q.ids.is_empty() {
                let mut statement = tx.prepare_cached(
                    "SELECT seq, item_id, publisher, payload, published_ms FROM pubsub_items
                     WHERE owner = ?1 AND node = ?2 AND item_id = ?3",
                )?;
                let mut found = Vec::new();
                for id in q.ids.iter().take(q.max) {
                    let row = statement
                        .query_row(params![owner, node, id], |row| {
                            let item = PubsubItem {
                                id: row.get(1)?,
                                publisher: row.get(2)?,
                                payload: row.get(3)?,
                                published_ms: row.get(4)?,
                            };
                            Ok((row.get::<_, i64>(0)?, item))
                        })
                        .optional()?;
                    found.extend(row);
                }
                found.sort_by_key(|(seq, _)| *seq);
                let items = found.into_iter().map(|(_, item)| item).collect();
                return Ok(ItemsPage { items, count, complete: true });
            }
            // Backward pages are read newest first and reversed; one extra row tells whether the page is the last.
            const FORWARD: &str =
                concat!(item_select!(), "WHERE owner = ?1 AND node = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4");
            const BACKWARD: &str =
                concat!(item_select!(), "WHERE owner = ?1 AND node = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4");
            let (sql, anchor, backward) = match (&q.after, &q.before) {
                (Some(after), _) => (FORWARD, item_seq(&tx, &owner, &node, after)?, false),
                (None, Some(Some(before))) => (BACKWARD, item_seq(&tx, &owner, &node, before)?, true),
                (None, Some(None)) => (BACKWARD, i64::MAX, true),
                (None, None) => (FORWARD, i64::MIN, false),
            };
            let mut items = tx
                .prepare_cached(sql)?
                .query_map(params![owner, node, anchor, max.saturating_add(1)], item_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let complete = items.len() as i64 <= max;
            items.truncate(q.max);
            if backward {
                items.reverse();
            }
            Ok(ItemsPage { items, count, complete })
        })
        .await
    }

    pub(crate) async fn pubsub_affiliations(
        &self,
        owner: &str,
        node: &str,
    ) -> Result<Vec<(String, Affiliation)>, StoreError> {
        let (owner, node) = (owner.to_owned(), node.to_owned());
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT jid, affiliation FROM pubsub_affiliations WHERE owner = ?1 AND node = ?2 ORDER BY jid",
                )?
                .query_map(params![owner, node], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows.into_iter().filter_map(|(jid, a)| Some((jid, Affiliation::parse(&a)?))).collect())
        })
        .await
    }

    pub(crate) async fn pubsub_set_affiliations(
        &self,
        owner: &str,
        node: &str,
        changes: &[(String, Option<Affiliation>)],
    ) -> Result<bool, StoreError> {
        let (owner, node, changes) = (owner.to_owned(), node.to_owned(), changes.to_vec());
        self.write(move |conn| {
            if node_config(conn, &owner, &node)?.is_none() {
                return Ok(false);
            }
            let mut upsert = conn.prepare_cached(
                "INSERT INTO pubsub_affiliations (owner, node, jid, affiliation) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (owner, node, jid) DO UPDATE SET affiliation = excluded.affiliation",
            )?;
            let mut delete =
                conn.prepare_cached("DELETE FROM pubsub_affiliations WHERE owner = ?1 AND node = ?2 AND jid = ?3")?;
            for (jid, affiliation) in &changes {
                match affiliation {
                    Some(a) => upsert.execute(params![owner, node, jid, a.as_str()])?,
                    None => delete.execute(params![owner, node, jid])?,
                };
            }
            Ok(true)
        })
        .await
    }

    pub(crate) async fn vcard(&self, owner: &str) -> Result<Option<String>, StoreError> {
        let owner = owner.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT vcard FROM vcard_temp WHERE owner = ?1")?
                .query_row(params![owner], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    pub(crate) async fn vcard_set(&self, owner: &str, vcard: &str) -> Result<(), StoreError> {
        let (owner, vcard) = (owner.to_owned(), vcard.to_owned());
        self.write(move |conn| {
            if !account_exists(conn, &owner)? {
                return Err(StoreError::NoSuchAccount);
            }
            conn.prepare_cached(
                "INSERT INTO vcard_temp (owner, vcard) VALUES (?1, ?2)
                 ON CONFLICT (owner) DO UPDATE SET vcard = excluded.vcard",
            )?
            .execute(params![owner, vcard])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn private_xml(&self, owner: &str, namespace: &str) -> Result<Option<String>, StoreError> {
        let (owner, namespace) = (owner.to_owned(), namespace.to_owned());
        self.read(move |conn| {
            Ok(conn
                .prepare_cached("SELECT xml FROM pubsub_private_xml WHERE owner = ?1 AND namespace = ?2")?
                .query_row(params![owner, namespace], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    pub(crate) async fn private_xml_set(
        &self,
        owner: &str,
        namespace: &str,
        xml: Option<&str>,
        max_total_bytes: u64,
    ) -> Result<bool, StoreError> {
        let (owner, namespace, xml) = (owner.to_owned(), namespace.to_owned(), xml.map(str::to_owned));
        self.write(move |conn| {
            let Some(xml) = &xml else {
                conn.prepare_cached("DELETE FROM pubsub_private_xml WHERE owner = ?1 AND namespace = ?2")?
                    .execute(params![owner, namespace])?;
                return Ok(true);
            };
            if !account_exists(conn, &owner)? {
                return Err(StoreError::NoSuchAccount);
            }
            let others: i64 = conn
                .prepare_cached(
                    "SELECT coalesce(sum(length(CAST(xml AS BLOB))), 0) FROM pubsub_private_xml
                     WHERE owner = ?1 AND namespace != ?2",
                )?
                .query_row(params![owner, namespace], |r| r.get(0))?;
            if u64::try_from(others).unwrap_or_default() + xml.len() as u64 > max_total_bytes {
                return Ok(false);
            }
            conn.prepare_cached(
                "INSERT INTO pubsub_private_xml (owner, namespace, xml) VALUES (?1, ?2, ?3)
                 ON CONFLICT (owner, namespace) DO UPDATE SET xml = excluded.xml",
            )?
            .execute(params![owner, namespace, xml])?;
            Ok(true)
        })
        .await
    }
}
