//! XEP-0045 Multi-User Chat on `<muc.subdomain>.<domain>`: discovery, joining (rooms are created by their first
//! occupant), presence, groupchat and private messages, nickname changes, leaving, and leaving on disconnect.
//!
//! First slice: rooms are temporary, open and semi-anonymous, held in memory and gone when the last occupant
//! leaves. Room configuration, affiliation lists, moderation, persistence, room archives and offline delivery to
//! members are not there yet.

mod room;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::xml::Element;
use drupe_proto::{ns, stanza, FullJid, Jid};

use self::room::{Affiliation, Delivery, Occupant, Payload, Role, Room, NS_MUC, NS_USER};
use crate::c2s::Session;
use crate::context::Context;
use crate::router::Outbound;

/// The MUC service: its domain and its rooms (by localpart). The lock is held only to change the map and a room;
/// deliveries are queued to sessions (`try_send`) after it is released.
pub struct Muc {
    pub domain: String,
    rooms: Mutex<HashMap<String, Room>>,
}

impl Muc {
    pub fn new(domain: String) -> Muc {
        Muc { domain, rooms: Mutex::new(HashMap::new()) }
    }

    fn with_rooms<T>(&self, f: impl FnOnce(&mut HashMap<String, Room>) -> T) -> T {
        f(&mut self.rooms.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Queues each delivery to its session. Stanzas for `own` (the session doing the work, e.g. a joiner receiving
/// every occupant's presence) are written by it directly: a burst larger than its queue must not drop its own
/// join confirmation.
fn deliver(own: Option<&mut Session>, out: Vec<Delivery>) {
    let mut own = own;
    for (handle, payload) in out {
        match (own.as_deref_mut(), payload) {
            (Some(s), Payload::One(el)) if s.id == handle.id => s.send(&el),
            (Some(s), Payload::Shared(p, to)) if s.id == handle.id => s.send_addressed(p, to),
            (_, payload) => {
                let outbound = match payload {
                    Payload::One(el) => Outbound::Stanza(Arc::new(el)),
                    Payload::Shared(p, to) => Outbound::Addressed(p, to),
                };
                if handle.send(outbound).is_err() {
                    tracing::debug!(session = handle.id, "room stanza dropped: occupant's queue is full");
                }
            }
        }
    }
}

fn error(s: &mut Session, el: &Element, condition: Condition) {
    s.send_error(el, StanzaError::new(condition));
}

/// A stanza from a local client to the service (`room` None), a room, or an occupant (`nick`).
pub async fn from_client(s: &mut Session, el: Element, room: Option<String>, nick: Option<String>) {
    let Some(me) = s.jid.clone() else { return };
    match (el.name(), room, nick) {
        ("iq", room, None) => iq(s, &el, room.as_deref()),
        ("presence", Some(room), Some(nick)) => presence(s, el, me, &room, &nick),
        ("presence", _, _) => {
            if el.attr("type") != Some("error") {
                error(s, &el, Condition::JidMalformed);
            }
        }
        ("message", Some(room), None) => groupchat(s, el, &me, &room),
        ("message", Some(room), Some(nick)) => private(s, el, &me, &room, &nick),
        _ => error(s, &el, Condition::ServiceUnavailable),
    }
}

fn presence(s: &mut Session, el: Element, me: FullJid, room_name: &str, nick: &str) {
    let ctx = s.ctx.clone();
    let muc = &ctx.muc;
    let mut clean = el.clone();
    clean.remove_children(|c| c.ns() == NS_MUC || c.ns() == NS_USER);
    clean.remove_attr("to");
    let leaving = el.attr("type") == Some("unavailable");
    if el.attr("type").is_some() && !leaving {
        return;
    }
    let history = el
        .child("x", NS_MUC)
        .and_then(|x| x.child("history", NS_MUC))
        .and_then(|h| h.attr("maxstanzas"))
        .and_then(|n| n.parse::<usize>().ok());
    let config = &ctx.config.muc;
    let Some(handle) = ctx.router.handle(&s.user.clone().unwrap_or_default(), me.resource().as_str()) else { return };
    let result: Result<Vec<Delivery>, Condition> = muc.with_rooms(|rooms| {
        let jid = format!("{room_name}@{}", muc.domain);
        if leaving {
            let Some(room) = rooms.get_mut(room_name) else { return Ok(Vec::new()) };
            let Some(i) = room.by_jid(&me) else { return Ok(Vec::new()) };
            let out = room.leave(i);
            if room.occupants.is_empty() {
                rooms.remove(room_name);
            }
            return Ok(out);
        }
        let created = !rooms.contains_key(room_name);
        if created {
            let owned = rooms.values().filter(|r| r.occupants.iter().any(|o| o.jid.to_bare() == me.to_bare())).count();
            if owned >= config.max_rooms_per_user {
                return Err(Condition::ResourceConstraint);
            }
        }
        let room = rooms.entry(room_name.to_owned()).or_insert_with(|| Room::new(jid));
        match (room.by_jid(&me), room.by_nick(nick)) {
            (Some(i), Some(j)) if i == j => Ok(room.update(i, clean)),
            (_, Some(_)) => Err(Condition::Conflict),
            (Some(i), None) => Ok(room.change_nick(i, nick, clean)),
            (None, None) => {
                if room.occupants.len() >= config.max_occupants {
                    return Err(Condition::ServiceUnavailable);
                }
                let (affiliation, role) = if created {
                    (Affiliation::Owner, Role::Moderator)
                } else {
                    (Affiliation::None, Role::Participant)
                };
                let occupant =
                    Occupant { nick: nick.to_owned(), jid: me.clone(), handle, affiliation, role, presence: clean };
                Ok(room.join(occupant, created, history.unwrap_or(config.history).min(config.history)))
            }
        }
    });
    match result {
        Ok(out) => deliver(Some(s), out),
        Err(condition) => {
            // The error comes from the occupant JID the client addressed (XEP-0045 §7.2.9).
            let mut reply = stanza::error_reply(&el, &StanzaError::new(condition));
            reply.set_attr("to", me.to_string());
            // The MUC payload goes back too (XEP-0045 §7.2.9, RFC 6120 §8.3.1): clients match join errors by it.
            for x in el.children().filter(|c| c.is("x", NS_MUC)) {
                reply.push(x.clone());
            }
            s.send(&reply);
            muc.with_rooms(|rooms| {
                if rooms.get(room_name).is_some_and(|r| r.occupants.is_empty()) {
                    rooms.remove(room_name);
                }
            });
        }
    }
}

fn groupchat(s: &mut Session, el: Element, me: &FullJid, room_name: &str) {
    if el.attr("type") != Some("groupchat") {
        return error(s, &el, Condition::ServiceUnavailable);
    }
    let ctx = s.ctx.clone();
    let history = ctx.config.muc.history;
    let out = ctx.muc.with_rooms(|rooms| {
        let room = rooms.get_mut(room_name).ok_or(Condition::ItemNotFound)?;
        // Only occupants speak in a room (XEP-0045 §7.4).
        let i = room.by_jid(me).ok_or(Condition::NotAcceptable)?;
        Ok(room.groupchat(i, el.clone(), history))
    });
    match out {
        Ok(out) => deliver(Some(s), out),
        Err(condition) => error(s, &el, condition),
    }
}

/// A private message through the room (XEP-0045 §7.5), delivered to the occupant's real JID.
fn private(s: &mut Session, mut el: Element, me: &FullJid, room_name: &str, nick: &str) {
    let ctx = s.ctx.clone();
    let target = ctx.muc.with_rooms(|rooms| {
        let room = rooms.get(room_name)?;
        let from = room.by_jid(me).map(|i| room.occupant_jid(&room.occupants[i].nick));
        let to = room.by_nick(nick).map(|j| (room.occupants[j].handle.clone(), room.occupants[j].jid.to_string()));
        Some((from, to))
    });
    match target {
        Some((Some(from), Some((handle, to)))) => {
            el.set_attr("from", from);
            el.set_attr("to", to);
            el.push(Element::new("x", NS_USER));
            deliver(Some(s), vec![(handle, Payload::One(el))]);
        }
        Some((None, _)) => error(s, &el, Condition::NotAcceptable),
        _ => error(s, &el, Condition::ItemNotFound),
    }
}

fn feature(var: &str) -> Element {
    Element::new("feature", ns::DISCO_INFO).with_attr("var", var)
}

/// Discovery on the service and on rooms (XEP-0045 §6).
fn iq(s: &mut Session, el: &Element, room_name: Option<&str>) {
    let payload_ns = el.first_child().map(|c| c.ns().to_owned()).unwrap_or_default();
    let ctx = s.ctx.clone();
    let muc = &ctx.muc;
    let reply = match (payload_ns.as_str(), room_name) {
        (ns::DISCO_INFO, None) => Some(
            Element::new("query", ns::DISCO_INFO)
                .with_child(
                    Element::new("identity", ns::DISCO_INFO)
                        .with_attr("category", "conference")
                        .with_attr("type", "text")
                        .with_attr("name", "Chatrooms"),
                )
                .with_child(feature(NS_MUC))
                .with_child(feature(ns::DISCO_INFO))
                .with_child(feature(ns::DISCO_ITEMS)),
        ),
        (ns::DISCO_ITEMS, None) => Some(muc.with_rooms(|rooms| {
            let mut q = Element::new("query", ns::DISCO_ITEMS);
            let mut names: Vec<&String> = rooms.keys().collect();
            names.sort();
            for name in names {
                let jid = format!("{name}@{}", muc.domain);
                q.push(Element::new("item", ns::DISCO_ITEMS).with_attr("jid", jid).with_attr("name", name.as_str()));
            }
            q
        })),
        (ns::DISCO_INFO, Some(room)) if muc.with_rooms(|r| r.contains_key(room)) => {
            let mut q = Element::new("query", ns::DISCO_INFO).with_child(
                Element::new("identity", ns::DISCO_INFO)
                    .with_attr("category", "conference")
                    .with_attr("type", "text")
                    .with_attr("name", room),
            );
            for f in [NS_MUC, "muc_temporary", "muc_open", "muc_unmoderated", "muc_semianonymous", "muc_unsecured"] {
                q.push(feature(f));
            }
            Some(q)
        }
        (ns::DISCO_ITEMS, Some(room)) if muc.with_rooms(|r| r.contains_key(room)) => {
            Some(Element::new("query", ns::DISCO_ITEMS))
        }
        (ns::DISCO_INFO | ns::DISCO_ITEMS, Some(_)) => return error(s, el, Condition::ItemNotFound),
        _ => None,
    };
    match reply {
        Some(q) if el.attr("type") == Some("get") => s.send(&stanza::iq_result(el, Some(q))),
        Some(_) => error(s, el, Condition::BadRequest),
        None => error(s, el, Condition::ServiceUnavailable),
    }
}

/// A session ended: it leaves every room it was in.
pub fn session_ended(ctx: &Context, jid: &FullJid) {
    let out = ctx.muc.with_rooms(|rooms| {
        let mut out = Vec::new();
        rooms.retain(|_, room| {
            if let Some(i) = room.by_jid(jid) {
                out.extend(room.leave(i));
            }
            !room.occupants.is_empty()
        });
        out
    });
    // The leaver's own copy goes nowhere: its session is gone.
    deliver(None, out);
}

/// Parses a JID addressed to the service into (room, nick).
pub fn address(to: &Jid) -> (Option<String>, Option<String>) {
    (to.node().map(|n| n.to_string()), to.resource().map(|r| r.to_string()))
}
