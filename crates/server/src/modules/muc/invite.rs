//! Mediated invitations and declines (XEP-0045 §7.8.2, §7.8.3), and offline delivery to members: members of a
//! members-only persistent room who are not in it get each room message in their offline store.
//!
//! Offline delivery follows Prosody's mod_muc_offline_delivery (as Snikket runs it): the copy is the groupchat
//! message as occupants got it (from `room/nick`, with the room's stanza-id) addressed to the member's bare JID.
//! drupe stores it only when the member has no available resource, stamped with a XEP-0203 delay from the room,
//! and delivers it at their next login like any offline message; a member online elsewhere without joining the
//! room gets nothing (their client can catch up with the room's archive).

use std::sync::Arc;

use drupe_proto::delay::delay;
use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::xml::Element;
use drupe_proto::{ns, FullJid, Jid};
use drupe_store::OfflinePush;

use super::persist::{self, Write};
use super::roles::Affiliation;
use super::room::{Delivery, Payload, Room, NS_USER};
use crate::c2s::Session;
use crate::context::Context;
use crate::modules::{message, now_ms, target, Target};

/// A `<message/>` to the room with a muc#user `<invite/>` or `<decline/>`.
pub async fn handle(s: &mut Session, el: Element, me: &FullJid, room_name: &str) {
    let ctx = s.ctx.clone();
    let Some(x) = el.child("x", NS_USER) else { return };
    let mut sends: Vec<(String, Element)> = Vec::new();
    let mut writes = Vec::new();
    for invite in x.children().filter(|c| c.is("invite", NS_USER)) {
        match invitation(&ctx, me, room_name, invite) {
            Ok((to, m, w)) => {
                sends.push((to, m));
                writes.extend(w);
            }
            Err(c) => return s.send_error(&el, StanzaError::new(c)),
        }
    }
    for decline in x.children().filter(|c| c.is("decline", NS_USER)) {
        let Some(to) = decline.attr("to") else { return s.send_error(&el, Condition::BadRequest) };
        let mut d = Element::new("decline", NS_USER).with_attr("from", me.to_bare().to_string());
        if let Some(r) = decline.child("reason", NS_USER) {
            d.push(r.clone());
        }
        let m = Element::new("message", ns::CLIENT)
            .with_attr("from", ctx.muc.room_jid(room_name))
            .with_child(Element::new("x", NS_USER).with_child(d));
        sends.push((to.to_owned(), m));
    }
    if sends.is_empty() {
        return s.send_error(&el, Condition::BadRequest);
    }
    if let Err(e) = persist::apply(&ctx, writes).await {
        return s.send_error(&el, e);
    }
    for (to, mut m) in sends {
        if let Some(id) = el.attr("id") {
            m.set_attr("id", id);
        }
        if let Err(e) = send_to_user(&ctx, &to, m).await {
            return s.send_error(&el, e);
        }
    }
}

/// One invitation: the room's message to the invitee and, in a members-only room, the invitee's membership.
fn invitation(
    ctx: &Context,
    me: &FullJid,
    room_name: &str,
    invite: &Element,
) -> Result<(String, Element, Vec<Write>), Condition> {
    let to = invite.attr("to").and_then(|t| Jid::new(t).ok()).ok_or(Condition::BadRequest)?;
    let invitee = to.to_bare().to_string();
    ctx.muc.with_rooms(|rooms| {
        let room = rooms.get_mut(room_name).ok_or(Condition::ItemNotFound)?;
        let i = room.by_jid(me).ok_or(Condition::NotAcceptable)?;
        let mut writes = Vec::new();
        if room.config.members_only {
            let inviter = room.affiliation_of(i);
            if inviter < Affiliation::Admin && !(room.config.allow_invites && inviter >= Affiliation::Member) {
                return Err(Condition::Forbidden);
            }
            // §7.8.2: in a members-only room the invitee becomes a member, so they can enter.
            if room.affiliation(&invitee) == Affiliation::None {
                room.grant(&invitee, Affiliation::Member);
                if room.config.persistent {
                    writes.push(persist::affiliation(room, &invitee, Affiliation::Member));
                }
            }
        }
        let mut inv = Element::new("invite", NS_USER).with_attr("from", me.to_string());
        if let Some(r) = invite.child("reason", NS_USER) {
            inv.push(r.clone());
        }
        let mut ux = Element::new("x", NS_USER).with_child(inv);
        if let Some(p) = room.config.password.as_deref() {
            ux.push(Element::new("password", NS_USER).with_text(p));
        }
        let m = Element::new("message", ns::CLIENT).with_attr("from", room.jid.as_str()).with_child(ux);
        Ok((to.to_string(), m, writes))
    })
}

/// Hands a message from the room to a local user (invitations and declines are normal messages: stored offline
/// when the user is away).
async fn send_to_user(ctx: &Context, to: &str, mut m: Element) -> Result<(), StanzaError> {
    let jid = Jid::new(to).map_err(|_| StanzaError::new(Condition::JidMalformed))?;
    m.set_attr("to", to);
    match target(ctx, Some(&jid)) {
        Target::Bare(user) => message::deliver_to_account(ctx, &user, None, m, message::Fresh::Yes(None)).await,
        Target::Full(user, res) => {
            message::deliver_to_account(ctx, &user, Some(&res), m, message::Fresh::Yes(None)).await
        }
        Target::Remote => Err(StanzaError::new(Condition::RemoteServerNotFound)),
        _ => Err(StanzaError::new(Condition::BadRequest)),
    }
}

/// The members of a members-only persistent room who are not in it, with the copy of the message (the first
/// shared delivery of `out`) they are to get. Only local accounts.
pub fn absent_members(room: &Room, out: &[Delivery], domain: &str, enabled: bool) -> Vec<(String, Element)> {
    if !enabled || !room.config.members_only || !room.config.persistent {
        return Vec::new();
    }
    let Some(message) = out.iter().find_map(|(_, p)| match p {
        Payload::Shared(p, _) => Some(&p.element),
        Payload::One(_) => None,
    }) else {
        return Vec::new();
    };
    if !super::archive::historic(message) {
        return Vec::new();
    }
    let present: std::collections::HashSet<String> = room.occupants.iter().map(|o| o.bare().to_owned()).collect();
    room.affiliations()
        .iter()
        .filter(|(jid, a)| **a >= Affiliation::Member && !present.contains(jid.as_str()))
        .filter_map(|(jid, _)| {
            let (user, d) = jid.split_once('@')?;
            (d == domain).then(|| (user.to_owned(), message.clone().with_attr("to", jid.as_str())))
        })
        .collect()
}

/// Stores each absent member's copy unless they are online; the writes share one group commit.
pub async fn deliver_offline(ctx: &Arc<Context>, copies: Vec<(String, Element)>) {
    let mut tasks = tokio::task::JoinSet::new();
    for (user, mut m) in copies {
        if !ctx.router.available(&user).is_empty() {
            continue;
        }
        let now = now_ms();
        let from = m.attr("from").and_then(|f| f.split('/').next()).unwrap_or_default().to_owned();
        m.push(delay(&from, now));
        let store = ctx.store.clone();
        let limit = ctx.config.limits.max_offline_messages;
        tasks.spawn(async move { (store.offline_push(&user, &m.to_xml(), now, limit).await, user) });
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((Ok(OfflinePush::Stored(_)), user)) => {
                // Came online while the write committed: have its sessions look again.
                for (_, h) in ctx.router.available(&user) {
                    let _ = h.send(crate::router::Outbound::OfflineStored);
                }
            }
            Ok((Ok(OfflinePush::Full), _)) => tracing::debug!("room message not stored offline: store full"),
            Ok((Err(e), _)) => tracing::warn!(error = %e, "room message not stored offline"),
            Err(_) => {}
        }
    }
}
