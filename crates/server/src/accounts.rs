//! Account administration shared by the CLI and the server: usernames are normalized like JID localparts and
//! passwords become SCRAM keys (never stored as such).

use drupe_proto::sasl::Credentials;
use drupe_store::{Store, StoreError};

use crate::c2s::normalize_username;
use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("`{0}` is not a valid username")]
    InvalidUsername(String),
    #[error("password refused: {0}")]
    InvalidPassword(String),
    #[error("account {0} already exists")]
    Exists(String),
    #[error("no account {0}")]
    NotFound(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

pub fn username(config: &Config, name: &str) -> Result<String, AccountError> {
    normalize_username(name, &config.domain).ok_or_else(|| AccountError::InvalidUsername(name.to_owned()))
}

async fn credentials(config: &Config, password: String) -> Result<Credentials, AccountError> {
    let iterations = config.auth.scram_iterations;
    // PBKDF2 is CPU work: keep it off the async workers.
    tokio::task::spawn_blocking(move || Credentials::derive(&password, iterations))
        .await
        .map_err(|e| AccountError::InvalidPassword(e.to_string()))?
        .map_err(|e| AccountError::InvalidPassword(format!("{e:?}")))
}

pub async fn add(store: &Store, config: &Config, name: &str, password: String) -> Result<String, AccountError> {
    let user = username(config, name)?;
    let creds = credentials(config, password).await?;
    match store.account_create(&user, &creds).await {
        Ok(()) => Ok(user),
        Err(StoreError::AlreadyExists) => Err(AccountError::Exists(user)),
        Err(e) => Err(e.into()),
    }
}

pub async fn set_password(store: &Store, config: &Config, name: &str, password: String) -> Result<(), AccountError> {
    let user = username(config, name)?;
    let creds = credentials(config, password).await?;
    if store.account_set_credentials(&user, &creds).await? {
        Ok(())
    } else {
        Err(AccountError::NotFound(user))
    }
}

/// Revokes every FAST token of the account (all its devices must log in with the password again).
pub async fn revoke_tokens(store: &Store, config: &Config, name: &str) -> Result<u64, AccountError> {
    let user = username(config, name)?;
    if !store.account_exists(&user).await? {
        return Err(AccountError::NotFound(user));
    }
    Ok(store.fast_tokens_revoke(&user, None).await?)
}

pub async fn remove(store: &Store, config: &Config, name: &str) -> Result<(), AccountError> {
    let user = username(config, name)?;
    if store.account_remove(&user).await? {
        Ok(())
    } else {
        Err(AccountError::NotFound(user))
    }
}
