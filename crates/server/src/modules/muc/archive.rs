//! A room's archive: XEP-0359 stanza-ids (`by` the room), XEP-0313 queries on the room JID, and XEP-0425 message
//! moderation (a moderator retracts a message; the archive keeps a tombstone without the body).
//!
//! Only persistent rooms with archiving on have an archive (in the store's `muc_archive`, apart from accounts'
//! archives); every room stamps stanza-ids and keeps its short history in memory.

use drupe_proto::delay::format_datetime;
use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::xml::Element;
use drupe_proto::{ns, rsm, stanza, Jid};
use drupe_store::RoomMessage;

use super::persist::{self, Write};
use super::presence::role_of;
use super::roles::{Affiliation, Role};
use super::room::{Delivery, Room};
use super::{deliver, error};
use crate::c2s::Session;
use crate::modules::{mam, now_ms, store_failure};

pub const MAM: &str = mam::NS;
pub const SID: &str = mam::SID;
pub const MODERATE: &str = "urn:xmpp:message-moderate:1";
pub const MODERATE_0: &str = "urn:xmpp:message-moderate:0";
pub const FASTEN: &str = "urn:xmpp:fasten:0";
const RETRACT: &str = "urn:xmpp:message-retract:1";
const RETRACT_0: &str = "urn:xmpp:message-retract:0";
const FORWARD: &str = "urn:xmpp:forward:0";

/// Messages a room keeps (history and archive): with a body, or a correction or retraction of one, and not
/// marked `<no-store/>` (XEP-0334).
pub fn historic(el: &Element) -> bool {
    (el.child("body", ns::CLIENT).is_some()
        || el.child("replace", "urn:xmpp:message-correct:0").is_some()
        || el.child("retract", RETRACT).is_some())
        && el.child("no-store", "urn:xmpp:hints").is_none()
}

/// Who may read a room's archive: its occupants and members, and anyone for an open room without a password.
fn may_read(room: &Room, s: &Session) -> bool {
    let Some(me) = s.jid.as_ref() else { return false };
    let affiliation = room.affiliation(&me.to_bare().to_string());
    affiliation != Affiliation::Outcast
        && (room.by_jid(me).is_some()
            || affiliation >= Affiliation::Member
            || (!room.config.members_only && room.config.password.is_none()))
}

/// XEP-0313 on the room JID: the query form, or one page of the archive.
pub async fn handle(s: &mut Session, el: &Element, q: &Element, room_name: &str) {
    let ctx = s.ctx.clone();
    let allowed = ctx.muc.with_rooms(|rooms| rooms.get(room_name).map(|r| (r.config.archived(), may_read(r, s))));
    match allowed {
        None => return error(s, el, Condition::ItemNotFound),
        Some((false, _)) => return error(s, el, Condition::ServiceUnavailable),
        Some((true, false)) => return error(s, el, Condition::Forbidden),
        Some((true, true)) => {}
    }
    match (el.attr("type"), q.name()) {
        (Some("get"), "query") => s.send(&stanza::iq_result(el, Some(mam::query_form()))),
        (Some("set"), "query") => {
            if let Err(e) = query(s, el, q, room_name).await {
                s.send_error(el, e);
            }
        }
        _ => error(s, el, Condition::BadRequest),
    }
}

async fn query(s: &mut Session, iq: &Element, q: &Element, room_name: &str) -> Result<(), StanzaError> {
    let Some(me) = s.jid.clone() else { return Ok(()) };
    let mut query = mam::parse_query(q, s.ctx.config.archive.max_page)?;
    let room_jid = s.ctx.muc.room_jid(room_name);
    // `with` an occupant JID filters by nickname; the room itself is everything.
    query.with = match query.with.take().map(|w| Jid::new(&w)) {
        Some(Ok(j)) if j.to_bare().to_string() == room_jid => j.resource().map(|r| r.to_string()),
        Some(_) => {
            empty_page(s, iq);
            return Ok(());
        }
        None => None,
    };
    let page = match s.ctx.store.muc_archive_query(room_name, &query).await {
        Ok(p) => p,
        Err(drupe_store::StoreError::NotFound) => return Err(StanzaError::new(Condition::ItemNotFound)),
        Err(e) => return Err(store_failure(e)),
    };
    let mut items: Vec<_> = page.items.iter().collect();
    if q.child("flip-page", mam::NS).is_some() {
        items.reverse();
    }
    for entry in &items {
        let Some(original) = Element::parse(&entry.stanza) else { continue };
        let mut result = Element::new("result", MAM).with_attr("id", entry.stanza_id.as_str());
        if let Some(qid) = q.attr("queryid") {
            result.set_attr("queryid", qid);
        }
        let forwarded = Element::new("forwarded", FORWARD)
            .with_child(Element::new("delay", ns::DELAY).with_attr("stamp", format_datetime(entry.timestamp_ms)))
            .with_child(original);
        s.send(
            &Element::new("message", ns::CLIENT)
                .with_attr("to", me.to_string())
                .with_attr("from", room_jid.as_str())
                .with_child(result.with_child(forwarded)),
        );
    }
    let first = items.first().map(|e| (e.stanza_id.as_str(), None));
    let last = items.last().map(|e| e.stanza_id.as_str());
    let mut fin = Element::new("fin", MAM).with_child(rsm::response(first, last, page.count));
    if page.complete {
        fin.set_attr("complete", "true");
    }
    s.send(&stanza::iq_result(iq, Some(fin)));
    Ok(())
}

fn empty_page(s: &mut Session, iq: &Element) {
    let fin = Element::new("fin", MAM).with_attr("complete", "true").with_child(rsm::response(None, None, Some(0)));
    s.send(&stanza::iq_result(iq, Some(fin)));
}

/// XEP-0425: `<moderate id=… xmlns=…:1><retract/></moderate>`, or the older `<apply-to id=…><moderate
/// xmlns=…:0>` that some clients still send.
pub async fn moderate(s: &mut Session, el: &Element, payload: &Element, room_name: &str) {
    let (stanza_id, reason) = match payload.ns() {
        MODERATE if payload.name() == "moderate" && payload.child("retract", RETRACT).is_some() => {
            (payload.attr("id"), payload.child("reason", MODERATE).map(Element::text))
        }
        FASTEN if payload.name() == "apply-to" => {
            let m = payload.child("moderate", MODERATE_0).filter(|m| m.child("retract", RETRACT_0).is_some());
            let Some(m) = m else { return error(s, el, Condition::FeatureNotImplemented) };
            (payload.attr("id"), m.child("reason", MODERATE_0).map(Element::text))
        }
        _ => return error(s, el, Condition::FeatureNotImplemented),
    };
    let Some(stanza_id) = stanza_id.map(str::to_owned) else { return error(s, el, Condition::BadRequest) };
    let Some(me) = s.jid.clone() else { return };
    let ctx = s.ctx.clone();
    // Who may, and whether the archive must be looked at: under the lock, without awaiting.
    let check = ctx.muc.with_rooms(|rooms| {
        let room = rooms.get(room_name).ok_or(Condition::ItemNotFound)?;
        if role_of(room, &me) != Role::Moderator {
            return Err(Condition::Forbidden);
        }
        Ok(room.config.archived())
    });
    let archived = match check {
        Ok(a) => a,
        Err(c) => return error(s, el, c),
    };
    let stored = match archived {
        true => match ctx.store.muc_archive_get(room_name, &stanza_id).await {
            Ok(m) => m,
            Err(e) => return s.send_error(el, store_failure(e)),
        },
        false => None,
    };
    let now = now_ms();
    let outcome = ctx.muc.with_rooms(|rooms| {
        let room = rooms.get_mut(room_name).ok_or(Condition::ItemNotFound)?;
        let i = room.by_jid(&me).ok_or(Condition::Forbidden)?;
        let by = room.occupant_jid(room.occupants[i].nick());
        let in_history = room.history.iter().position(|(_, m)| has_stanza_id(m, &stanza_id, &room.jid));
        let original = match (&stored, in_history) {
            (Some(m), _) => Element::parse(&m.stanza).ok_or(Condition::InternalServerError)?,
            (None, Some(h)) => room.history[h].1.clone(),
            (None, None) => return Err(Condition::ItemNotFound),
        };
        let tomb = tombstone(&original, &by, reason.as_deref(), now);
        if let Some(h) = in_history {
            let mut kept = tomb.clone();
            if let Some(d) = room.history[h].1.child("delay", ns::DELAY) {
                kept.push(d.clone());
            }
            room.history[h].1 = kept;
        }
        let (out, row) = announce(room, &stanza_id, &by, reason.as_deref(), now);
        let mut writes: Vec<Write> = Vec::new();
        if stored.is_some() {
            writes.push(Write::Archive(room.name.clone(), row.ok_or(Condition::InternalServerError)?));
        }
        Ok((out, writes, tomb.to_xml()))
    });
    let (out, writes, tomb): (Vec<Delivery>, Vec<Write>, String) = match outcome {
        Ok(o) => o,
        Err(c) => return error(s, el, c),
    };
    if stored.is_some() {
        if let Err(e) = ctx.store.muc_archive_moderate(room_name, &stanza_id, &tomb).await {
            return s.send_error(el, store_failure(e));
        }
        if let Err(e) = persist::apply(&ctx, writes).await {
            return s.send_error(el, e);
        }
    }
    tracing::info!(room = room_name, "message moderated");
    s.send(&stanza::iq_result(el, None));
    deliver(Some(s), out);
}

fn has_stanza_id(m: &Element, id: &str, by: &str) -> bool {
    m.children().any(|c| c.is("stanza-id", SID) && c.attr("id") == Some(id) && c.attr("by") == Some(by))
}

/// What the archive keeps of a moderated message (XEP-0425 §5): who sent it and its ids, not its content.
fn tombstone(original: &Element, by: &str, reason: Option<&str>, now: i64) -> Element {
    let mut m = Element::new("message", ns::CLIENT).with_attr("type", "groupchat");
    for a in ["from", "id"] {
        if let Some(v) = original.attr(a) {
            m.set_attr(a, v);
        }
    }
    let mut retracted = Element::new("retracted", RETRACT)
        .with_attr("stamp", format_datetime(now))
        .with_child(Element::new("moderated", MODERATE).with_attr("by", by));
    if let Some(r) = reason {
        retracted.push(Element::new("reason", RETRACT).with_text(r));
    }
    m.push(retracted);
    let kept = |c: &&Element| c.is("stanza-id", SID) || c.is("origin-id", SID) || c.ns() == super::OCCUPANT_ID;
    for c in original.children().filter(kept) {
        m.push(c.clone());
    }
    m
}

/// The retraction every occupant gets (XEP-0425 §4, with the `urn:xmpp:fasten:0` form of version 0 for older
/// clients), stamped and archived like any room message so that clients catching up learn of it.
fn announce(
    room: &mut Room,
    stanza_id: &str,
    by: &str,
    reason: Option<&str>,
    now: i64,
) -> (Vec<Delivery>, Option<RoomMessage>) {
    let mut retract = Element::new("retract", RETRACT)
        .with_attr("id", stanza_id)
        .with_child(Element::new("moderated", MODERATE).with_attr("by", by));
    let mut moderated_0 =
        Element::new("moderated", MODERATE_0).with_attr("by", by).with_child(Element::new("retract", RETRACT_0));
    if let Some(r) = reason {
        retract.push(Element::new("reason", RETRACT).with_text(r));
        moderated_0.push(Element::new("reason", MODERATE_0).with_text(r));
    }
    let message = Element::new("message", ns::CLIENT)
        .with_attr("type", "groupchat")
        .with_attr("from", room.jid.as_str())
        .with_attr("id", crate::context::random_token(12))
        .with_child(retract)
        .with_child(Element::new("apply-to", FASTEN).with_attr("id", stanza_id).with_child(moderated_0));
    room.announce(message, now)
}
