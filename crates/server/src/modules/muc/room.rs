//! One XEP-0045 room: its configuration, affiliations, occupants, history and subject, and the stanzas each change
//! sends to whom. Pure state: no locks, no I/O; the service applies the deliveries it returns and persists what
//! changed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use drupe_proto::xml::Element;
use drupe_proto::{ns, FullJid};
use drupe_store::RoomMessage;

use super::config::RoomConfig;
pub use super::occupant::Occupant;
use super::roles::{Affiliation, Role};
use crate::router::{Prepared, SessionHandle};

pub const NS_MUC: &str = "http://jabber.org/protocol/muc";
pub const NS_USER: &str = "http://jabber.org/protocol/muc#user";

/// What one occupant's session gets: its own element, or the room's one serialization of a message.
pub enum Payload {
    One(Element),
    Shared(Arc<Prepared>, Box<str>),
}

/// A stanza for one occupant's session.
pub type Delivery = (SessionHandle, Payload);

/// How an occupant's presence is shown: its type, status codes, and the item's extra details.
#[derive(Default, Clone, Copy)]
pub struct Notice<'a> {
    pub kind: Option<&'a str>,
    pub codes: &'a [u16],
    /// The new nickname (303).
    pub nick: Option<&'a str>,
    /// The nickname of the moderator or admin who made the change (§8.2).
    pub actor: Option<&'a str>,
    pub reason: Option<&'a str>,
    /// The `<destroy/>` of a destroyed room (§10.9).
    pub destroy: Option<&'a Element>,
}

impl Notice<'_> {
    /// The plain available presence (what occupants keep serialized, see `occupant.rs`).
    fn is_plain(&self) -> bool {
        self.kind.is_none()
            && self.codes.is_empty()
            && self.nick.is_none()
            && self.actor.is_none()
            && self.reason.is_none()
            && self.destroy.is_none()
    }
}

pub struct Room {
    /// The room's localpart.
    pub name: String,
    /// The room's bare JID.
    pub jid: String,
    pub config: RoomConfig,
    /// Bare JID to affiliation; `none` is never kept. Changed only through [`Room::grant`].
    affiliations: BTreeMap<String, Affiliation>,
    pub occupants: Vec<Occupant>,
    /// Recent messages with their time (ms), each with its `<delay/>`.
    pub history: VecDeque<(i64, Element)>,
    pub subject: Option<Element>,
    /// Created and not yet configured (§10.1.1): only its owner may enter.
    pub locked: bool,
    last_seq: i64,
    version: i64,
}

impl Room {
    pub fn new(name: &str, domain: &str, config: RoomConfig) -> Room {
        Room {
            name: name.to_owned(),
            jid: format!("{name}@{domain}"),
            config,
            affiliations: BTreeMap::new(),
            occupants: Vec::new(),
            history: VecDeque::new(),
            subject: None,
            locked: false,
            last_seq: 0,
            version: 0,
        }
    }

    pub fn occupant_jid(&self, nick: &str) -> String {
        format!("{}/{nick}", self.jid)
    }

    pub fn by_jid(&self, jid: &FullJid) -> Option<usize> {
        self.occupants.iter().position(|o| &o.jid == jid)
    }

    pub fn by_nick(&self, nick: &str) -> Option<usize> {
        self.occupants.iter().position(|o| o.nick() == nick)
    }

    /// Bare JID to affiliation.
    pub fn affiliations(&self) -> &BTreeMap<String, Affiliation> {
        &self.affiliations
    }

    /// Records `bare`'s affiliation (no presence is sent: see [`Room::set_affiliation`]); its occupants' cached
    /// presence, which shows the affiliation, is dropped.
    pub fn grant(&mut self, bare: &str, affiliation: Affiliation) {
        match affiliation {
            Affiliation::None => self.affiliations.remove(bare),
            a => self.affiliations.insert(bare.to_owned(), a),
        };
        for o in self.occupants.iter_mut().filter(|o| o.bare() == bare) {
            o.forget_shown();
        }
    }

    pub fn affiliation(&self, bare: &str) -> Affiliation {
        self.affiliations.get(bare).copied().unwrap_or(Affiliation::None)
    }

    pub fn affiliation_of(&self, i: usize) -> Affiliation {
        self.affiliation(self.occupants[i].bare())
    }

    /// Whether no one would notice the room going away: temporary and empty.
    pub fn is_disposable(&self) -> bool {
        self.occupants.is_empty() && !self.config.persistent
    }

    /// Occupant `i`'s presence as seen by occupant `viewer`.
    fn presence_of(&self, i: usize, viewer: usize, n: &Notice) -> Element {
        let o = &self.occupants[i];
        let mut p = match n.kind {
            Some(k) => Element::new("presence", ns::CLIENT).with_attr("type", k),
            None => o.presence().clone(),
        };
        p.set_attr("from", self.occupant_jid(o.nick()));
        p.set_attr("to", self.occupants[viewer].jid.to_string());
        p.push(Element::new("occupant-id", super::OCCUPANT_ID).with_attr("id", o.occupant_id.as_str()));
        let gone = n.kind == Some("unavailable") && n.nick.is_none();
        let affiliation = if n.destroy.is_some() { Affiliation::None } else { self.affiliation_of(i) };
        let mut item = Element::new("item", NS_USER)
            .with_attr("affiliation", affiliation.as_str())
            .with_attr("role", if gone { "none" } else { o.role().as_str() });
        if self.sees_real_jids(viewer) {
            item.set_attr("jid", o.jid.to_string());
        }
        if let Some(nick) = n.nick {
            item.set_attr("nick", nick);
        }
        if let Some(actor) = n.actor {
            item.push(Element::new("actor", NS_USER).with_attr("nick", actor));
        }
        if let Some(reason) = n.reason {
            item.push(Element::new("reason", NS_USER).with_text(reason));
        }
        let mut x = Element::new("x", NS_USER).with_child(item);
        if let Some(d) = n.destroy {
            x.push(d.clone());
        }
        if i == viewer {
            x.push(status(110));
        }
        for code in n.codes {
            x.push(status(*code));
        }
        p.push(x);
        p
    }

    /// Semi-anonymous rooms show real JIDs to moderators only (§7.2.3, §7.2.4).
    fn sees_real_jids(&self, viewer: usize) -> bool {
        self.config.whois_anyone || self.occupants[viewer].role() == Role::Moderator
    }

    /// Occupant `i`'s presence to everyone.
    pub fn broadcast_presence(&self, i: usize, n: &Notice) -> Vec<Delivery> {
        self.presence_to_all(i, n, n)
    }

    /// Occupant `i`'s presence to everyone: `i` itself gets its own copy (`own`, with status 110); the others'
    /// copies differ only in whether they show the real JID, so each of those two variants is serialized once and
    /// every viewer's copy only addressed (a join in a 1,000-occupant room is 2 serializations, not 1,000). The
    /// plain available presence is the one the occupant keeps for later newcomers.
    fn presence_to_all(&self, i: usize, others: &Notice, own: &Notice) -> Vec<Delivery> {
        let mut variants: [Option<Arc<Prepared>>; 2] = [None, None];
        let mut out = Vec::with_capacity(self.occupants.len());
        for (v, o) in self.occupants.iter().enumerate() {
            let payload = if v == i {
                Payload::One(self.presence_of(i, v, own))
            } else {
                let with_jid = self.sees_real_jids(v);
                let shared = variants[usize::from(with_jid)].get_or_insert_with(|| {
                    if others.is_plain() {
                        self.shown(i, v)
                    } else {
                        Arc::new(Prepared::new(self.presence_of(i, v, others)))
                    }
                });
                Payload::Shared(shared.clone(), o.address())
            };
            out.push((o.handle.clone(), payload));
        }
        out
    }

    /// Occupant `i`'s plain available presence as `viewer` sees it, serialized (kept by the occupant).
    fn shown(&self, i: usize, viewer: usize) -> Arc<Prepared> {
        self.occupants[i].shown(self.sees_real_jids(viewer), || self.presence_of(i, viewer, &Notice::default()))
    }

    /// One stanza from the room to every occupant, serialized once.
    pub fn broadcast(&self, el: Element) -> Vec<Delivery> {
        let shared = Arc::new(Prepared::new(el));
        self.occupants.iter().map(|o| (o.handle.clone(), Payload::Shared(shared.clone(), o.address()))).collect()
    }

    /// Adds an occupant (§7.2): existing occupants' presence to the newcomer, the newcomer's to all, then the last
    /// `max_history` messages (none older than `since_ms`, §7.2.15) and the subject to the newcomer.
    pub fn join(&mut self, occupant: Occupant, created: bool, max_history: usize, since_ms: i64) -> Vec<Delivery> {
        self.occupants.push(occupant);
        let me = self.occupants.len() - 1;
        let handle = self.occupants[me].handle.clone();
        let to = self.occupants[me].address();
        let mut out: Vec<Delivery> = Vec::with_capacity(2 * me + 2);
        out.extend((0..me).map(|i| (handle.clone(), Payload::Shared(self.shown(i, me), to.clone()))));
        // Codes only the newcomer sees (§7.2.3, §7.2.12, §10.1.1): non-anonymous, logged, created.
        let mut own_codes = Vec::new();
        if self.config.whois_anyone {
            own_codes.push(100);
        }
        if self.config.archived() {
            own_codes.push(170);
        }
        if created {
            own_codes.push(201);
        }
        let own = Notice { codes: &own_codes, ..Default::default() };
        out.extend(self.presence_to_all(me, &Notice::default(), &own));
        let recent: Vec<&Element> = self.history.iter().filter(|(at, _)| *at >= since_ms).map(|(_, m)| m).collect();
        for m in recent.iter().skip(recent.len().saturating_sub(max_history)) {
            out.push((handle.clone(), Payload::One((*m).clone().with_attr("to", &*to))));
        }
        let subject = self.subject.clone().unwrap_or_else(|| {
            Element::new("message", ns::CLIENT)
                .with_attr("from", self.jid.as_str())
                .with_attr("type", "groupchat")
                .with_child(Element::new("subject", ns::CLIENT))
        });
        out.push((handle, Payload::One(subject.with_attr("to", &*to))));
        out
    }

    /// Presence update of occupant `i` (show/status), to everyone.
    pub fn update(&mut self, i: usize, presence: Element) -> Vec<Delivery> {
        self.occupants[i].set_presence(presence);
        self.broadcast_presence(i, &Notice::default())
    }

    /// Nickname change (§7.6): unavailable with 303 and the new nick, then available under it.
    pub fn change_nick(&mut self, i: usize, nick: &str, presence: Element) -> Vec<Delivery> {
        let n = Notice { kind: Some("unavailable"), codes: &[303], nick: Some(nick), ..Default::default() };
        let mut out = self.broadcast_presence(i, &n);
        self.occupants[i].set_nick(nick);
        self.occupants[i].set_presence(presence);
        out.extend(self.broadcast_presence(i, &Notice::default()));
        out
    }

    /// Removes occupant `i`; everyone, the leaver included, gets its unavailable presence with `n`'s details
    /// (§7.14 leaving, §8.2 kick 307, §9.1 ban 301, §9.4 321/322, §10.9 destroy).
    pub fn remove(&mut self, i: usize, n: Notice) -> Vec<Delivery> {
        let out = self.broadcast_presence(i, &Notice { kind: Some("unavailable"), ..n });
        self.occupants.remove(i);
        out
    }

    pub fn leave(&mut self, i: usize) -> Vec<Delivery> {
        self.remove(i, Notice::default())
    }

    /// Gives occupant `i` a new role (§8.2-8.6, §9.6-9.7); `none` kicks it (307).
    pub fn set_role(&mut self, i: usize, role: Role, actor: Option<&str>, reason: Option<&str>) -> Vec<Delivery> {
        if role == Role::None {
            return self.remove(i, Notice { codes: &[307], actor, reason, ..Default::default() });
        }
        self.occupants[i].set_role(role);
        self.broadcast_presence(i, &Notice { actor, reason, ..Default::default() })
    }

    /// Gives a bare JID a new affiliation (§9, §10) and applies it to its occupants: outcasts are removed (301),
    /// non-members of a members-only room too (321), the others get the role that goes with it.
    pub fn set_affiliation(
        &mut self,
        bare: &str,
        affiliation: Affiliation,
        actor: Option<&str>,
        reason: Option<&str>,
    ) -> Vec<Delivery> {
        self.grant(bare, affiliation);
        let mut out = Vec::new();
        while let Some(i) = self.occupants.iter().position(|o| o.bare() == bare) {
            let codes: &[u16] = match affiliation {
                Affiliation::Outcast => &[301],
                a if self.config.members_only && a < Affiliation::Member => &[321],
                _ => break,
            };
            out.extend(self.remove(i, Notice { codes, actor, reason, ..Default::default() }));
        }
        let mut present = false;
        for i in 0..self.occupants.len() {
            if self.occupants[i].bare() == bare {
                present = true;
                let role = affiliation.default_role(self.config.moderated);
                self.occupants[i].set_role(role);
                out.extend(self.broadcast_presence(i, &Notice { actor, reason, ..Default::default() }));
            }
        }
        // §9.3-§9.5: the change of someone not in the room is told by a message, so that clients keep their member
        // lists (e.g. to encrypt to every member); real JIDs only where everyone may see them.
        if !present && out.is_empty() && self.config.whois_anyone {
            let item =
                Element::new("item", NS_USER).with_attr("affiliation", affiliation.as_str()).with_attr("jid", bare);
            out.extend(
                self.broadcast(
                    Element::new("message", ns::CLIENT)
                        .with_attr("from", self.jid.as_str())
                        .with_attr("id", crate::context::random_token(12))
                        .with_child(Element::new("x", NS_USER).with_child(item)),
                ),
            );
        }
        out
    }

    /// A new configuration (§10.2): status 104 (with 170/171 and 172/173 for logging and anonymity changes) to
    /// everyone; if the room became members-only, non-members leave (322).
    pub fn configure(&mut self, config: RoomConfig) -> Vec<Delivery> {
        let old = std::mem::replace(&mut self.config, config);
        let was_locked = std::mem::take(&mut self.locked);
        let mut codes = vec![104];
        if old.archived() != self.config.archived() {
            codes.push(if self.config.archived() { 170 } else { 171 });
        }
        if old.whois_anyone != self.config.whois_anyone {
            codes.push(if self.config.whois_anyone { 172 } else { 173 });
        }
        let mut x = Element::new("x", NS_USER);
        for c in codes {
            x.push(status(c));
        }
        // The initial configuration of a locked room is no change anyone saw (§10.1.3).
        let mut out = Vec::new();
        if !was_locked {
            out = self.broadcast(
                Element::new("message", ns::CLIENT)
                    .with_attr("from", self.jid.as_str())
                    .with_attr("type", "groupchat")
                    .with_attr("id", crate::context::random_token(12))
                    .with_child(x),
            );
        }
        if self.config.members_only && !old.members_only {
            while let Some(i) = (0..self.occupants.len()).find(|i| self.affiliation_of(*i) < Affiliation::Member) {
                out.extend(self.remove(i, Notice { codes: &[322], ..Default::default() }));
            }
        }
        out
    }

    /// Destroys the room (§10.9): everyone leaves with the `<destroy/>` (alternate venue, reason).
    pub fn destroy(&mut self, destroy: &Element) -> Vec<Delivery> {
        let mut out = Vec::new();
        while !self.occupants.is_empty() {
            out.extend(self.remove(0, Notice { destroy: Some(destroy), ..Default::default() }));
        }
        out
    }

    /// The next archive position: microseconds, strictly increasing even if the clock is not.
    fn next_seq(&mut self, now_ms: i64) -> i64 {
        self.last_seq = (now_ms.saturating_mul(1000)).max(self.last_seq + 1);
        self.last_seq
    }

    /// The version of the room's next stored row: microseconds, strictly increasing.
    pub fn next_version(&mut self) -> i64 {
        self.version = crate::modules::now_ms().saturating_mul(1000).max(self.version + 1);
        self.version
    }

    /// Restores the stored row's version of a room loaded from the store.
    pub fn resume_version(&mut self, version: i64) {
        self.version = self.version.max(version);
    }

    /// Restores the archive position of a room loaded from the store.
    pub fn resume_seq(&mut self, seq: i64) {
        self.last_seq = self.last_seq.max(seq);
    }

    /// A groupchat message from occupant `i` (§7.4), stamped with the room's XEP-0359 stanza-id, reflected to
    /// everyone and kept in the history; a `<subject/>` changes the subject (§8.1). Returns the deliveries and,
    /// for a message worth keeping in an archived room, its archive row.
    pub fn groupchat(
        &mut self,
        i: usize,
        mut message: Element,
        max_history: usize,
        now_ms: i64,
    ) -> (Vec<Delivery>, Option<RoomMessage>) {
        let nick = self.occupants[i].nick().to_owned();
        message.set_attr("from", self.occupant_jid(&nick));
        message.remove_attr("to");
        message.remove_children(|c| c.ns() == super::OCCUPANT_ID);
        message.push(
            Element::new("occupant-id", super::OCCUPANT_ID).with_attr("id", self.occupants[i].occupant_id.as_str()),
        );
        // Nobody else may claim an id in the room's name (XEP-0359 §3.3).
        let by = self.jid.clone();
        message.remove_children(|c| c.is("stanza-id", super::archive::SID) && c.attr("by") == Some(by.as_str()));
        let mut row = None;
        if message.child("subject", ns::CLIENT).is_some() && message.child("body", ns::CLIENT).is_none() {
            self.subject = Some(message.clone());
        } else if super::archive::historic(&message) {
            let stanza_id = crate::context::random_token(20);
            message.push(
                Element::new("stanza-id", super::archive::SID)
                    .with_attr("id", stanza_id.as_str())
                    .with_attr("by", by.as_str()),
            );
            if max_history > 0 {
                let mut kept = message.clone();
                kept.push(drupe_proto::delay::delay(&self.jid, now_ms));
                self.history.push_back((now_ms, kept));
                while self.history.len() > max_history {
                    self.history.pop_front();
                }
            }
            if self.config.archived() {
                row = Some(RoomMessage {
                    seq: self.next_seq(now_ms),
                    stanza_id,
                    nick,
                    timestamp_ms: now_ms,
                    origin_id: message
                        .child("origin-id", super::archive::SID)
                        .and_then(|o| o.attr("id"))
                        .map(str::to_owned),
                    body: message.child("body", ns::CLIENT).map(Element::text),
                    stanza: message.to_xml(),
                });
            }
        }
        (self.broadcast(message), row)
    }
}

impl Room {
    /// A message from the room itself (e.g. a moderation notice), stamped and archived like an occupant's but
    /// not kept in the join history.
    pub fn announce(&mut self, mut message: Element, now_ms: i64) -> (Vec<Delivery>, Option<RoomMessage>) {
        let stanza_id = crate::context::random_token(20);
        let by = self.jid.clone();
        message.push(
            Element::new("stanza-id", super::archive::SID).with_attr("id", stanza_id.as_str()).with_attr("by", by),
        );
        let row = self.config.archived().then(|| RoomMessage {
            seq: self.next_seq(now_ms),
            stanza_id,
            nick: String::new(),
            timestamp_ms: now_ms,
            origin_id: None,
            body: None,
            stanza: message.to_xml(),
        });
        (self.broadcast(message), row)
    }
}

pub fn status(code: u16) -> Element {
    Element::new("status", NS_USER).with_attr("code", code.to_string())
}
