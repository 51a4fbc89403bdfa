//! SQLite SQL for accounts: SCRAM credentials per hash function (RFC 5802 §3), never a password.

use drupe_proto::sasl::{Credentials, ScramKeys};
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::SqliteStore;
use crate::StoreError;

impl SqliteStore {
    pub(crate) async fn account_create(&self, username: &str, credentials: &Credentials) -> Result<(), StoreError> {
        let username = username.to_owned();
        let c = credentials.clone();
        self.write(move |conn| {
            let inserted = conn
                .prepare_cached(
                    "INSERT INTO accounts (username,
                        sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key,
                        sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                     ON CONFLICT (username) DO NOTHING",
                )?
                .execute(params![
                    username,
                    c.sha1.salt,
                    c.sha1.iterations,
                    c.sha1.stored_key,
                    c.sha1.server_key,
                    c.sha256.salt,
                    c.sha256.iterations,
                    c.sha256.stored_key,
                    c.sha256.server_key,
                ])?;
            match inserted {
                0 => Err(StoreError::AlreadyExists),
                _ => Ok(()),
            }
        })
        .await
    }

    pub(crate) async fn account_remove(&self, username: &str) -> Result<bool, StoreError> {
        let username = username.to_owned();
        self.write(move |conn| {
            // ON DELETE CASCADE removes the roster (items, groups, version) and the
            // offline messages in the same statement.
            let removed =
                conn.prepare_cached("DELETE FROM accounts WHERE username = ?1")?.execute(params![username])?;
            Ok(removed > 0)
        })
        .await
    }

    pub(crate) async fn account_set_credentials(
        &self,
        username: &str,
        credentials: &Credentials,
    ) -> Result<bool, StoreError> {
        let username = username.to_owned();
        let c = credentials.clone();
        self.write(move |conn| {
            let updated = conn
                .prepare_cached(
                    "UPDATE accounts SET
                        sha1_salt = ?2, sha1_iterations = ?3,
                        sha1_stored_key = ?4, sha1_server_key = ?5,
                        sha256_salt = ?6, sha256_iterations = ?7,
                        sha256_stored_key = ?8, sha256_server_key = ?9
                     WHERE username = ?1",
                )?
                .execute(params![
                    username,
                    c.sha1.salt,
                    c.sha1.iterations,
                    c.sha1.stored_key,
                    c.sha1.server_key,
                    c.sha256.salt,
                    c.sha256.iterations,
                    c.sha256.stored_key,
                    c.sha256.server_key,
                ])?;
            Ok(updated > 0)
        })
        .await
    }

    pub(crate) async fn account_credentials(&self, username: &str) -> Result<Option<Credentials>, StoreError> {
        let username = username.to_owned();
        self.read(move |conn| {
            let credentials = conn
                .prepare_cached(
                    "SELECT sha1_salt, sha1_iterations, sha1_stored_key, sha1_server_key,
                            sha256_salt, sha256_iterations, sha256_stored_key, sha256_server_key
                     FROM accounts WHERE username = ?1",
                )?
                .query_row(params![username], credentials_from_row)
                .optional()?;
            Ok(credentials)
        })
        .await
    }

    pub(crate) async fn account_exists(&self, username: &str) -> Result<bool, StoreError> {
        let username = username.to_owned();
        self.read(move |conn| account_exists(conn, &username)).await
    }

    pub(crate) async fn account_list(&self) -> Result<Vec<String>, StoreError> {
        self.read(|conn| {
            let mut statement = conn.prepare_cached("SELECT username FROM accounts ORDER BY username")?;
            let names = statement.query_map([], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()?;
            Ok(names)
        })
        .await
    }

    pub(crate) async fn account_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let count: i64 = conn.prepare_cached("SELECT count(*) FROM accounts")?.query_row([], |row| row.get(0))?;
            Ok(u64::try_from(count).unwrap_or_default())
        })
        .await
    }
}

/// Whether `username` has an account; used by other domains' writes to refuse orphans
/// with [`StoreError::NoSuchAccount`] instead of a foreign-key failure.
pub(super) fn account_exists(conn: &Connection, username: &str) -> Result<bool, StoreError> {
    let found = conn
        .prepare_cached("SELECT 1 FROM accounts WHERE username = ?1")?
        .query_row(params![username], |_| Ok(()))
        .optional()?;
    Ok(found.is_some())
}

fn credentials_from_row(row: &Row<'_>) -> rusqlite::Result<Credentials> {
    Ok(Credentials {
        sha1: ScramKeys {
            salt: row.get(0)?,
            iterations: row.get(1)?,
            stored_key: row.get(2)?,
            server_key: row.get(3)?,
        },
        sha256: ScramKeys {
            salt: row.get(4)?,
            iterations: row.get(5)?,
            stored_key: row.get(6)?,
            server_key: row.get(7)?,
        },
    })
}
