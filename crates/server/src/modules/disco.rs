//! XEP-0030 Service Discovery: what the server and its accounts are and support.

use drupe_proto::error::Condition;
use drupe_proto::xml::Element;
use drupe_proto::{ns, stanza};

use super::{mam, store_failure, target, Target};
use crate::c2s::Session;

fn identity(category: &str, kind: &str, name: Option<&str>) -> Element {
    let mut el = Element::new("identity", ns::DISCO_INFO).with_attr("category", category).with_attr("type", kind);
    if let Some(name) = name {
        el.set_attr("name", name);
    }
    el
}

fn feature(var: &str) -> Element {
    Element::new("feature", ns::DISCO_INFO).with_attr("var", var)
}

fn has_node(iq: &Element) -> bool {
    iq.first_child().is_some_and(|q| q.attr("node").is_some())
}

pub fn server_info(s: &mut Session, iq: &Element) {
    if has_node(iq) {
        return s.send_error(iq, Condition::ItemNotFound);
    }
    let mut query = Element::new("query", ns::DISCO_INFO).with_child(identity("server", "im", Some("drupe")));
    let mut features =
        vec![ns::DISCO_INFO, ns::DISCO_ITEMS, ns::PING, ns::ROSTER, super::carbons::NS, super::blocking::NS];
    if !s.ctx.config.server.hide_version {
        features.push(ns::VERSION);
    }
    features.extend([super::vcard::NS, super::private::NS]);
    if super::extdisco::enabled(&s.ctx.config.turn) {
        features.push(super::extdisco::NS);
    }
    for f in features {
        query.push(feature(f));
    }
    s.send(&stanza::iq_result(iq, Some(query)));
}

/// Info about an account (RFC 6121 §8.5.1 / XEP-0030 §3): the same answer for existing accounts as the server
/// gives to strangers would reveal nothing, so only the account itself and its contacts with a subscription learn
/// that it exists.
pub async fn account_info(s: &mut Session, iq: &Element, own: bool) {
    if has_node(iq) {
        // XEP-0060 §5.3: a PEP node's metadata.
        return super::pep::disco_node_info(s, iq).await;
    }
    let visible = if own {
        true
    } else {
        let to = drupe_proto::stanza::jid_attr(iq, "to").ok().flatten();
        let (Some(me), Target::Bare(user)) = (s.user.clone(), target(&s.ctx, to.as_ref())) else {
            return s.send_error(iq, Condition::ServiceUnavailable);
        };
        let my_bare = format!("{me}@{}", s.ctx.domain());
        match s.ctx.store.roster_item(&user, &my_bare).await {
            Ok(Some(item)) => {
                matches!(item.subscription, drupe_store::Subscription::From | drupe_store::Subscription::Both)
            }
            Ok(None) => false,
            Err(e) => return s.send_error(iq, store_failure(e)),
        }
    };
    if !visible {
        return s.send_error(iq, Condition::ServiceUnavailable);
    }
    let mut query = Element::new("query", ns::DISCO_INFO)
        .with_child(identity("account", "registered", None))
        .with_child(identity("pubsub", "pep", None))
        .with_child(feature(ns::DISCO_INFO))
        .with_child(feature(ns::DISCO_ITEMS));
    // XEP-0163 §4.2: the account's PEP service.
    for f in super::pep::FEATURES {
        query.push(feature(f));
    }
    if own && s.ctx.config.archive.enabled {
        for f in [mam::NS, mam::NS_EXTENDED, mam::SID, mam::FULLTEXT] {
            query.push(feature(f));
        }
    }
    s.send(&stanza::iq_result(iq, Some(query)));
}

/// No items yet: components (MUC, upload) will appear here when they exist.
pub fn items(s: &mut Session, iq: &Element) {
    if has_node(iq) {
        return s.send_error(iq, Condition::ItemNotFound);
    }
    let mut query = Element::new("query", ns::DISCO_ITEMS);
    if iq.attr("to").is_none_or(|to| to.eq_ignore_ascii_case(s.ctx.domain())) {
        query.push(
            Element::new("item", ns::DISCO_ITEMS)
                .with_attr("jid", s.ctx.muc.domain.as_str())
                .with_attr("name", "Chatrooms"),
        );
        if super::upload::offered(&s.ctx) {
            query.push(
                Element::new("item", ns::DISCO_ITEMS)
                    .with_attr("jid", s.ctx.upload.domain.as_str())
                    .with_attr("name", "HTTP File Upload"),
            );
        }
    }
    s.send(&stanza::iq_result(iq, Some(query)));
}
