//! SQLite SQL for XEP-0484 FAST tokens: one token per (account, user agent), stored as the nonce it is derived from.

use rusqlite::{params, OptionalExtension};

use super::accounts::account_exists;
use super::SqliteStore;
use crate::{FastToken, StoreError};

impl SqliteStore {
    pub(crate) async fn fast_token_put(&self, owner: &str, token: &FastToken) -> Result<(), StoreError> {
        let owner = owner.to_owned();
        let token = token.clone();
        self.write(move |conn| {
            if !account_exists(conn, &owner)? {
                return Err(StoreError::NoSuchAccount);
            }
            conn.prepare_cached(
                "INSERT INTO fast_tokens (owner, user_agent, mechanism, nonce, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (owner, user_agent) DO UPDATE SET mechanism = excluded.mechanism, \
                 nonce = excluded.nonce, expires_ms = excluded.expires_ms",
            )?
            .execute(params![owner, token.user_agent, token.mechanism, token.nonce, token.expires_ms])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn fast_token(&self, owner: &str, user_agent: &str) -> Result<Option<FastToken>, StoreError> {
        let owner = owner.to_owned();
        let user_agent = user_agent.to_owned();
        self.read(move |conn| {
            let token = conn
                .prepare_cached(
                    "SELECT user_agent, mechanism, nonce, expires_ms FROM fast_tokens \
                     WHERE owner = ?1 AND user_agent = ?2",
                )?
                .query_row(params![owner, user_agent], |row| {
                    Ok(FastToken {
                        user_agent: row.get(0)?,
                        mechanism: row.get(1)?,
                        nonce: row.get(2)?,
                        expires_ms: row.get(3)?,
                    })
                })
                .optional()?;
            Ok(token)
        })
        .await
    }

    pub(crate) async fn fast_tokens_revoke(&self, owner: &str, user_agent: Option<&str>) -> Result<u64, StoreError> {
        let owner = owner.to_owned();
        let user_agent = user_agent.map(str::to_owned);
        self.write(move |conn| {
            let n = match &user_agent {
                Some(ua) => conn
                    .prepare_cached("DELETE FROM fast_tokens WHERE owner = ?1 AND user_agent = ?2")?
                    .execute(params![owner, ua])?,
                None => conn.prepare_cached("DELETE FROM fast_tokens WHERE owner = ?1")?.execute(params![owner])?,
            };
            Ok(n as u64)
        })
        .await
    }
}
