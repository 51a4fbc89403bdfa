//! SQL for XEP-0045 rooms: persistent rooms (configuration and subject as the server's text), affiliations, and
//! room archives (XEP-0313 on the room JID) with XEP-0425 tombstones.
//!
//! Room archives live in their own table, keyed by room, so they can never mix with account archives. Archive
//! order is the room's own `seq` (assigned under the room's lock, so it is the order occupants saw), and every
//! query is a range of the `(room, seq)` primary key.

use std::rc::Rc;

use rusqlite::types::Value;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::SqliteStore;
use crate::muc::{MucRoom, RoomMessage};
use crate::{ArchiveEntry, ArchivePage, ArchiveQuery, StoreError};

/// Migration 4 (see `migrations.rs`).
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE muc_rooms (
        room    TEXT    NOT NULL PRIMARY KEY,
        version INTEGER NOT NULL,
        config  TEXT    NOT NULL,
        subject TEXT
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE muc_affiliations (
        room        TEXT NOT NULL REFERENCES muc_rooms(room) ON DELETE CASCADE,
        jid         TEXT NOT NULL,
        affiliation TEXT NOT NULL CHECK (affiliation IN ('owner', 'admin', 'member', 'outcast')),
        PRIMARY KEY (room, jid)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE muc_archive (
        room         TEXT    NOT NULL REFERENCES muc_rooms(room) ON DELETE CASCADE,
        seq          INTEGER NOT NULL,
        stanza_id    TEXT    NOT NULL,
        nick         TEXT    NOT NULL,
        timestamp_ms INTEGER NOT NULL,
        origin_id    TEXT,
        body         TEXT,
        stanza       TEXT    NOT NULL,
        PRIMARY KEY (room, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE UNIQUE INDEX muc_archive_by_stanza_id ON muc_archive(room, stanza_id);
"#;

const COLUMNS: &str = "seq, stanza_id, nick, timestamp_ms, origin_id, body, stanza";

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<RoomMessage> {
    Ok(RoomMessage {
        seq: row.get(0)?,
        stanza_id: row.get(1)?,
        nick: row.get(2)?,
        timestamp_ms: row.get(3)?,
        origin_id: row.get(4)?,
        body: row.get(5)?,
        stanza: row.get(6)?,
    })
}

fn room_exists(conn: &Connection, room: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM muc_rooms WHERE room = ?1")?
        .query_row(params![room], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The filters of a room archive query, every one always bound (defaults match everything).
const QUERY_WHERE: &str = " FROM muc_archive
    WHERE room = :room AND (:with IS NULL OR nick = :with)
      AND timestamp_ms BETWEEN :start AND :end AND seq > :after AND seq < :before
      AND (:all_ids OR stanza_id IN rarray(:ids))
      AND (:text IS NULL OR instr(lower(body), lower(:text)) > 0)";

impl SqliteStore {
    pub(crate) async fn muc_rooms(&self) -> Result<Vec<MucRoom>, StoreError> {
        self.read(|conn| {
            let mut rooms: Vec<MucRoom> = conn
                .prepare_cached("SELECT room, config, subject, version FROM muc_rooms ORDER BY room")?
                .query_map([], |row| {
                    Ok(MucRoom {
                        room: row.get(0)?,
                        config: row.get(1)?,
                        subject: row.get(2)?,
                        version: row.get(3)?,
                        affiliations: vec![],
                    })
                })?
                .collect::<Result<_, _>>()?;
            let mut affiliations =
                conn.prepare_cached("SELECT room, jid, affiliation FROM muc_affiliations ORDER BY room, jid")?;
            let mut rows = affiliations.query([])?;
            while let Some(row) = rows.next()? {
                let room: String = row.get(0)?;
                if let Ok(i) = rooms.binary_search_by(|r| r.room.as_str().cmp(room.as_str())) {
                    rooms[i].affiliations.push((row.get(1)?, row.get(2)?));
                }
            }
            Ok(rooms)
        })
        .await
    }

    pub(crate) async fn muc_room_put(
        &self,
        room: &str,
        version: i64,
        config: &str,
        subject: Option<&str>,
    ) -> Result<(), StoreError> {
        let (room, config, subject) = (room.to_owned(), config.to_owned(), subject.map(str::to_owned));
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO muc_rooms (room, version, config, subject) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (room) DO UPDATE SET version = excluded.version, config = excluded.config,
                     subject = excluded.subject
                 WHERE excluded.version > muc_rooms.version",
            )?
            .execute(params![room, version, config, subject])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn muc_room_remove(&self, room: &str) -> Result<bool, StoreError> {
        let room = room.to_owned();
        self.write(move |conn| {
            let removed = conn.prepare_cached("DELETE FROM muc_rooms WHERE room = ?1")?.execute(params![room])?;
            Ok(removed > 0)
        })
        .await
    }

    pub(crate) async fn muc_affiliation_set(
        &self,
        room: &str,
        jid: &str,
        affiliation: Option<&str>,
    ) -> Result<(), StoreError> {
        let (room, jid, affiliation) = (room.to_owned(), jid.to_owned(), affiliation.map(str::to_owned));
        self.write(move |conn| {
            if !room_exists(conn, &room)? {
                return Err(StoreError::NotFound);
            }
            match &affiliation {
                Some(a) => conn
                    .prepare_cached(
                        "INSERT INTO muc_affiliations (room, jid, affiliation) VALUES (?1, ?2, ?3)
                         ON CONFLICT (room, jid) DO UPDATE SET affiliation = excluded.affiliation",
                    )?
                    .execute(params![room, jid, a])?,
                None => conn
                    .prepare_cached("DELETE FROM muc_affiliations WHERE room = ?1 AND jid = ?2")?
                    .execute(params![room, jid])?,
            };
            Ok(())
        })
        .await
    }

    pub(crate) async fn muc_archive_append(&self, room: &str, m: &RoomMessage) -> Result<(), StoreError> {
        let room = room.to_owned();
        let m = m.clone();
        self.write(move |conn| {
            if !room_exists(conn, &room)? {
                return Err(StoreError::NotFound);
            }
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO muc_archive (room, seq, stanza_id, nick, timestamp_ms, origin_id, body, stanza)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                )?
                .execute(params![room, m.seq, m.stanza_id, m.nick, m.timestamp_ms, m.origin_id, m.body, m.stanza])?;
            match inserted {
                0 => Err(StoreError::AlreadyExists),
                _ => Ok(()),
            }
        })
        .await
    }

    pub(crate) async fn muc_archive_query(&self, room: &str, query: &ArchiveQuery) -> Result<ArchivePage, StoreError> {
        let room = room.to_owned();
        let query = query.clone();
        self.read(move |conn| {
            let tx = conn.unchecked_transaction()?;
            let page = query_page(&tx, &room, &query)?;
            tx.finish()?;
            Ok(page)
        })
        .await
    }

    pub(crate) async fn muc_archive_get(&self, room: &str, stanza_id: &str) -> Result<Option<RoomMessage>, StoreError> {
        let (room, stanza_id) = (room.to_owned(), stanza_id.to_owned());
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM muc_archive WHERE room = ?1 AND stanza_id = ?2"))?
                .query_row(params![room, stanza_id], message_from_row)
                .optional()?)
        })
        .await
    }

    pub(crate) async fn muc_archive_moderate(
        &self,
        room: &str,
        stanza_id: &str,
        stanza: &str,
    ) -> Result<bool, StoreError> {
        let (room, stanza_id, stanza) = (room.to_owned(), stanza_id.to_owned(), stanza.to_owned());
        self.write(move |conn| {
            let updated = conn
                .prepare_cached("UPDATE muc_archive SET body = NULL, stanza = ?3 WHERE room = ?1 AND stanza_id = ?2")?
                .execute(params![room, stanza_id, stanza])?;
            Ok(updated > 0)
        })
        .await
    }

    pub(crate) async fn muc_archive_count(&self, room: &str) -> Result<u64, StoreError> {
        let room = room.to_owned();
        self.read(move |conn| {
            let count: i64 = conn
                .prepare_cached("SELECT count(*) FROM muc_archive WHERE room = ?1")?
                .query_row(params![room], |row| row.get(0))?;
            Ok(u64::try_from(count).unwrap_or_default())
        })
        .await
    }
}

fn anchor(conn: &Connection, room: &str, stanza_id: &str) -> Result<i64, StoreError> {
    conn.prepare_cached("SELECT seq FROM muc_archive WHERE room = ?1 AND stanza_id = ?2")?
        .query_row(params![room, stanza_id], |row| row.get(0))
        .optional()?
        .ok_or(StoreError::NotFound)
}

fn query_page(conn: &Connection, room: &str, query: &ArchiveQuery) -> Result<ArchivePage, StoreError> {
    let after = match &query.after_id {
        Some(id) => anchor(conn, room, id)?,
        None => i64::MIN,
    };
    let before = match &query.before_id {
        Some(Some(id)) => anchor(conn, room, id)?,
        Some(None) | None => i64::MAX,
    };
    let ids: rusqlite::vtab::array::Array = Rc::new(query.ids.iter().cloned().map(Value::from).collect());
    let text = query.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let limit = i64::try_from(query.max).unwrap_or(i64::MAX).saturating_add(1);
    let order = if query.is_backward() { "DESC" } else { "ASC" };
    let sql = format!("SELECT {COLUMNS}{QUERY_WHERE} ORDER BY seq {order} LIMIT :limit");
    let mut statement = conn.prepare_cached(&sql)?;
    let mut items: Vec<ArchiveEntry> = statement
        .query_map(
            rusqlite::named_params! {
                ":room": room, ":with": query.with, ":start": query.start_ms.unwrap_or(i64::MIN),
                ":end": query.end_ms.unwrap_or(i64::MAX), ":after": after, ":before": before,
                ":all_ids": query.ids.is_empty(), ":ids": ids, ":text": text, ":limit": limit,
            },
            message_from_row,
        )?
        .map(|m| m.map(entry))
        .collect::<Result<_, _>>()?;
    let complete = items.len() <= query.max;
    items.truncate(query.max);
    if query.is_backward() {
        items.reverse();
    }
    let count: i64 = conn.prepare_cached(&format!("SELECT count(*){QUERY_WHERE}"))?.query_row(
        rusqlite::named_params! {
            ":room": room, ":with": query.with, ":start": query.start_ms.unwrap_or(i64::MIN),
            ":end": query.end_ms.unwrap_or(i64::MAX), ":after": i64::MIN, ":before": i64::MAX,
            ":all_ids": query.ids.is_empty(), ":ids": ids, ":text": text,
        },
        |row| row.get(0),
    )?;
    Ok(ArchivePage { items, complete, count: Some(u64::try_from(count).unwrap_or_default()) })
}

fn entry(m: RoomMessage) -> ArchiveEntry {
    ArchiveEntry {
        stanza_id: m.stanza_id,
        with: m.nick,
        outgoing: false,
        timestamp_ms: m.timestamp_ms,
        origin_id: m.origin_id,
        body: m.body,
        stanza: m.stanza,
    }
}
