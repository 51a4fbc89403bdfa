//! The SQLite schema as an append-only list of migrations, tracked in `PRAGMA user_version`.
//!
//! Migration N (1-based) takes a database from `user_version = N-1` to `N`. Never edit a
//! migration that has shipped: append a new one. Each runs in its own `BEGIN IMMEDIATE`
//! transaction, so two processes opening the same file cannot both apply it.

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

/// The schema version this build writes; a database with a higher one is refused.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: accounts, roster (RFC 6121 §2), offline messages (RFC 6121 §8.5.2.2.1 / XEP-0160).
    r#"
    CREATE TABLE accounts (
        username          TEXT    NOT NULL PRIMARY KEY,
        sha1_salt         BLOB    NOT NULL,
        sha1_iterations   INTEGER NOT NULL,
        sha1_stored_key   BLOB    NOT NULL,
        sha1_server_key   BLOB    NOT NULL,
        sha256_salt       BLOB    NOT NULL,
        sha256_iterations INTEGER NOT NULL,
        sha256_stored_key BLOB    NOT NULL,
        sha256_server_key BLOB    NOT NULL
    ) STRICT;

    -- Roster versioning (RFC 6121 §2.6): one counter per owner, bumped by every change.
    CREATE TABLE roster_versions (
        owner   TEXT    NOT NULL PRIMARY KEY REFERENCES accounts(username) ON DELETE CASCADE,
        version INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE roster_items (
        owner        TEXT    NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
        contact      TEXT    NOT NULL,
        name         TEXT,
        subscription TEXT    NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
        ask_out      INTEGER NOT NULL CHECK (ask_out IN (0, 1)),
        pending_in   INTEGER NOT NULL CHECK (pending_in IN (0, 1)),
        approved     INTEGER NOT NULL CHECK (approved IN (0, 1)),
        PRIMARY KEY (owner, contact)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE roster_groups (
        owner    TEXT    NOT NULL,
        contact  TEXT    NOT NULL,
        name     TEXT    NOT NULL,
        position INTEGER NOT NULL,
        PRIMARY KEY (owner, contact, name),
        FOREIGN KEY (owner, contact) REFERENCES roster_items(owner, contact) ON DELETE CASCADE
    ) STRICT, WITHOUT ROWID;

    -- AUTOINCREMENT: ids are never reused, so a client's "delete through id" can
    -- never reach a message stored after it read the list.
    CREATE TABLE offline_messages (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        owner             TEXT    NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
        stanza            TEXT    NOT NULL,
        stored_at_unix_ms INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX offline_messages_by_owner ON offline_messages(owner, id);
    "#,
    // 2: message archive (XEP-0313) with full-text search (XEP-0431), archive preferences
    // (XEP-0441), blocking (XEP-0191).
    r#"
    -- `seq` (the rowid) is archive order. Rows are never updated: the FTS triggers below
    -- cover INSERT and DELETE only. Every index ends with the rowid, so the plain
    -- `(owner)` index is (owner, seq): pages in archive order without a sort.
    CREATE TABLE archive (
        seq          INTEGER PRIMARY KEY,
        owner        TEXT    NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
        stanza_id    TEXT    NOT NULL,
        with_jid     TEXT    NOT NULL,
        outgoing     INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
        timestamp_ms INTEGER NOT NULL,
        origin_id    TEXT,
        body         TEXT,
        stanza       TEXT    NOT NULL
    ) STRICT;
    CREATE INDEX archive_by_owner ON archive(owner);
    CREATE INDEX archive_by_with ON archive(owner, with_jid);
    CREATE UNIQUE INDEX archive_by_stanza_id ON archive(owner, stanza_id);
    CREATE INDEX archive_by_time ON archive(owner, timestamp_ms);
    CREATE INDEX archive_by_origin_id ON archive(owner, origin_id) WHERE origin_id IS NOT NULL;

    -- External content: the body is stored once, in `archive`; the index holds only tokens.
    CREATE VIRTUAL TABLE archive_fts USING fts5(body, content='archive', content_rowid='seq');
    CREATE TRIGGER archive_fts_insert AFTER INSERT ON archive WHEN new.body IS NOT NULL BEGIN
        INSERT INTO archive_fts (rowid, body) VALUES (new.seq, new.body);
    END;
    -- Also fired by the ON DELETE CASCADE of an account.
    CREATE TRIGGER archive_fts_delete AFTER DELETE ON archive WHEN old.body IS NOT NULL BEGIN
        INSERT INTO archive_fts (archive_fts, rowid, body) VALUES ('delete', old.seq, old.body);
    END;

    CREATE TABLE archive_prefs (
        owner        TEXT NOT NULL PRIMARY KEY REFERENCES accounts(username) ON DELETE CASCADE,
        default_mode TEXT NOT NULL CHECK (default_mode IN ('always', 'never', 'roster'))
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE archive_prefs_jids (
        owner TEXT NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
        list  TEXT NOT NULL CHECK (list IN ('always', 'never')),
        jid   TEXT NOT NULL,
        PRIMARY KEY (owner, list, jid)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE blocklist (
        owner TEXT NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
        jid   TEXT NOT NULL,
        PRIMARY KEY (owner, jid)
    ) STRICT, WITHOUT ROWID;
    "#,
    // 3: XEP-0484 FAST tokens. Only a random nonce is kept: the token itself is derived from it with a key that
    // lives outside the database, so the database alone yields no usable token.
    r#"
    CREATE TABLE fast_tokens (
        owner      TEXT NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
        user_agent TEXT NOT NULL,
        mechanism  TEXT NOT NULL,
        nonce      BLOB NOT NULL,
        expires_ms INTEGER NOT NULL,
        PRIMARY KEY (owner, user_agent)
    ) STRICT, WITHOUT ROWID;
    "#,
    // 4: XEP-0045 persistent rooms, their configuration and affiliations, and room archives.
    super::muc::MIGRATION,
    // 5: XEP-0060/0163 PubSub nodes and items (PEP), and XEP-0054 vcard-temp.
    super::pubsub::MIGRATION,
    // 6: XEP-0363 HTTP File Upload slots and files (per-account accounting).
    super::upload::MIGRATION,
    // 7: the full-text index (XEP-0431) is kept in batches, not by a trigger per row.
    super::archive::FTS_BATCHED_MIGRATION,
    // 8: the archive finds times and stanza-ids through `seq` order (archive_order.rs).
    super::archive_order::MIGRATION,
    // 9: the per-owner archive indexes are tables kept in batches (archive_index.rs).
    super::archive_index::MIGRATION,
    // 10: rows wait for the full-text index past a watermark, not in a list (archive.rs).
    super::archive::FTS_WATERMARK_MIGRATION,
];

/// Brings the database up to [`SCHEMA_VERSION`], one transaction per migration.
/// Returns the version found before migrating.
pub(crate) fn migrate(conn: &mut Connection) -> Result<i64, StoreError> {
    let mut found = None;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
        found.get_or_insert(version);
        // A negative version is no schema of ours either: refuse it rather than guess.
        if !(0..=SCHEMA_VERSION).contains(&version) {
            return Err(StoreError::NewerSchema { found: version, known: SCHEMA_VERSION });
        }
        let Some(script) = MIGRATIONS.get(version as usize) else {
            // version == SCHEMA_VERSION: up to date.
            return Ok(found.unwrap_or(version));
        };
        tx.execute_batch(script)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        tracing::info!(from = version, to = version + 1, "applied store migration");
    }
}
