//! XEP-0163 Personal Eventing Protocol: every account's bare JID is a XEP-0060 PubSub service whose nodes the
//! account owns. Publishing auto-creates a node (with XEP-0060 §7.1.5 publish-options as preconditions), contacts
//! are subscribed through their presence subscription and XEP-0115 `+notify` caps, and items live in the store.
//!
//! `mod.rs` dispatches the `pubsub` and `pubsub#owner` payloads; `items.rs` publishes, retracts and reads items,
//! `owner.rs` creates, configures, purges and deletes nodes, `access.rs` decides who may read, `notify.rs` sends
//! events, `caps.rs` verifies entity capabilities, `bookmarks.rs` keeps XEP-0402 and XEP-0048 bookmarks in sync,
//! `avatar.rs` converts between XEP-0084 avatars and vCard photos (XEP-0398, XEP-0153), `vcard4.rs` between
//! vcard-temp and XEP-0292 vCard4.

pub mod access;
pub mod avatar;
pub mod bookmarks;
pub mod caps;
pub mod items;
pub mod node_config;
pub mod notify;
pub mod owner;
pub mod vcard4;

use std::collections::HashMap;
use std::sync::Mutex;

use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::stanza;
use drupe_proto::xml::Element;

use crate::c2s::Session;
use crate::config::Pubsub as PubsubConfig;

pub const NS: &str = "http://jabber.org/protocol/pubsub";
pub const NS_OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
pub const NS_EVENT: &str = "http://jabber.org/protocol/pubsub#event";
pub const NS_ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";

/// What PEP keeps in memory, shared by every session: verified caps and each account's avatar hash.
pub struct Pep {
    pub caps: caps::Caps,
    /// user → the XEP-0153 photo hash to stamp on its presence (`Some("")`: no avatar); absent: not loaded yet.
    avatars: Mutex<HashMap<String, Option<String>>>,
}

impl Pep {
    pub fn new(config: &PubsubConfig) -> Pep {
        Pep { caps: caps::Caps::new(config.caps_cache_size), avatars: Mutex::new(HashMap::new()) }
    }
}

/// Why a PubSub request failed: a plain stanza error, or one with a `pubsub#errors` condition (XEP-0060 §7, §8).
#[derive(Debug)]
pub enum Fail {
    Plain(StanzaError),
    App(Condition, &'static str),
    /// `feature-not-implemented` with `<unsupported feature='…'/>`.
    Unsupported(&'static str),
}

impl From<Condition> for Fail {
    fn from(c: Condition) -> Fail {
        Fail::Plain(StanzaError::new(c))
    }
}

impl Fail {
    pub fn store(e: drupe_store::StoreError) -> Fail {
        Fail::Plain(crate::modules::store_failure(e))
    }

    /// The error reply to `iq`.
    pub fn reply(&self, iq: &Element) -> Element {
        let (error, app) = match self {
            Fail::Plain(e) => (e.clone(), None),
            Fail::App(c, name) => (StanzaError::new(*c), Some(Element::new(*name, NS_ERRORS))),
            Fail::Unsupported(feature) => (
                StanzaError::new(Condition::FeatureNotImplemented),
                Some(Element::new("unsupported", NS_ERRORS).with_attr("feature", *feature)),
            ),
        };
        let mut reply = stanza::error_reply(iq, &error);
        if let (Some(app), Some(el)) = (app, reply.child_mut("error", drupe_proto::ns::CLIENT)) {
            el.push(app);
        }
        reply
    }
}

/// Who sent a request: the local user, its bare and full JIDs.
pub struct Requester {
    pub user: String,
    pub bare: String,
    pub full: String,
}

impl Requester {
    fn of(s: &Session) -> Option<Requester> {
        let jid = s.jid.as_ref()?;
        Some(Requester { user: s.user.clone()?, bare: jid.to_bare().to_string(), full: jid.to_string() })
    }
}

/// A `pubsub` or `pubsub#owner` IQ addressed to `owner`'s bare JID (or to the sender's own account).
pub async fn handle(s: &mut Session, iq: Element, owner: &str) {
    let Some(me) = Requester::of(s) else { return };
    let outcome = match iq.first_child() {
        Some(p) if p.ns() == NS => user_request(s, &iq, p, owner, &me).await,
        Some(p) => owner::handle(&s.ctx, &iq, p, owner, &me).await,
        None => Err(Condition::BadRequest.into()),
    };
    let mut reply = match outcome {
        Ok(payload) => stanza::iq_result(&iq, payload),
        Err(fail) => fail.reply(&iq),
    };
    reply.set_attr("to", me.full.as_str());
    s.send(&reply);
}

/// XEP-0060 §6 and §7: the `<pubsub/>` payload.
async fn user_request(
    s: &mut Session,
    iq: &Element,
    pubsub: &Element,
    owner: &str,
    me: &Requester,
) -> Result<Option<Element>, Fail> {
    let kind = iq.attr("type").unwrap_or_default();
    let Some(action) = pubsub.children().find(|c| c.name() != "publish-options" && c.name() != "configure") else {
        return Err(Condition::BadRequest.into());
    };
    match (kind, action.name()) {
        ("set", "publish") => items::publish_request(&s.ctx, pubsub, action, owner, me).await,
        ("set", "retract") => items::retract_request(&s.ctx, action, owner, me).await,
        ("get", "items") => items::items_request(&s.ctx, pubsub, action, owner, me).await,
        ("set", "create") => owner::create_request(&s.ctx, pubsub, action, owner, me).await,
        ("set", "subscribe" | "unsubscribe") | ("get" | "set", "options") => Err(Fail::Unsupported("subscribe")),
        // PEP subscriptions are implicit (presence + caps): nobody holds an explicit one.
        ("get", "subscriptions") => Ok(Some(Element::new("pubsub", NS).with_child(Element::new("subscriptions", NS)))),
        ("get", "affiliations") => Err(Fail::Unsupported("retrieve-affiliations")),
        _ => Err(Condition::BadRequest.into()),
    }
}

/// The `node` attribute, required by every node operation (XEP-0060 §7.1.3.3 `nodeid-required`).
pub fn node_of(el: &Element) -> Result<&str, Fail> {
    el.attr("node").filter(|n| !n.is_empty()).ok_or(Fail::App(Condition::BadRequest, "nodeid-required"))
}

/// The features PEP adds to its account's disco#info (XEP-0163 §4.2, XEP-0060 §10).
pub const FEATURES: &[&str] = &[
    NS,
    "http://jabber.org/protocol/pubsub#access-open",
    "http://jabber.org/protocol/pubsub#access-presence",
    "http://jabber.org/protocol/pubsub#access-whitelist",
    "http://jabber.org/protocol/pubsub#auto-create",
    "http://jabber.org/protocol/pubsub#auto-subscribe",
    "http://jabber.org/protocol/pubsub#config-node",
    // `pubsub#max_items` may be "max" (XEP-0060 §16.4.4; Converse.js asks for it when advertised).
    "http://jabber.org/protocol/pubsub#config-node-max",
    "http://jabber.org/protocol/pubsub#create-and-configure",
    "http://jabber.org/protocol/pubsub#create-nodes",
    "http://jabber.org/protocol/pubsub#delete-items",
    "http://jabber.org/protocol/pubsub#delete-nodes",
    "http://jabber.org/protocol/pubsub#filtered-notifications",
    "http://jabber.org/protocol/pubsub#item-ids",
    "http://jabber.org/protocol/pubsub#last-published",
    "http://jabber.org/protocol/pubsub#modify-affiliations",
    "http://jabber.org/protocol/pubsub#multi-items",
    "http://jabber.org/protocol/pubsub#persistent-items",
    "http://jabber.org/protocol/pubsub#presence-notifications",
    "http://jabber.org/protocol/pubsub#publish",
    "http://jabber.org/protocol/pubsub#publish-options",
    "http://jabber.org/protocol/pubsub#purge-nodes",
    "http://jabber.org/protocol/pubsub#retract-items",
    "http://jabber.org/protocol/pubsub#retrieve-default",
    "http://jabber.org/protocol/pubsub#retrieve-items",
    "http://jabber.org/protocol/pubsub#rsm",
    bookmarks::COMPAT,
    bookmarks::COMPAT_PEP,
    avatar::CONVERSION,
];

/// Available presence from a session (RFC 6121 §4.2): records its XEP-0115 caps; an unknown `ver` is asked for
/// (disco#info from the account's bare JID to the resource), a known one delivers the last items it wants.
pub async fn presence_available(s: &mut Session, presence: &Element) {
    let (Some(user), Some(jid)) = (s.user.clone(), s.jid.clone()) else { return };
    let full = jid.to_string();
    let c = presence.child("c", caps::NS);
    match s.ctx.pep.caps.announce(&user, &full, jid.resource().as_str(), s.id, c) {
        caps::Announced::Known { features, changed: true } => {
            let ctx = s.ctx.clone();
            for message in notify::last_items(&ctx, &user, &full, &features, None).await {
                s.send(&message);
            }
        }
        caps::Announced::Query(mut iq) => {
            iq.set_attr("from", jid.to_bare().to_string());
            s.send(&iq);
        }
        _ => {}
    }
}

/// The session went unavailable (or ended): its caps no longer count; the avatar hash is dropped with the
/// account's last session.
pub fn went_unavailable(ctx: &crate::context::Context, user: &str, resource: &str, session: u64) {
    ctx.pep.caps.forget(user, resource, session);
    if ctx.router.bound(user).iter().all(|h| h.id == session) {
        avatar::forget(ctx, user);
    }
}

/// An IQ result or error from a client to the server or an account: the answer to a caps query of ours is verified
/// (and, if it matches its `ver`, cached; then the resources waiting for it get their last items). Anything else
/// is dropped (RFC 6120 §8.2.3).
pub async fn iq_response(s: &mut Session, iq: &Element) {
    let (Some(user), Some(jid)) = (s.user.clone(), s.jid.clone()) else { return };
    let Some(resolved) = s.ctx.pep.caps.answer(iq, &user, jid.resource().as_str(), s.id) else { return };
    let ctx = s.ctx.clone();
    for r in resolved {
        let full = format!("{}@{}/{}", r.user, ctx.domain(), r.resource);
        let messages = notify::last_items(&ctx, &r.user, &full, &r.features, None).await;
        if r.session == s.id {
            for message in &messages {
                s.send(message);
            }
        } else if let Some(handle) = ctx.router.handle(&r.user, &r.resource).filter(|h| h.id == r.session) {
            for message in messages {
                let _ = handle.send(crate::router::Outbound::Stanza(message.into()));
            }
        }
    }
}

/// The account `to` names (none: the sender's own).
fn addressed_account(s: &Session, iq: &Element) -> Option<String> {
    match drupe_proto::stanza::jid_attr(iq, "to") {
        Ok(None) => s.user.clone(),
        Ok(Some(to)) => to.node().map(|n| n.to_string()),
        Err(()) => None,
    }
}

/// XEP-0030 disco#items on an account (XEP-0060 §5.2): the nodes the requester may see.
pub async fn disco_items(s: &mut Session, iq: &Element, owner: &str) {
    let Some(me) = Requester::of(s) else { return };
    let ctx = s.ctx.clone();
    let owner_bare = format!("{owner}@{}", ctx.domain());
    let mut query = Element::new("query", drupe_proto::ns::DISCO_ITEMS);
    let node = iq.first_child().and_then(|q| q.attr("node"));
    let nodes = match ctx.store.pubsub_nodes(owner).await {
        Ok(nodes) => nodes,
        Err(e) => return s.send_error(iq, crate::modules::store_failure(e)),
    };
    if let Some(node) = node {
        // A leaf node has no child nodes; its items are read with `<items/>`.
        query.set_attr("node", node);
        let found = nodes.iter().find(|(n, _)| n == node);
        let readable = match found {
            Some((_, c)) => access::may_read(&ctx, owner, &me.user, &me.bare, node, c).await.is_ok(),
            None => false,
        };
        if !readable {
            return s.send_error(iq, Condition::ItemNotFound);
        }
    } else {
        for (node, config) in &nodes {
            if access::may_read(&ctx, owner, &me.user, &me.bare, node, config).await.is_ok() {
                let mut item = Element::new("item", drupe_proto::ns::DISCO_ITEMS)
                    .with_attr("jid", owner_bare.as_str())
                    .with_attr("node", node.as_str());
                if let Some(title) = &config.title {
                    item.set_attr("name", title.as_str());
                }
                query.push(item);
            }
        }
    }
    s.send(&stanza::iq_result(iq, Some(query)));
}

/// XEP-0030 disco#info on one of an account's nodes (XEP-0060 §5.3/§5.4): a leaf with its metadata.
pub async fn disco_node_info(s: &mut Session, iq: &Element) {
    let (Some(me), Some(owner)) = (Requester::of(s), addressed_account(s, iq)) else {
        return s.send_error(iq, Condition::ItemNotFound);
    };
    let Some(node) = iq.first_child().and_then(|q| q.attr("node")).map(str::to_owned) else { return };
    let ctx = s.ctx.clone();
    let config = match ctx.store.pubsub_node(&owner, &node).await {
        Ok(Some(config)) => config,
        Ok(None) => return s.send_error(iq, Condition::ItemNotFound),
        Err(e) => return s.send_error(iq, crate::modules::store_failure(e)),
    };
    if let Err(fail) = access::may_read(&ctx, &owner, &me.user, &me.bare, &node, &config).await {
        let mut reply = fail.reply(iq);
        reply.set_attr("to", me.full.as_str());
        return s.send(&reply);
    }
    let info = drupe_proto::ns::DISCO_INFO;
    let query = Element::new("query", info)
        .with_attr("node", node.as_str())
        .with_child(Element::new("identity", info).with_attr("category", "pubsub").with_attr("type", "leaf"))
        .with_child(Element::new("feature", info).with_attr("var", NS))
        .with_child(node_config::render(&config, "result", "http://jabber.org/protocol/pubsub#meta-data"));
    s.send(&stanza::iq_result(iq, Some(query)));
}
