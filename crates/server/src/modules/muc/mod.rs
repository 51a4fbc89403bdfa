//! XEP-0045 Multi-User Chat on `<muc.subdomain>.<domain>`: the service's rooms and where each stanza addressed to
//! it goes.
//!
//! Rooms live in memory under one lock, held only to change a room and compute the stanzas that change sends;
//! deliveries are queued (`try_send`) and store writes awaited after it is released. Persistent rooms (their
//! configuration, subject and affiliations) are also in the store, loaded at start; temporary rooms are memory
//! only and end with their last occupant.
//!
//! | file | what |
//! |---|---|
//! | `room.rs` | one room's state and the deliveries each change produces |
//! | `occupant.rs` | one occupant, and its presence as others see it, serialized once per variant |
//! | `roles.rs` | affiliations, roles, and who may change which (§5, §8-§10) |
//! | `config.rs` | the `muc#roomconfig` form and the room's disco#info |
//! | `presence.rs` | entering, nickname changes, leaving (§7.2-§7.6, §7.14) |
//! | `admin.rs` | `muc#admin` (kick, voice, ban, member/admin/owner lists) and `muc#owner` (configuration, destroy) |
//! | `archive.rs` | room MAM (XEP-0313), stanza-ids (XEP-0359), moderation (XEP-0425) |
//! | `invite.rs` | mediated invitations and declines (§7.8.2), offline delivery to members |
//! | `voice.rs` | voice requests and their approval (§7.13, §8.6) |
//! | `persist.rs` | what a change writes to the store, and loading at start |

mod admin;
mod archive;
mod config;
mod invite;
mod occupant;
mod persist;
mod presence;
mod roles;
mod room;
mod voice;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::xml::Element;
use drupe_proto::{ns, stanza, FullJid, Jid};

use self::config::AllowPm;
use self::roles::Role;
use self::room::{Delivery, Payload, Room, NS_MUC, NS_USER};
use crate::c2s::Session;
use crate::context::Context;
use crate::router::Outbound;

pub use self::persist::load;

/// XEP-0410: the service answers self-pings itself.
pub const SELF_PING: &str = "http://jabber.org/protocol/muc#self-ping-optimization";

/// XEP-0421 occupant ids.
pub const OCCUPANT_ID: &str = "urn:xmpp:occupant-id:0";

/// The XEP-0421 id of `bare` in `room_jid`: an HMAC under the server's persistent key (domain-separated), so it
/// stays the same across visits and restarts and tells nothing of the real JID.
fn occupant_id(ctx: &Context, room_jid: &str, bare: &str) -> String {
    use base64::Engine;
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &ctx.fast_key);
    let tag = ring::hmac::sign(&key, format!("xep-0421\0{room_jid}\0{bare}").as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag.as_ref()[..16])
}

/// The MUC service: its domain and its rooms (by localpart).
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

    /// A room's bare JID.
    fn room_jid(&self, room: &str) -> String {
        format!("{room}@{}", self.domain)
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
        ("iq", room, None) => iq(s, &el, room.as_deref()).await,
        ("iq", Some(room), Some(nick)) => self_ping(s, &el, &me, &room, &nick),
        ("presence", Some(room), Some(nick)) => presence::handle(s, el, me, &room, &nick).await,
        ("presence", _, _) => {
            if el.attr("type") != Some("error") {
                error(s, &el, Condition::JidMalformed);
            }
        }
        ("message", Some(room), None) if el.attr("type") == Some("groupchat") => groupchat(s, el, &me, &room).await,
        ("message", Some(room), None) if voice::is_request(&el) => voice::handle(s, &el, &me, &room),
        ("message", Some(room), None) if el.child("x", NS_USER).is_some() => invite::handle(s, el, &me, &room).await,
        ("message", Some(room), Some(nick)) => private(s, el, &me, &room, &nick),
        _ => error(s, &el, Condition::ServiceUnavailable),
    }
}

async fn groupchat(s: &mut Session, el: Element, me: &FullJid, room_name: &str) {
    let ctx = s.ctx.clone();
    let history = ctx.config.muc.history;
    let out = ctx.muc.with_rooms(|rooms| {
        let room = rooms.get_mut(room_name).ok_or(Condition::ItemNotFound)?;
        // Only occupants speak in a room (§7.4), visitors not in a moderated room (§7.4, §8.3).
        let i = room.by_jid(me).ok_or(Condition::NotAcceptable)?;
        let role = room.occupants[i].role();
        if role < Role::Participant {
            return Err(Condition::Forbidden);
        }
        let subject_change = el.child("subject", ns::CLIENT).is_some() && el.child("body", ns::CLIENT).is_none();
        if subject_change && role != Role::Moderator && !room.config.change_subject {
            return Err(Condition::Forbidden);
        }
        let (out, row) = room.groupchat(i, el.clone(), history, super::now_ms());
        let mut writes: Vec<persist::Write> =
            row.map(|r| persist::Write::Archive(room.name.clone(), r)).into_iter().collect();
        if subject_change && room.config.persistent {
            writes.push(persist::snapshot(room));
        }
        let offline = invite::absent_members(room, &out, ctx.domain(), ctx.config.muc.offline_delivery);
        Ok((out, writes, offline))
    });
    match out {
        Ok((out, writes, offline)) if writes.is_empty() => {
            deliver(Some(s), out);
            invite::deliver_offline(&ctx, offline).await;
        }
        Ok((out, writes, offline)) => {
            // The sender's own copy is its acknowledgement: it goes out only once the archive row is committed
            // (this session reads nothing more until then); if the commit fails, the sender gets the error instead.
            let (own, others): (Vec<Delivery>, Vec<Delivery>) = out.into_iter().partition(|(h, _)| h.id == s.id);
            deliver(Some(s), others);
            match persist::apply(&ctx, writes).await {
                Ok(()) => deliver(Some(s), own),
                Err(e) => return s.send_error(&el, e),
            }
            invite::deliver_offline(&ctx, offline).await;
        }
        Err(condition) => error(s, &el, condition),
    }
}

/// A private message through the room (§7.5), delivered to the occupant's real JID, as the room's `allowpm`
/// setting permits.
fn private(s: &mut Session, mut el: Element, me: &FullJid, room_name: &str, nick: &str) {
    let ctx = s.ctx.clone();
    let target = ctx.muc.with_rooms(|rooms| {
        let room = rooms.get(room_name).ok_or(Condition::ItemNotFound)?;
        let i = room.by_jid(me).ok_or(Condition::NotAcceptable)?;
        let role = room.occupants[i].role();
        let allowed = match room.config.allow_pm {
            AllowPm::Anyone => true,
            AllowPm::Participants => role >= Role::Participant,
            AllowPm::Moderators => role == Role::Moderator,
            AllowPm::None => false,
        };
        if !allowed && el.attr("type") != Some("error") {
            return Err(Condition::Forbidden);
        }
        let j = room.by_nick(nick).ok_or(Condition::ItemNotFound)?;
        let from = room.occupant_jid(room.occupants[i].nick());
        let id = room.occupants[i].occupant_id.clone();
        Ok((from, id, room.occupants[j].handle.clone(), room.occupants[j].jid.to_string()))
    });
    match target {
        Ok((from, id, handle, to)) => {
            el.set_attr("from", from);
            el.set_attr("to", to);
            el.remove_children(|c| c.ns() == OCCUPANT_ID);
            el.push(Element::new("occupant-id", OCCUPANT_ID).with_attr("id", id));
            el.push(Element::new("x", NS_USER));
            deliver(Some(s), vec![(handle, Payload::One(el))]);
        }
        Err(condition) => error(s, &el, condition),
    }
}

/// XEP-0410 MUC self-ping: an occupant pinging its own occupant JID learns whether it is still joined. Other IQs
/// to occupants are not relayed.
fn self_ping(s: &mut Session, el: &Element, me: &FullJid, room_name: &str, nick: &str) {
    if el.attr("type") != Some("get") || el.child("ping", ns::PING).is_none() {
        if matches!(el.attr("type"), Some("get" | "set")) {
            error(s, el, Condition::FeatureNotImplemented);
        }
        return;
    }
    let joined = s
        .ctx
        .muc
        .with_rooms(|rooms| rooms.get(room_name).and_then(|r| r.by_jid(me).map(|i| r.occupants[i].nick() == nick)));
    match joined {
        Some(true) => {
            let mut reply = stanza::iq_result(el, None);
            reply.set_attr("to", me.to_string());
            s.send(&reply);
        }
        // Joined under another nick: the occupant exists only if someone has that nick.
        Some(false) => error(s, el, Condition::FeatureNotImplemented),
        None => {
            let mut reply = stanza::error_reply(el, &StanzaError::new(Condition::NotAcceptable));
            reply.set_attr("to", me.to_string());
            s.send(&reply);
        }
    }
}

fn feature(var: &str) -> Element {
    Element::new("feature", ns::DISCO_INFO).with_attr("var", var)
}

/// IQs to the service or a room: discovery (§6), administration (§8-§10), the room archive and moderation.
async fn iq(s: &mut Session, el: &Element, room_name: Option<&str>) {
    let Some(payload) = el.first_child() else {
        return error(s, el, Condition::BadRequest);
    };
    let kind = el.attr("type").unwrap_or_default();
    match (payload.ns(), kind, room_name) {
        (ns::DISCO_INFO, "get", None) => {
            let q = Element::new("query", ns::DISCO_INFO)
                .with_child(
                    Element::new("identity", ns::DISCO_INFO)
                        .with_attr("category", "conference")
                        .with_attr("type", "text")
                        .with_attr("name", "Chatrooms"),
                )
                .with_child(feature(NS_MUC))
                .with_child(feature(ns::DISCO_INFO))
                .with_child(feature(ns::DISCO_ITEMS));
            s.send(&stanza::iq_result(el, Some(q)));
        }
        (ns::DISCO_ITEMS, "get", None) => {
            let muc = &s.ctx.muc;
            let q = muc.with_rooms(|rooms| {
                let mut q = Element::new("query", ns::DISCO_ITEMS);
                let mut listed: Vec<&Room> = rooms.values().filter(|r| r.config.public && !r.locked).collect();
                listed.sort_by(|a, b| a.name.cmp(&b.name));
                for r in listed {
                    let name = if r.config.name.is_empty() { r.name.as_str() } else { r.config.name.as_str() };
                    q.push(
                        Element::new("item", ns::DISCO_ITEMS).with_attr("jid", r.jid.as_str()).with_attr("name", name),
                    );
                }
                q
            });
            s.send(&stanza::iq_result(el, Some(q)));
        }
        (ns::DISCO_INFO, "get", Some(room)) => room_info(s, el, room),
        (ns::DISCO_ITEMS, "get", Some(room)) => {
            if s.ctx.muc.with_rooms(|r| r.contains_key(room)) {
                s.send(&stanza::iq_result(el, Some(Element::new("query", ns::DISCO_ITEMS))));
            } else {
                error(s, el, Condition::ItemNotFound);
            }
        }
        (admin::NS_ADMIN, _, Some(room)) => admin::admin(s, el, payload, room).await,
        (admin::NS_OWNER, _, Some(room)) => admin::owner(s, el, payload, room).await,
        (archive::MAM, _, Some(room)) => archive::handle(s, el, payload, room).await,
        (archive::MODERATE | archive::FASTEN, "set", Some(room)) => archive::moderate(s, el, payload, room).await,
        (ns::DISCO_INFO | ns::DISCO_ITEMS, _, _) => error(s, el, Condition::BadRequest),
        _ if matches!(kind, "get" | "set") => error(s, el, Condition::ServiceUnavailable),
        _ => {}
    }
}

/// A room's disco#info (§6.4): identity, the features its configuration gives, and the `muc#roominfo` form.
fn room_info(s: &mut Session, el: &Element, room_name: &str) {
    let q = s.ctx.muc.with_rooms(|rooms| {
        let room = rooms.get(room_name)?;
        let name = if room.config.name.is_empty() { room.name.as_str() } else { room.config.name.as_str() };
        let mut q = Element::new("query", ns::DISCO_INFO).with_child(
            Element::new("identity", ns::DISCO_INFO)
                .with_attr("category", "conference")
                .with_attr("type", "text")
                .with_attr("name", name),
        );
        for f in room.config.features() {
            q.push(feature(f));
        }
        let subject = room.subject.as_ref().and_then(|m| m.child("subject", ns::CLIENT)).map(Element::text);
        q.push(room.config.roominfo(room.occupants.len(), subject.as_deref().unwrap_or("")));
        Some(q)
    });
    match q {
        Some(q) => s.send(&stanza::iq_result(el, Some(q))),
        None => error(s, el, Condition::ItemNotFound),
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
            !room.is_disposable()
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
