//! drupe's storage: the only place SQL exists. `Store` is an enum of backends with one
//! exhaustive `match` per domain method, so no method ships for one backend only.
//!
//! Durability contract: an awaited write returns only after its transaction is committed
//! with `synchronous=FULL`, so it survives `kill -9` and power loss. Writes are group
//! committed (see `sqlite::writer`); reads never wait for writes. The store knows nothing
//! of sessions, stanzas' meaning or JIDs' syntax: usernames arrive normalised, contacts as
//! bare-JID strings, stanzas as serialised XML.

mod archive;
mod error;
mod muc;
mod pubsub;
pub mod sqlite;
mod upload;

use std::path::Path;

use drupe_proto::sasl::Credentials;

pub use archive::{ArchiveDefault, ArchiveEntry, ArchivePage, ArchivePrefs, ArchiveQuery};
pub use error::StoreError;
pub use muc::{MucRoom, RoomMessage};
pub use pubsub::{
    AccessModel, Affiliation, ItemsPage, ItemsQuery, NodeConfig, NodeCreated, Published, PubsubItem, SendLast,
};
pub use sqlite::{stanza_id_millis, SqliteOptions, SqliteStore, SCHEMA_VERSION as SQLITE_SCHEMA_VERSION};
pub use upload::{SlotGrant, SlotRequest, UploadFile};

/// The subscription state of a roster item (RFC 6121 §2.1.2.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subscription {
    None,
    To,
    From,
    Both,
}

impl Subscription {
    /// The value of the `subscription` attribute (RFC 6121 §2.1.2.5).
    pub fn as_str(self) -> &'static str {
        match self {
            Subscription::None => "none",
            Subscription::To => "to",
            Subscription::From => "from",
            Subscription::Both => "both",
        }
    }

    /// Parses an attribute value; `None` for anything but the four states.
    pub fn parse(value: &str) -> Option<Subscription> {
        match value {
            "none" => Some(Subscription::None),
            "to" => Some(Subscription::To),
            "from" => Some(Subscription::From),
            "both" => Some(Subscription::Both),
            _ => None,
        }
    }
}

/// One contact in a user's roster (RFC 6121 §2.1.2), with the server-side subscription
/// flags of RFC 6121 §3 and Appendix A.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterItem {
    /// The contact's bare JID.
    pub jid: String,
    pub name: Option<String>,
    pub subscription: Subscription,
    /// Pending out: the owner sent `subscribe` and awaits an answer (`ask='subscribe'`).
    pub ask_out: bool,
    /// Pending in: the contact asked to subscribe to the owner's presence.
    pub pending_in: bool,
    /// The owner pre-approved the contact's subscription (RFC 6121 §3.4).
    pub approved: bool,
    /// Group names, in the order given, without duplicates.
    pub groups: Vec<String>,
}

/// A whole roster and its version (RFC 6121 §2.6); the version is 0 for a roster never changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    pub version: u64,
    /// Sorted by contact JID.
    pub items: Vec<RosterItem>,
}

/// The outcome of storing a message for an offline user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfflinePush {
    /// Stored under this id (ids only grow, per store).
    Stored(i64),
    /// The owner already has `limit` messages stored; nothing was stored.
    Full,
}

/// A message kept for an offline user (RFC 6121 §8.5.2.2.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfflineMessage {
    pub id: i64,
    pub stanza: String,
    pub stored_at_unix_ms: i64,
}

/// A XEP-0484 FAST token as stored: the nonce the token is derived from (with a key kept outside the database),
/// never the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastToken {
    pub user_agent: String,
    pub mechanism: String,
    pub nonce: Vec<u8>,
    pub expires_ms: i64,
}

/// The store: one variant per backend. Cheap to clone (an `Arc` inside), `Send + Sync`.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
}

impl Store {
    /// Opens (creating parent directories and the file if needed) and migrates a SQLite
    /// store. Blocking: call at startup. Refuses a newer schema with
    /// [`StoreError::NewerSchema`].
    pub fn open_sqlite(path: &Path, options: SqliteOptions) -> Result<Store, StoreError> {
        SqliteStore::open(path, options).map(Store::Sqlite)
    }

    // --- lifecycle -----------------------------------------------------------------------

    /// Succeeds when the store can answer a query (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.ping().await,
        }
    }

    /// Waits until every write queued before this call is committed (or has failed).
    pub async fn flush(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.flush().await,
        }
    }

    /// Lets every queued write finish, then closes the store for all its clones: later
    /// calls fail with [`StoreError::Closed`]. Idempotent.
    pub async fn close(&self) {
        match self {
            Store::Sqlite(s) => s.close().await,
        }
    }

    /// Transactions committed since the store was opened (each holds a batch of writes).
    pub fn commit_count(&self) -> u64 {
        match self {
            Store::Sqlite(s) => s.commit_count(),
        }
    }

    /// Writes queued and not yet taken by the writer (a gauge for metrics).
    pub fn write_queue_len(&self) -> usize {
        match self {
            Store::Sqlite(s) => s.write_queue_len(),
        }
    }

    // --- accounts ------------------------------------------------------------------------

    /// Creates an account; [`StoreError::AlreadyExists`] if the username is taken.
    pub async fn account_create(&self, username: &str, credentials: &Credentials) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.account_create(username, credentials).await,
        }
    }

    /// Removes an account with everything it owns (roster, offline messages, archive,
    /// archive preferences, blocklist); `false` if there was none.
    pub async fn account_remove(&self, username: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.account_remove(username).await,
        }
    }

    /// Replaces an account's credentials; `false` if there is no such account.
    pub async fn account_set_credentials(&self, username: &str, credentials: &Credentials) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.account_set_credentials(username, credentials).await,
        }
    }

    pub async fn account_credentials(&self, username: &str) -> Result<Option<Credentials>, StoreError> {
        match self {
            Store::Sqlite(s) => s.account_credentials(username).await,
        }
    }

    pub async fn account_exists(&self, username: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.account_exists(username).await,
        }
    }

    /// Every username, sorted.
    pub async fn account_list(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Sqlite(s) => s.account_list().await,
        }
    }

    pub async fn account_count(&self) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.account_count().await,
        }
    }

    // --- roster (RFC 6121 §2) ------------------------------------------------------------

    /// The owner's roster, items sorted by contact; empty with version 0 if none.
    pub async fn roster(&self, owner: &str) -> Result<Roster, StoreError> {
        match self {
            Store::Sqlite(s) => s.roster(owner).await,
        }
    }

    /// The owner's roster version: 0 if the roster was never changed.
    pub async fn roster_version(&self, owner: &str) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.roster_version(owner).await,
        }
    }

    pub async fn roster_item(&self, owner: &str, contact: &str) -> Result<Option<RosterItem>, StoreError> {
        match self {
            Store::Sqlite(s) => s.roster_item(owner, contact).await,
        }
    }

    /// Inserts or replaces `item` (groups included) and returns the owner's new roster
    /// version. [`StoreError::NoSuchAccount`] if the owner has no account.
    pub async fn roster_put(&self, owner: &str, item: &RosterItem) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.roster_put(owner, item).await,
        }
    }

    /// Removes a contact; the owner's new roster version, or `None` if it was not there.
    pub async fn roster_remove(&self, owner: &str, contact: &str) -> Result<Option<u64>, StoreError> {
        match self {
            Store::Sqlite(s) => s.roster_remove(owner, contact).await,
        }
    }

    // --- offline messages (RFC 6121 §8.5.2.2.1) ------------------------------------------

    /// Stores a message for an offline user unless `limit` are already stored.
    /// [`StoreError::NoSuchAccount`] if the owner has no account.
    pub async fn offline_push(
        &self,
        owner: &str,
        stanza: &str,
        stored_at_unix_ms: i64,
        limit: u32,
    ) -> Result<OfflinePush, StoreError> {
        match self {
            Store::Sqlite(s) => s.offline_push(owner, stanza, stored_at_unix_ms, limit).await,
        }
    }

    /// The owner's stored messages, oldest first.
    pub async fn offline_list(&self, owner: &str) -> Result<Vec<OfflineMessage>, StoreError> {
        match self {
            Store::Sqlite(s) => s.offline_list(owner).await,
        }
    }

    /// Deletes the owner's messages with `id <= through` (those delivered); returns how many.
    pub async fn offline_delete_through(&self, owner: &str, through: i64) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.offline_delete_through(owner, through).await,
        }
    }

    pub async fn offline_count(&self, owner: &str) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.offline_count(owner).await,
        }
    }

    // --- message archive (XEP-0313, XEP-0431) ------------------------------------------

    /// Archives a message for `owner`; [`StoreError::NoSuchAccount`] if there is no such owner. Stanza-ids are
    /// the caller's to make unique (the store does not check), and are best made with the time of the entry in
    /// front (see [`stanza_id_millis`]): anchors are then found without an index of their own.
    pub async fn archive_append(&self, owner: &str, entry: &ArchiveEntry) -> Result<(), StoreError> {
        let mut outcomes = self.archive_append_all(vec![(owner.to_owned(), entry.clone())]).await?;
        outcomes.pop().unwrap_or(Err(StoreError::internal("archive append gave no outcome".into())))
    }

    /// Archives several entries (owner, entry) in one write, e.g. both copies of a message. The outcome of each
    /// row comes back in order, as for [`Store::archive_append`]; `Err` when the whole write failed.
    pub async fn archive_append_all(
        &self,
        rows: Vec<(String, ArchiveEntry)>,
    ) -> Result<Vec<Result<(), StoreError>>, StoreError> {
        match self {
            Store::Sqlite(s) => s.archive_append_all(rows).await,
        }
    }

    /// One page of the owner's archive (see [`ArchiveQuery`]), items in archive order.
    /// [`StoreError::NotFound`] if an RSM anchor is not in the owner's archive.
    pub async fn archive_query(&self, owner: &str, query: &ArchiveQuery) -> Result<ArchivePage, StoreError> {
        match self {
            Store::Sqlite(s) => s.archive_query(owner, query).await,
        }
    }

    /// The owner's archived message with this stanza-id.
    pub async fn archive_get(&self, owner: &str, stanza_id: &str) -> Result<Option<ArchiveEntry>, StoreError> {
        match self {
            Store::Sqlite(s) => s.archive_get(owner, stanza_id).await,
        }
    }

    /// The owner's latest archived message with this origin-id (XEP-0359), to find the
    /// target of a retraction (XEP-0424) or correction (XEP-0308).
    pub async fn archive_find_origin(&self, owner: &str, origin_id: &str) -> Result<Option<ArchiveEntry>, StoreError> {
        match self {
            Store::Sqlite(s) => s.archive_find_origin(owner, origin_id).await,
        }
    }

    /// Retention: deletes every owner's messages older than `cutoff_ms` in short
    /// transactions, so other writes interleave. Returns how many were deleted.
    pub async fn archive_purge_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.archive_purge_before(cutoff_ms).await,
        }
    }

    /// Adds archived messages not yet in the full-text index to it (searches do this first
    /// themselves; calling it every second keeps the backlog small). Returns how many.
    pub async fn archive_index_pending(&self) -> Result<usize, StoreError> {
        match self {
            Store::Sqlite(s) => s.archive_index_pending().await,
        }
    }

    /// Adds archived messages not yet in the per-owner indexes to them (queries read such rows from the archive's
    /// tail; calling it every second keeps that short). Returns how many.
    pub async fn archive_index_tail(&self) -> Result<usize, StoreError> {
        match self {
            Store::Sqlite(s) => s.archive_index_tail().await,
        }
    }

    pub async fn archive_count(&self, owner: &str) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.archive_count(owner).await,
        }
    }

    /// The owner's archiving preferences (XEP-0441); the defaults if never set.
    pub async fn archive_prefs(&self, owner: &str) -> Result<ArchivePrefs, StoreError> {
        match self {
            Store::Sqlite(s) => s.archive_prefs(owner).await,
        }
    }

    /// Replaces the owner's archiving preferences. [`StoreError::NoSuchAccount`] if there is
    /// no such owner.
    pub async fn archive_set_prefs(&self, owner: &str, prefs: &ArchivePrefs) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.archive_set_prefs(owner, prefs).await,
        }
    }

    // --- blocking (XEP-0191) -------------------------------------------------------------

    /// The owner's blocked JIDs (bare, full or domain, as given), sorted.
    pub async fn blocklist(&self, owner: &str) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Sqlite(s) => s.blocklist(owner).await,
        }
    }

    /// Stores the owner's FAST token for a user agent (XEP-0484), replacing the previous one (rotation).
    pub async fn fast_token_put(&self, owner: &str, token: &FastToken) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.fast_token_put(owner, token).await,
        }
    }

    /// The owner's FAST token for a user agent, expired or not.
    pub async fn fast_token(&self, owner: &str, user_agent: &str) -> Result<Option<FastToken>, StoreError> {
        match self {
            Store::Sqlite(s) => s.fast_token(owner, user_agent).await,
        }
    }

    /// Revokes one user agent's FAST token, or all of the owner's with `None`; returns how many were removed.
    pub async fn fast_tokens_revoke(&self, owner: &str, user_agent: Option<&str>) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.fast_tokens_revoke(owner, user_agent).await,
        }
    }

    /// Adds JIDs to the owner's blocklist; blocking a blocked JID changes nothing.
    /// [`StoreError::NoSuchAccount`] if there is no such owner.
    pub async fn block(&self, owner: &str, jids: &[String]) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.block(owner, jids).await,
        }
    }

    /// Removes JIDs from the owner's blocklist; an empty `jids` unblocks every JID
    /// (XEP-0191 §3.4). JIDs that were not blocked are ignored.
    pub async fn unblock(&self, owner: &str, jids: &[String]) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.unblock(owner, jids).await,
        }
    }
}
