//! What room changes write to the store, and loading persistent rooms at start. Temporary rooms write nothing.
//!
//! A persistent room's configuration is stored as its `muc#roomconfig` submit form and its subject as the subject
//! `<message/>`: the same parsers read them back.

use drupe_proto::error::StanzaError;
use drupe_proto::ns;
use drupe_proto::xml::Element;
use drupe_store::{ArchiveQuery, RoomMessage};

use super::config::RoomConfig;
use super::roles::Affiliation;
use super::room::Room;
use crate::context::Context;
use crate::modules::store_failure;

/// One store write a room change needs.
pub enum Write {
    /// Create or update the room's row (configuration and subject).
    Room {
        name: String,
        version: i64,
        config: String,
        subject: Option<String>,
    },
    Affiliation {
        room: String,
        jid: String,
        affiliation: Option<&'static str>,
    },
    Remove(String),
    Archive(String, RoomMessage),
}

/// The room's row as it is now, with a new version (taken under the rooms' lock, so versions follow changes).
pub fn snapshot(room: &mut Room) -> Write {
    Write::Room {
        version: room.next_version(),
        name: room.name.clone(),
        config: room.config.to_form("submit", usize::MAX).to_xml(),
        subject: room.subject.as_ref().map(Element::to_xml),
    }
}

/// The writes after a configuration change: a room that became persistent is stored whole (with its
/// affiliations), one that stopped being persistent is removed.
pub fn configured(was_persistent: bool, room: &mut Room) -> Vec<Write> {
    match (was_persistent, room.config.persistent) {
        (_, true) => {
            let mut w = vec![snapshot(room)];
            if !was_persistent {
                w.extend(room.affiliations().iter().map(|(jid, a)| affiliation(room, jid, *a)));
            }
            w
        }
        (true, false) => vec![Write::Remove(room.name.clone())],
        (false, false) => Vec::new(),
    }
}

pub fn affiliation(room: &Room, jid: &str, a: Affiliation) -> Write {
    Write::Affiliation {
        room: room.name.clone(),
        jid: jid.to_owned(),
        affiliation: (a != Affiliation::None).then(|| a.as_str()),
    }
}

/// Commits the writes, in order (a room's row before its affiliations and archive rows).
pub async fn apply(ctx: &Context, writes: Vec<Write>) -> Result<(), StanzaError> {
    let store = &ctx.store;
    for w in writes {
        let result = match &w {
            Write::Room { name, version, config, subject } => {
                store.muc_room_put(name, *version, config, subject.as_deref()).await
            }
            Write::Affiliation { room, jid, affiliation } => store.muc_affiliation_set(room, jid, *affiliation).await,
            Write::Remove(room) => store.muc_room_remove(room).await.map(|_| ()),
            Write::Archive(room, m) => store.muc_archive_append(room, m).await,
        };
        result.map_err(store_failure)?;
    }
    Ok(())
}

/// Loads every persistent room at start, with the last `muc.history` archived messages as its history.
pub async fn load(ctx: &Context) -> Result<usize, drupe_store::StoreError> {
    let stored = ctx.store.muc_rooms().await?;
    let limits = &ctx.config.muc;
    let mut rooms = Vec::with_capacity(stored.len());
    for r in stored {
        let defaults = RoomConfig::new(limits.max_occupants, limits.archive);
        let config = match Element::parse(&r.config) {
            Some(form) => defaults
                .apply(&form, limits.max_occupants)
                .unwrap_or_else(|_| RoomConfig::new(limits.max_occupants, limits.archive)),
            None => defaults,
        };
        let mut room = Room::new(&r.room, &ctx.muc.domain, config);
        room.config.persistent = true;
        room.resume_version(r.version);
        room.subject = r.subject.as_deref().and_then(Element::parse);
        for (jid, a) in &r.affiliations {
            if let Some(a) = Affiliation::parse(a) {
                room.grant(jid, a);
            }
        }
        if limits.history > 0 {
            let query = ArchiveQuery { before_id: Some(None), max: limits.history, ..Default::default() };
            let page = ctx.store.muc_archive_query(&r.room, &query).await?;
            for entry in page.items {
                let Some(mut m) = Element::parse(&entry.stanza) else { continue };
                if m.child("body", ns::CLIENT).is_none() {
                    continue;
                }
                m.push(drupe_proto::delay::delay(&room.jid, entry.timestamp_ms));
                room.history.push_back((entry.timestamp_ms, m));
            }
        }
        // Archive positions continue after the newest stored one even if the clock went back.
        let last = ArchiveQuery { before_id: Some(None), max: 1, ..Default::default() };
        if let Some(newest) = ctx.store.muc_archive_query(&r.room, &last).await?.items.first() {
            if let Some(m) = ctx.store.muc_archive_get(&r.room, &newest.stanza_id).await? {
                room.resume_seq(m.seq);
            }
        }
        rooms.push(room);
    }
    let n = rooms.len();
    ctx.muc.with_rooms(|map| {
        for room in rooms {
            map.insert(room.name.clone(), room);
        }
    });
    Ok(n)
}
