//! XEP-0191 Blocking Command: block/unblock/list with pushes to the account's resources, and the checks that keep
//! a blocked entity's stanzas out (applied before anything is archived or stored offline).
//!
//! Each account's list is cached in memory after its first use (the store is the truth; the cache is replaced on
//! every change), so the per-stanza check is a map lookup.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::xml::Element;
use drupe_proto::{ns, stanza, Jid};

use super::{store_failure, Target};
use crate::c2s::Session;
use crate::context::Context;
use crate::router::Outbound;

pub const NS: &str = "urn:xmpp:blocking";
const ERRORS_NS: &str = "urn:xmpp:blocking:errors";

#[derive(Default)]
pub struct Blocklists {
    cache: Mutex<HashMap<String, Arc<[String]>>>,
}

impl Blocklists {
    fn cached(&self, user: &str) -> Option<Arc<[String]>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(user).cloned()
    }

    fn set(&self, user: &str, list: Vec<String>) -> Arc<[String]> {
        let list: Arc<[String]> = list.into();
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(user.to_owned(), list.clone());
        list
    }
}

/// The account's block list (from the cache, or loaded once).
pub async fn list(ctx: &Context, user: &str) -> Arc<[String]> {
    if let Some(list) = ctx.blocklists.cached(user) {
        return list;
    }
    match ctx.store.blocklist(user).await {
        Ok(list) => ctx.blocklists.set(user, list),
        Err(e) => {
            tracing::error!(error = %e, "cannot read block list");
            Arc::from(Vec::new())
        }
    }
}

/// XEP-0016 style matching: an item blocks a full JID, a bare JID (any resource), a domain (anyone there) or a
/// domain/resource.
fn matches(item: &str, jid: &Jid) -> bool {
    let Ok(item) = Jid::new(item) else { return false };
    if item.domain() != jid.domain() {
        return false;
    }
    match (item.node(), item.resource()) {
        (Some(node), Some(res)) => jid.node() == Some(node) && jid.resource() == Some(res),
        (Some(node), None) => jid.node() == Some(node),
        (None, Some(res)) => jid.node().is_none() && jid.resource() == Some(res),
        (None, None) => true,
    }
}

/// Whether `user` blocks `jid`.
pub async fn blocks(ctx: &Context, user: &str, jid: &Jid) -> bool {
    let list = list(ctx, user).await;
    !list.is_empty() && list.iter().any(|item| matches(item, jid))
}

/// The error a user gets when addressing someone they blocked (XEP-0191 §3.3.1).
pub fn blocked_error() -> StanzaError {
    StanzaError::new(Condition::NotAcceptable)
}

/// Adds the `<blocked/>` application condition to an error reply.
pub fn mark_blocked(mut reply: Element) -> Element {
    if let Some(error) = reply.child_mut("error", ns::CLIENT) {
        error.push(Element::new("blocked", ERRORS_NS));
    }
    reply
}

/// Checks a message or IQ from a client against both parties' block lists (XEP-0191 §3.3.1-2). `Err` holds the
/// error reply to send instead of routing; nothing was archived or stored.
pub async fn check_outbound(s: &Session, el: &Element, to: Option<&Jid>, addressee: &Target) -> Result<(), Element> {
    let (Some(user), Some(me), Some(to)) = (s.user.as_deref(), s.jid.as_ref(), to) else { return Ok(()) };
    if stanza::is_error(el) {
        return Ok(());
    }
    if blocks(&s.ctx, user, to).await {
        return Err(mark_blocked(stanza::error_reply(el, &blocked_error())));
    }
    if let Target::Bare(contact) | Target::Full(contact, _) = addressee {
        if contact != user && blocks(&s.ctx, contact, &Jid::from(me.clone())).await {
            return Err(stanza::error_reply(el, &StanzaError::new(Condition::ServiceUnavailable)));
        }
    }
    Ok(())
}

pub async fn handle(s: &mut Session, iq: &Element) {
    let Some(user) = s.user.clone() else { return };
    let Some(payload) = iq.first_child() else { return };
    match (iq.attr("type"), payload.name()) {
        (Some("get"), "blocklist") => {
            let list = list(&s.ctx, &user).await;
            let mut el = Element::new("blocklist", NS);
            for jid in list.iter() {
                el.push(Element::new("item", NS).with_attr("jid", jid.as_str()));
            }
            s.send(&stanza::iq_result(iq, Some(el)));
        }
        (Some("set"), kind @ ("block" | "unblock")) => {
            let mut jids = Vec::new();
            for item in payload.children().filter(|c| c.is("item", NS)) {
                match item.attr("jid").map(Jid::new) {
                    Some(Ok(j)) => jids.push(j.to_string()),
                    _ => return s.send_error(iq, Condition::JidMalformed),
                }
            }
            if kind == "block" && jids.is_empty() {
                return s.send_error(iq, Condition::BadRequest);
            }
            let result = if kind == "block" {
                s.ctx.store.block(&user, &jids).await
            } else {
                s.ctx.store.unblock(&user, &jids).await
            };
            if let Err(e) = result {
                return s.send_error(iq, store_failure(e));
            }
            let fresh = match s.ctx.store.blocklist(&user).await {
                Ok(l) => l,
                Err(e) => return s.send_error(iq, store_failure(e)),
            };
            s.ctx.blocklists.set(&user, fresh);
            s.send(&stanza::iq_result(iq, None));
            if kind == "block" {
                super::presence::hide_from(s, &jids).await;
            }
            push(&s.ctx, &user, kind, &jids);
        }
        _ => s.send_error(iq, Condition::BadRequest),
    }
}

/// Tells every resource of the account about the change (XEP-0191 §3.2, §3.3).
fn push(ctx: &Context, user: &str, kind: &str, jids: &[String]) {
    let mut payload = Element::new(kind, NS);
    for jid in jids {
        payload.push(Element::new("item", NS).with_attr("jid", jid.as_str()));
    }
    super::push_to_resources(ctx, user, payload, Outbound::Stanza);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(item: &str, jid: &str) -> bool {
        matches(item, &Jid::new(jid).unwrap())
    }

    #[test]
    fn item_matching_follows_xep_0016() {
        assert!(m("a@x", "a@x"));
        assert!(m("a@x", "a@x/phone"));
        assert!(m("a@x/phone", "a@x/phone"));
        assert!(!m("a@x/phone", "a@x/pc"));
        assert!(!m("a@x/phone", "a@x"));
        assert!(m("x", "a@x/phone"));
        assert!(m("x", "x"));
        assert!(!m("x", "a@y"));
        assert!(!m("b@x", "a@x"));
        assert!(m("x/r", "x/r"));
        assert!(!m("x/r", "a@x/r"));
    }
}
