//! Store methods for XEP-0045 rooms (SQL in `sqlite/muc.rs`): persistent rooms with their configuration, subject
//! and affiliations, and room archives (XEP-0313 on the room JID).
//!
//! The store keeps a room's configuration and subject as the opaque text the server gives it (a serialised data
//! form and a serialised `<message/>`): it knows nothing of their meaning.

use crate::{ArchivePage, ArchiveQuery, Store, StoreError};

/// A persistent room as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MucRoom {
    /// The room's localpart.
    pub room: String,
    /// The room configuration, serialised by the server.
    pub config: String,
    /// The last subject change, a serialised `<message/>`.
    pub subject: Option<String>,
    /// Grows with every change: a write carrying an older version than the stored one is ignored, so writes that
    /// reach the store out of order cannot bring back an older configuration.
    pub version: i64,
    /// (bare JID, affiliation) pairs, sorted by JID; `none` is never stored.
    pub affiliations: Vec<(String, String)>,
}

/// One message of a room archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomMessage {
    /// Archive order, assigned by the room (strictly increasing per room).
    pub seq: i64,
    /// The XEP-0359 stanza-id the room gave it; unique per room. RSM anchors are these.
    pub stanza_id: String,
    /// The sender's nickname at the time.
    pub nick: String,
    pub timestamp_ms: i64,
    pub origin_id: Option<String>,
    /// The body, for search; `None` once moderated (XEP-0425).
    pub body: Option<String>,
    /// The serialised `<message/>` (a tombstone once moderated).
    pub stanza: String,
}

impl Store {
    /// Every persistent room with its affiliations, sorted by name.
    pub async fn muc_rooms(&self) -> Result<Vec<MucRoom>, StoreError> {
        match self {
            Store::Sqlite(s) => s.muc_rooms().await,
        }
    }

    /// Creates or updates a persistent room's configuration and subject, unless the stored row has a newer
    /// `version`; its affiliations and archive stay.
    pub async fn muc_room_put(
        &self,
        room: &str,
        version: i64,
        config: &str,
        subject: Option<&str>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.muc_room_put(room, version, config, subject).await,
        }
    }

    /// Removes a room with its affiliations and archive; `false` if it was not stored.
    pub async fn muc_room_remove(&self, room: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.muc_room_remove(room).await,
        }
    }

    /// Sets (or, with `None`, removes) a JID's affiliation with a stored room. [`StoreError::NotFound`] if the
    /// room is not stored.
    pub async fn muc_affiliation_set(
        &self,
        room: &str,
        jid: &str,
        affiliation: Option<&str>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.muc_affiliation_set(room, jid, affiliation).await,
        }
    }

    /// Appends a message to a stored room's archive. [`StoreError::AlreadyExists`] if its stanza-id or seq is
    /// taken; [`StoreError::NotFound`] if the room is not stored.
    pub async fn muc_archive_append(&self, room: &str, message: &RoomMessage) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.muc_archive_append(room, message).await,
        }
    }

    /// One page of a room archive; entries carry the nickname as `with`. [`StoreError::NotFound`] if an RSM
    /// anchor is not in the archive.
    pub async fn muc_archive_query(&self, room: &str, query: &ArchiveQuery) -> Result<ArchivePage, StoreError> {
        match self {
            Store::Sqlite(s) => s.muc_archive_query(room, query).await,
        }
    }

    /// The archived message with this stanza-id.
    pub async fn muc_archive_get(&self, room: &str, stanza_id: &str) -> Result<Option<RoomMessage>, StoreError> {
        match self {
            Store::Sqlite(s) => s.muc_archive_get(room, stanza_id).await,
        }
    }

    /// Replaces an archived message by a tombstone (XEP-0425): the body is gone, `stanza` is kept in its place.
    /// `false` if there is no such message.
    pub async fn muc_archive_moderate(&self, room: &str, stanza_id: &str, stanza: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(s) => s.muc_archive_moderate(room, stanza_id, stanza).await,
        }
    }

    pub async fn muc_archive_count(&self, room: &str) -> Result<u64, StoreError> {
        match self {
            Store::Sqlite(s) => s.muc_archive_count(room).await,
        }
    }
}
