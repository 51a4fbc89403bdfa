//! One XEP-0045 room: its occupants, history and subject, and the stanzas each change sends to whom. Pure state:
//! no locks, no I/O; the service applies the deliveries it returns.

use std::collections::VecDeque;

use drupe_proto::xml::Element;
use drupe_proto::{ns, FullJid};

use std::sync::Arc;

use crate::router::{Prepared, SessionHandle};

pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_USER: &str = "http://jabber.org/protocol/muc#user";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Affiliation {
    Owner,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Moderator,
    Participant,
}

impl Affiliation {
    fn as_str(self) -> &'static str {
        match self {
            Affiliation::Owner => "owner",
            Affiliation::None => "none",
        }
    }
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Moderator => "moderator",
            Role::Participant => "participant",
        }
    }
}

pub struct Occupant {
    pub nick: String,
    pub jid: FullJid,
    pub handle: SessionHandle,
    pub affiliation: Affiliation,
    pub role: Role,
    /// The occupant's presence as sent to the room, without MUC payloads.
    pub presence: Element,
}

/// What one occupant's session gets: its own element, or the room's one serialization of a message.
pub enum Payload {
    One(Element),
    Shared(Arc<Prepared>, Box<str>),
}

/// A stanza for one occupant's session.
pub type Delivery = (SessionHandle, Payload);

pub struct Room {
    /// The room's bare JID.
    pub jid: String,
    pub occupants: Vec<Occupant>,
    history: VecDeque<Element>,
    subject: Option<Element>,
}

impl Room {
    pub fn new(jid: String) -> Room {
        Room { jid, occupants: Vec::new(), history: VecDeque::new(), subject: None }
    }

    pub fn occupant_jid(&self, nick: &str) -> String {
        format!("{}/{nick}", self.jid)
    }

    pub fn by_jid(&self, jid: &FullJid) -> Option<usize> {
        self.occupants.iter().position(|o| &o.jid == jid)
    }

    pub fn by_nick(&self, nick: &str) -> Option<usize> {
        self.occupants.iter().position(|o| o.nick == nick)
    }

    /// `presence` of occupant `i` as seen by occupant `viewer`, with the muc#user payload and `codes`.
    fn presence_of(&self, i: usize, viewer: usize, kind: Option<&str>, codes: &[u16], nick: Option<&str>) -> Element {
        let o = &self.occupants[i];
        let mut p = match kind {
            Some(k) => Element::new("presence", ns::CLIENT).with_attr("type", k),
            None => o.presence.clone(),
        };
        p.set_attr("from", self.occupant_jid(&o.nick));
        p.set_attr("to", self.occupants[viewer].jid.to_string());
        let mut item = Element::new("item", NS_USER)
            .with_attr("affiliation", o.affiliation.as_str())
            .with_attr("role", if kind == Some("unavailable") && nick.is_none() { "none" } else { o.role.as_str() });
        // Semi-anonymous: real JIDs only for moderators (XEP-0045 §7.2.3).
        if self.occupants[viewer].role == Role::Moderator {
            item.set_attr("jid", o.jid.to_string());
        }
        if let Some(n) = nick {
            item.set_attr("nick", n);
        }
        let mut x = Element::new("x", NS_USER).with_child(item);
        let mut codes = codes.to_vec();
        if i == viewer {
            codes.insert(0, 110);
        }
        for code in codes {
            x.push(Element::new("status", NS_USER).with_attr("code", code.to_string()));
        }
        p.push(x);
        p
    }

    /// Occupant `i`'s presence to everyone, each copy addressed to its viewer.
    fn broadcast_presence(&self, i: usize, kind: Option<&str>, codes: &[u16], nick: Option<&str>) -> Vec<Delivery> {
        (0..self.occupants.len())
            .map(|v| (self.occupants[v].handle.clone(), Payload::One(self.presence_of(i, v, kind, codes, nick))))
            .collect()
    }

    /// Adds an occupant (XEP-0045 §7.2): existing occupants' presence to the newcomer, the newcomer's to all,
    /// then the last `max_history` messages and the subject to the newcomer.
    pub fn join(&mut self, occupant: Occupant, created: bool, max_history: usize) -> Vec<Delivery> {
        self.occupants.push(occupant);
        let me = self.occupants.len() - 1;
        let handle = self.occupants[me].handle.clone();
        let mut out: Vec<Delivery> =
            (0..me).map(|i| (handle.clone(), Payload::One(self.presence_of(i, me, None, &[], None)))).collect();
        out.extend(self.broadcast_presence(me, None, if created { &[201] } else { &[] }, None));
        let to = self.occupants[me].jid.to_string();
        let skip = self.history.len().saturating_sub(max_history);
        for m in self.history.iter().skip(skip) {
            out.push((handle.clone(), Payload::One(m.clone().with_attr("to", to.as_str()))));
        }
        let subject = self.subject.clone().unwrap_or_else(|| {
            Element::new("message", ns::CLIENT)
                .with_attr("from", self.jid.as_str())
                .with_attr("type", "groupchat")
                .with_child(Element::new("subject", ns::CLIENT))
        });
        out.push((handle, Payload::One(subject.with_attr("to", to))));
        out
    }

    /// Presence update of occupant `i` (show/status), to everyone.
    pub fn update(&mut self, i: usize, presence: Element) -> Vec<Delivery> {
        self.occupants[i].presence = presence;
        self.broadcast_presence(i, None, &[], None)
    }

    /// Nickname change (XEP-0045 §7.6): unavailable with 303 and the new nick, then available under it.
    pub fn change_nick(&mut self, i: usize, nick: &str, presence: Element) -> Vec<Delivery> {
        let mut out = self.broadcast_presence(i, Some("unavailable"), &[303], Some(nick));
        self.occupants[i].nick = nick.to_owned();
        self.occupants[i].presence = presence;
        out.extend(self.broadcast_presence(i, None, &[], None));
        out
    }

    /// Removes occupant `i` (XEP-0045 §7.14); everyone, the leaver included, gets its unavailable presence.
    pub fn leave(&mut self, i: usize) -> Vec<Delivery> {
        let out = self.broadcast_presence(i, Some("unavailable"), &[], None);
        self.occupants.remove(i);
        out
    }

    /// A groupchat message from occupant `i` (XEP-0045 §7.4), reflected to everyone and kept in the history;
    /// a `<subject/>` changes the subject (§8.1).
    pub fn groupchat(&mut self, i: usize, mut message: Element, max_history: usize) -> Vec<Delivery> {
        message.set_attr("from", self.occupant_jid(&self.occupants[i].nick));
        message.remove_attr("to");
        if message.child("subject", ns::CLIENT).is_some() && message.child("body", ns::CLIENT).is_none() {
            self.subject = Some(message.clone());
        } else if max_history > 0 {
            let mut kept = message.clone();
            kept.push(drupe_proto::delay::delay(&self.jid, crate::modules::now_ms()));
            self.history.push_back(kept);
            while self.history.len() > max_history {
                self.history.pop_front();
            }
        }
        // Serialized once; each occupant's session only splices in its own `to`.
        let shared = Arc::new(Prepared::new(message));
        self.occupants
            .iter()
            .map(|o| (o.handle.clone(), Payload::Shared(shared.clone(), o.jid.to_string().into())))
            .collect()
    }
}
