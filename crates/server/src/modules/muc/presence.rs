//! Presence to an occupant JID (XEP-0045 §7.2-§7.6, §7.14): entering (creating the room if it does not exist,
//! §10.1), changing status or nickname, and leaving, with the join errors of §7.2.6-§7.2.10.

use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::stanza;
use drupe_proto::xml::Element;
use drupe_proto::FullJid;

use super::config::RoomConfig;
use super::deliver;
use super::persist::{self, Write};
use super::roles::{Affiliation, Role};
use super::room::{Delivery, Occupant, Room, NS_MUC, NS_USER};
use crate::c2s::Session;

pub async fn handle(s: &mut Session, el: Element, me: FullJid, room_name: &str, nick: &str) {
    let ctx = s.ctx.clone();
    let muc = &ctx.muc;
    let mut clean = el.clone();
    clean.remove_children(|c| c.ns() == NS_MUC || c.ns() == NS_USER || c.ns() == super::OCCUPANT_ID);
    clean.remove_attr("to");
    let leaving = el.attr("type") == Some("unavailable");
    if el.attr("type").is_some() && !leaving {
        return;
    }
    let x = el.child("x", NS_MUC);
    // §7.2.15: maxstanzas, seconds and since narrow the history; maxchars='0' (what clients using the room's
    // archive send) asks for none; other maxchars values are not counted.
    let h = x.and_then(|x| x.child("history", NS_MUC));
    let number = |attr: &str| h.and_then(|h| h.attr(attr)).and_then(|n| n.parse::<i64>().ok());
    let history = match number("maxchars") {
        Some(0) => Some(0),
        _ => number("maxstanzas").map(|n| usize::try_from(n).unwrap_or(0)),
    };
    let now = crate::modules::now_ms();
    let since = [
        h.and_then(|h| h.attr("since")).and_then(drupe_proto::delay::parse_datetime),
        number("seconds").map(|s| now.saturating_sub(s.saturating_mul(1000))),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(i64::MIN);
    let password = x.and_then(|x| x.child("password", NS_MUC)).map(Element::text);
    let config = &ctx.config.muc;
    let Some(handle) = ctx.router.handle(&s.user.clone().unwrap_or_default(), me.resource().as_str()) else { return };
    let bare = me.to_bare().to_string();
    let result: Result<(Vec<Delivery>, Vec<Write>), Condition> = muc.with_rooms(|rooms| {
        if leaving {
            let Some(room) = rooms.get_mut(room_name) else { return Ok(Default::default()) };
            let Some(i) = room.by_jid(&me) else { return Ok(Default::default()) };
            let out = room.leave(i);
            if room.is_disposable() {
                rooms.remove(room_name);
            }
            return Ok((out, Vec::new()));
        }
        let created = !rooms.contains_key(room_name);
        if created {
            let owned = rooms.values().filter(|r| r.affiliation(&bare) == Affiliation::Owner).count();
            if owned >= config.max_rooms_per_user || rooms.len() >= config.max_rooms {
                return Err(Condition::ResourceConstraint);
            }
            // Without the MUC `<x/>` the creator is a groupchat 1.0 client: an instant room (§10.1.1).
            let mut room = Room::new(room_name, &muc.domain, RoomConfig::new(config.max_occupants, config.archive));
            room.locked = config.lock_new_rooms && x.is_some();
            room.grant(&bare, Affiliation::Owner);
            rooms.insert(room_name.to_owned(), room);
        }
        let Some(room) = rooms.get_mut(room_name) else { return Err(Condition::InternalServerError) };
        match (room.by_jid(&me), room.by_nick(nick)) {
            (Some(i), Some(j)) if i == j => Ok((room.update(i, clean), Vec::new())),
            (_, Some(_)) => Err(Condition::Conflict),
            (Some(i), None) => Ok((room.change_nick(i, nick, clean), Vec::new())),
            (None, None) => {
                let affiliation = room.affiliation(&bare);
                entry_allowed(room, affiliation, password.as_deref(), config.max_occupants)?;
                let role = affiliation.default_role(room.config.moderated);
                let occupant_id = super::occupant_id(&ctx, &room.jid, &bare);
                let occupant = Occupant::new(nick.to_owned(), me.clone(), handle, role, clean, occupant_id);
                let max = history.unwrap_or(config.history).min(config.history);
                Ok((room.join(occupant, created, max, since), Vec::new()))
            }
        }
    });
    match result {
        Ok((out, writes)) => {
            if let Err(e) = persist::apply(&ctx, writes).await {
                return s.send_error(&el, e);
            }
            deliver(Some(s), out);
        }
        Err(condition) => {
            // The error comes from the occupant JID the client addressed (§7.2.9).
            let mut reply = stanza::error_reply(&el, &StanzaError::new(condition));
            reply.set_attr("to", me.to_string());
            // The MUC payload goes back too (§7.2.9, RFC 6120 §8.3.1): clients match join errors by it.
            for x in el.children().filter(|c| c.is("x", NS_MUC)) {
                reply.push(x.clone());
            }
            s.send(&reply);
            muc.with_rooms(|rooms| {
                if rooms.get(room_name).is_some_and(Room::is_disposable) {
                    rooms.remove(room_name);
                }
            });
        }
    }
}

/// The entry checks of §7.2, in the order clients are told: a locked room does not exist yet for others
/// (§10.1.1), outcasts are forbidden (§7.2.7), members-only rooms want registration (§7.2.6), a password must
/// match (§7.2.5), a full room is unavailable except to admins and owners (§7.2.10).
fn entry_allowed(
    room: &Room,
    affiliation: Affiliation,
    password: Option<&str>,
    service_max: usize,
) -> Result<(), Condition> {
    if room.locked && affiliation != Affiliation::Owner {
        return Err(Condition::ItemNotFound);
    }
    if affiliation == Affiliation::Outcast {
        return Err(Condition::Forbidden);
    }
    if room.config.members_only && affiliation < Affiliation::Member {
        return Err(Condition::RegistrationRequired);
    }
    if let Some(secret) = &room.config.password {
        if affiliation != Affiliation::Owner && password != Some(secret.as_str()) {
            return Err(Condition::NotAuthorized);
        }
    }
    let max = room.config.max_users.min(service_max);
    if room.occupants.len() >= max && affiliation < Affiliation::Admin {
        return Err(Condition::ServiceUnavailable);
    }
    Ok(())
}

/// The role an occupant has, or would have on entering (for actors who are not in the room).
pub fn role_of(room: &Room, jid: &FullJid) -> Role {
    match room.by_jid(jid) {
        Some(i) => room.occupants[i].role(),
        None => Role::None,
    }
}
