//! XEP-0045 administration: `muc#admin` (§8 moderator and §9 admin use cases: kick, voice, ban, membership,
//! moderator and admin lists) and `muc#owner` (§10: configuration, instant rooms, destroy).

use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::xml::Element;
use drupe_proto::{dataform, stanza, FullJid, Jid};

use super::persist::{self, Write};
use super::presence::role_of;
use super::roles::{may_set_affiliation, may_set_role, Affiliation, Role};
use super::room::{Delivery, Room, NS_USER};
use super::{deliver, error};
use crate::c2s::Session;

pub const NS_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
pub const NS_OWNER: &str = "http://jabber.org/protocol/muc#owner";

/// What an admin or owner request does once the room lock is released: its reply, deliveries and store writes.
type Outcome = Result<(Option<Element>, Vec<Delivery>, Vec<Write>), StanzaError>;

fn fail(condition: Condition) -> StanzaError {
    StanzaError::new(condition)
}

async fn finish(s: &mut Session, el: &Element, outcome: Outcome) {
    match outcome {
        Ok((reply, out, writes)) => {
            if let Err(e) = persist::apply(&s.ctx, writes).await {
                return s.send_error(el, e);
            }
            s.send(&stanza::iq_result(el, reply));
            deliver(Some(s), out);
        }
        Err(e) => s.send_error(el, e),
    }
}

/// The actor's affiliation, role and nick in `room`.
fn actor(room: &Room, me: &FullJid) -> (Affiliation, Role, Option<String>) {
    let nick = room.by_jid(me).map(|i| room.occupants[i].nick().to_owned());
    (room.affiliation(&me.to_bare().to_string()), role_of(room, me), nick)
}

pub async fn admin(s: &mut Session, el: &Element, query: &Element, room_name: &str) {
    let Some(me) = s.jid.clone() else { return };
    let ctx = s.ctx.clone();
    let max_affiliations = ctx.config.muc.max_affiliations;
    let items: Vec<&Element> = query.children().filter(|c| c.is("item", NS_ADMIN)).collect();
    if items.is_empty() {
        return error(s, el, Condition::BadRequest);
    }
    let get = el.attr("type") == Some("get");
    let outcome = ctx.muc.with_rooms(|rooms| -> Outcome {
        let room = rooms.get_mut(room_name).ok_or(fail(Condition::ItemNotFound))?;
        if get {
            return list(room, &me, items[0]).map(|q| (Some(q), Vec::new(), Vec::new()));
        }
        let mut out = Vec::new();
        let mut writes = Vec::new();
        for item in items {
            let (aff, role, nick) = actor(room, &me);
            let reason = item.child("reason", NS_ADMIN).map(Element::text);
            match (item.attr("role").and_then(Role::parse), item.attr("affiliation").and_then(Affiliation::parse)) {
                (Some(new), None) => {
                    let target = item.attr("nick").ok_or(fail(Condition::BadRequest))?;
                    let i = room.by_nick(target).ok_or(fail(Condition::ItemNotFound))?;
                    may_set_role((aff, role), room.affiliation_of(i), new).map_err(fail)?;
                    out.extend(room.set_role(i, new, nick.as_deref(), reason.as_deref()));
                }
                (None, Some(new)) => {
                    // By JID, or by the nick of an occupant (as some clients send it).
                    let by_nick =
                        item.attr("nick").and_then(|n| room.by_nick(n)).map(|i| room.occupants[i].bare().to_owned());
                    let bare = match item.attr("jid") {
                        Some(j) => Jid::new(j).map_err(|_| fail(Condition::JidMalformed))?.to_bare().to_string(),
                        None => by_nick.ok_or(fail(Condition::BadRequest))?,
                    };
                    let old = room.affiliation(&bare);
                    may_set_affiliation(aff, old, new).map_err(fail)?;
                    let owners = room.affiliations().values().filter(|a| **a == Affiliation::Owner).count();
                    if old == Affiliation::Owner && new != Affiliation::Owner && owners == 1 {
                        // §10.6: a room always keeps an owner.
                        return Err(fail(Condition::Conflict));
                    }
                    if old == Affiliation::None && room.affiliations().len() >= max_affiliations {
                        return Err(fail(Condition::ResourceConstraint));
                    }
                    out.extend(room.set_affiliation(&bare, new, nick.as_deref(), reason.as_deref()));
                    if room.config.persistent {
                        writes.push(persist::affiliation(room, &bare, new));
                    }
                }
                _ => return Err(fail(Condition::BadRequest)),
            }
        }
        Ok((None, out, writes))
    });
    finish(s, el, outcome).await;
}

/// §8.5, §9.5, §10.5: the occupants with a role, or the JIDs with an affiliation. Moderators see roles; admins
/// and owners every affiliation list; members of a non-anonymous room the member, admin and owner lists (which
/// is what clients need to encrypt to every member).
fn list(room: &Room, me: &FullJid, item: &Element) -> Result<Element, StanzaError> {
    let (aff, role, _) = actor(room, me);
    let mut q = Element::new("query", NS_ADMIN);
    if let Some(wanted) = item.attr("role").and_then(Role::parse) {
        if role != Role::Moderator {
            return Err(fail(Condition::Forbidden));
        }
        for (i, o) in room.occupants.iter().enumerate().filter(|(_, o)| o.role() == wanted) {
            q.push(
                Element::new("item", NS_ADMIN)
                    .with_attr("nick", o.nick())
                    .with_attr("role", o.role().as_str())
                    .with_attr("affiliation", room.affiliation_of(i).as_str())
                    .with_attr("jid", o.jid.to_string()),
            );
        }
        return Ok(q);
    }
    let wanted = item.attr("affiliation").and_then(Affiliation::parse).ok_or(fail(Condition::BadRequest))?;
    let member_may = aff == Affiliation::Member && room.config.whois_anyone && wanted >= Affiliation::Member;
    if aff < Affiliation::Admin && !member_may {
        return Err(fail(Condition::Forbidden));
    }
    for (jid, a) in room.affiliations().iter().filter(|(_, a)| **a == wanted) {
        q.push(Element::new("item", NS_ADMIN).with_attr("jid", jid.as_str()).with_attr("affiliation", a.as_str()));
    }
    Ok(q)
}

pub async fn owner(s: &mut Session, el: &Element, query: &Element, room_name: &str) {
    let Some(me) = s.jid.clone() else { return };
    let ctx = s.ctx.clone();
    let limit = ctx.config.muc.max_occupants;
    let get = el.attr("type") == Some("get");
    let outcome = ctx.muc.with_rooms(|rooms| -> Outcome {
        let room = rooms.get_mut(room_name).ok_or(fail(Condition::ItemNotFound))?;
        if room.affiliation(&me.to_bare().to_string()) != Affiliation::Owner {
            return Err(fail(Condition::Forbidden));
        }
        if get {
            let q = Element::new("query", NS_OWNER).with_child(room.config.to_form("form", limit));
            return Ok((Some(q), Vec::new(), Vec::new()));
        }
        if let Some(d) = query.child("destroy", NS_OWNER) {
            // §10.9: the alternate venue and reason go to every occupant.
            let mut destroy = Element::new("destroy", NS_USER);
            if let Some(alt) = d.attr("jid") {
                destroy.set_attr("jid", alt);
            }
            if let Some(reason) = d.child("reason", NS_OWNER) {
                destroy.push(Element::new("reason", NS_USER).with_text(reason.text()));
            }
            let out = room.destroy(&destroy);
            let writes = if room.config.persistent { vec![Write::Remove(room.name.clone())] } else { Vec::new() };
            rooms.remove(room_name);
            return Ok((None, out, writes));
        }
        let x = query.child("x", dataform::NS).ok_or(fail(Condition::BadRequest))?;
        match x.attr("type") {
            // §10.1.3: cancelling the initial configuration destroys the room it created.
            Some("cancel") if room.locked => {
                let out = room.destroy(&Element::new("destroy", NS_USER));
                rooms.remove(room_name);
                Ok((None, out, Vec::new()))
            }
            Some("cancel") => Ok((None, Vec::new(), Vec::new())),
            Some("submit") => {
                let config = room.config.apply(x, limit)?;
                let was_persistent = room.config.persistent;
                let out = room.configure(config);
                let writes = persist::configured(was_persistent, room);
                if room.is_disposable() {
                    rooms.remove(room_name);
                }
                Ok((None, out, writes))
            }
            _ => Err(fail(Condition::BadRequest)),
        }
    });
    finish(s, el, outcome).await;
}
