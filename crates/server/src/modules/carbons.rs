//! XEP-0280 Message Carbons: every resource that enabled carbons gets a copy of the chat messages its account
//! sends and receives on other resources; XEP-0334 `<no-copy/>` and the carbons `<private/>` element opt out.

use drupe_proto::error::Condition;
use drupe_proto::stanza;
use drupe_proto::xml::Element;

use crate::c2s::Session;
use crate::context::Context;
use crate::router::Outbound;

pub const NS: &str = "urn:xmpp:carbons:2";
const FORWARD: &str = "urn:xmpp:forward:0";
const HINTS: &str = "urn:xmpp:hints";

/// `<enable/>` / `<disable/>` (XEP-0280 §4-5).
pub fn handle(s: &mut Session, iq: &Element) {
    let (Some(user), Some(jid)) = (s.user.clone(), s.jid.clone()) else { return };
    let enabled = match iq.first_child().map(Element::name) {
        Some("enable") => true,
        Some("disable") => false,
        _ => return s.send_error(iq, Condition::BadRequest),
    };
    if iq.attr("type") != Some("set") {
        return s.send_error(iq, Condition::BadRequest);
    }
    s.ctx.router.set_carbons(&user, jid.resource().as_str(), s.id, enabled);
    s.send(&stanza::iq_result(iq, None));
}

/// Whether a message is copied (XEP-0280 §6): chat messages, and normal messages with a body or a XEP-0353 call
/// set-up (so the caller's and callee's other devices stop ringing), unless marked.
fn eligible(el: &Element) -> bool {
    let kind = el.attr("type").unwrap_or("normal");
    let jmi = || el.children().any(|c| c.ns().starts_with("urn:xmpp:jingle-message:"));
    let by_type =
        kind == "chat" || (kind == "normal" && (el.child("body", drupe_proto::ns::CLIENT).is_some() || jmi()));
    by_type && el.child("private", NS).is_none() && el.child("no-copy", HINTS).is_none()
}

fn wrap(direction: &str, user_bare: &str, to: &str, el: &Element) -> Element {
    Element::new("message", drupe_proto::ns::CLIENT)
        .with_attr("from", user_bare)
        .with_attr("to", to)
        .with_attr("type", el.attr("type").unwrap_or("normal"))
        .with_child(Element::new(direction, NS).with_child(Element::new("forwarded", FORWARD).with_child(el.clone())))
}

/// Copies of a message `user` received to its carbons-enabled resources other than `delivered_to` (session ids).
pub fn received(ctx: &Context, user: &str, el: &Element, delivered_to: &[u64]) {
    copy(ctx, user, el, "received", delivered_to);
}

/// Copies of a message `user` sent from session `sender` to its other carbons-enabled resources.
pub fn sent(ctx: &Context, user: &str, el: &Element, sender: u64) {
    copy(ctx, user, el, "sent", &[sender]);
}

fn copy(ctx: &Context, user: &str, el: &Element, direction: &str, skip: &[u64]) {
    if !eligible(el) {
        return;
    }
    let bare = format!("{user}@{}", ctx.domain());
    for (resource, handle) in ctx.router.carbons(user) {
        if !skip.contains(&handle.id) {
            let to = format!("{bare}/{resource}");
            let _ = handle.send(Outbound::Stanza(wrap(direction, &bare, &to, el).into()));
        }
    }
}
