//! SQL for XEP-0060/0163 PubSub (PEP) nodes and items, and XEP-0054 vcard-temp.

/// Migration 5 (see `migrations.rs`).
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE pubsub_nodes (
        owner  TEXT NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
        node   TEXT NOT NULL,
        config TEXT NOT NULL,
        PRIMARY KEY (owner, node)
    ) STRICT, WITHOUT ROWID;
"#;
