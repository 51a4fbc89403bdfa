//! Voice requests (XEP-0045 §7.13, §8.6): a visitor in a moderated room asks for voice with a `muc#request` form;
//! every moderator gets the form to approve; an approval submitted back makes the visitor a participant.

use drupe_proto::dataform::{self, NS as XDATA};
use drupe_proto::error::Condition;
use drupe_proto::xml::Element;
use drupe_proto::{ns, FullJid};

use super::presence::role_of;
use super::roles::{may_set_role, Role};
use super::room::{Delivery, Payload};
use super::{deliver, error};
use crate::c2s::Session;

pub const NS_REQUEST: &str = "http://jabber.org/protocol/muc#request";

/// Whether a message carries a `muc#request` form.
pub fn is_request(el: &Element) -> bool {
    el.child("x", XDATA).and_then(dataform::form_type).as_deref() == Some(NS_REQUEST)
}

fn value(var: &str, kind: &str, label: &str, v: &str) -> Element {
    dataform::field(var, kind).with_attr("label", label).with_child(Element::new("value", XDATA).with_text(v))
}

pub fn handle(s: &mut Session, el: &Element, me: &FullJid, room_name: &str) {
    let Some(x) = el.child("x", XDATA) else { return };
    let fields = dataform::fields(x);
    let get = |var: &str| fields.iter().find(|(v, _)| v == var).and_then(|(_, vals)| vals.first().cloned());
    let ctx = s.ctx.clone();
    let out: Result<Vec<Delivery>, Condition> = ctx.muc.with_rooms(|rooms| {
        let room = rooms.get_mut(room_name).ok_or(Condition::ItemNotFound)?;
        let i = room.by_jid(me).ok_or(Condition::NotAcceptable)?;
        match get("muc#request_allow") {
            // A moderator's answer (§8.6).
            Some(allow) => {
                let nick = get("muc#roomnick").ok_or(Condition::BadRequest)?;
                if !matches!(allow.as_str(), "1" | "true") {
                    return Ok(Vec::new());
                }
                let j = room.by_nick(&nick).ok_or(Condition::ItemNotFound)?;
                let actor = (room.affiliation_of(i), role_of(room, me));
                may_set_role(actor, room.affiliation_of(j), Role::Participant)?;
                if room.occupants[j].role() != Role::Visitor {
                    return Ok(Vec::new());
                }
                let by = room.occupants[i].nick().to_owned();
                Ok(room.set_role(j, Role::Participant, Some(&by), None))
            }
            // A visitor's request (§7.13): the approval form to every moderator.
            None => {
                if room.occupants[i].role() != Role::Visitor {
                    return Ok(Vec::new());
                }
                let o = &room.occupants[i];
                let form = dataform::form("form", NS_REQUEST)
                    .with_child(Element::new("title", XDATA).with_text("Voice request"))
                    .with_child(value("muc#role", "list-single", "Requested role", "participant"))
                    .with_child(value("muc#jid", "jid-single", "User ID", &o.jid.to_string()))
                    .with_child(value("muc#roomnick", "text-single", "Room nickname", o.nick()))
                    .with_child(value("muc#request_allow", "boolean", "Grant voice to this person?", "false"));
                let message = Element::new("message", ns::CLIENT)
                    .with_attr("from", room.jid.as_str())
                    .with_attr("id", crate::context::random_token(12))
                    .with_child(form);
                Ok(room
                    .occupants
                    .iter()
                    .filter(|m| m.role() == Role::Moderator)
                    .map(|m| (m.handle.clone(), Payload::One(message.clone().with_attr("to", m.jid.to_string()))))
                    .collect())
            }
        }
    });
    match out {
        Ok(out) => deliver(Some(s), out),
        Err(c) => error(s, el, c),
    }
}
