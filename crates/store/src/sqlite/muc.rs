//! SQL for XEP-0045 rooms: persistent rooms, affiliations, room archives.

/// Migration 4 (see `migrations.rs`).
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE muc_rooms (
        room   TEXT NOT NULL PRIMARY KEY,
        config TEXT NOT NULL
    ) STRICT, WITHOUT ROWID;
"#;
