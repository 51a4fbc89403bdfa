//! One XEP-0045 occupant: who it is, its nickname, role and presence, and that presence as the others see it,
//! serialized once per variant and kept until something it shows changes.
//!
//! A newcomer to a room of N occupants gets N presences (§7.2.3) and N newcomers get N²/2: building each one for
//! its viewer was most of a join's cost. What another occupant sees of occupant `o` (no status 110, no actor or
//! reason) depends only on `o`'s presence, nickname, role and affiliation, plus whether the viewer may see real
//! JIDs (§7.2.3, §7.2.4): two variants, each serialized on first use and then only addressed. The fields it
//! depends on are private here so that every change goes through a setter that drops the cache (and the room
//! drops it when an affiliation changes, [`super::room::Room::grant`]).

use std::cell::OnceCell;
use std::sync::Arc;

use drupe_proto::xml::Element;
use drupe_proto::FullJid;

use super::roles::Role;
use crate::router::{Prepared, SessionHandle};

pub struct Occupant {
    nick: String,
    pub jid: FullJid,
    /// `jid` as text: the `to` of everything the room sends this occupant.
    address: Box<str>,
    /// `jid`'s bare form, the key of its affiliation.
    bare: String,
    pub handle: SessionHandle,
    role: Role,
    /// The occupant's presence as sent to the room, without MUC payloads.
    presence: Element,
    /// XEP-0421: stable per room and bare JID, opaque to others.
    pub occupant_id: String,
    /// The available presence others see, serialized: `[without, with]` the real JID.
    shown: [OnceCell<Arc<Prepared>>; 2],
}

impl Occupant {
    pub fn new(
        nick: String,
        jid: FullJid,
        handle: SessionHandle,
        role: Role,
        presence: Element,
        occupant_id: String,
    ) -> Occupant {
        let bare = jid.to_bare().to_string();
        let address = jid.to_string().into();
        Occupant { nick, jid, address, bare, handle, role, presence, occupant_id, shown: Default::default() }
    }

    /// The occupant's full JID as text, for addressing a shared stanza to it.
    pub fn address(&self) -> Box<str> {
        self.address.clone()
    }

    pub fn nick(&self) -> &str {
        &self.nick
    }

    pub fn bare(&self) -> &str {
        &self.bare
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn presence(&self) -> &Element {
        &self.presence
    }

    pub fn set_nick(&mut self, nick: &str) {
        self.nick = nick.to_owned();
        self.forget_shown();
    }

    pub fn set_role(&mut self, role: Role) {
        self.role = role;
        self.forget_shown();
    }

    pub fn set_presence(&mut self, presence: Element) {
        self.presence = presence;
        self.forget_shown();
    }

    /// Drops the serialized presence (its affiliation changed).
    pub fn forget_shown(&mut self) {
        self.shown = Default::default();
    }

    /// The serialized available presence for viewers who see the real JID or not, built by `build` if it is not
    /// kept yet.
    pub fn shown(&self, with_jid: bool, build: impl FnOnce() -> Element) -> Arc<Prepared> {
        self.shown[usize::from(with_jid)].get_or_init(|| Arc::new(Prepared::new(build()))).clone()
    }
}
