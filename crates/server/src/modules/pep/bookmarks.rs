//! XEP-0402 PEP Native Bookmarks, kept in sync with XEP-0048 bookmarks stored through XEP-0049 private XML or the
//! legacy `storage:bookmarks` PEP node (XEP-0411). The `urn:xmpp:bookmarks:1` node is the truth (one item per room,
//! id = room JID); the legacy `<storage/>` is generated from it on read and converted into it on write, as
//! Prosody's mod_bookmarks does.

use std::collections::HashMap;
use std::sync::Arc;

use drupe_proto::error::Condition;
use drupe_proto::xml::Element;
use drupe_store::{AccessModel, ItemsQuery, NodeConfig, SendLast};

use super::{items, notify, Fail, NS_EVENT};
use crate::context::Context;
use crate::router::Prepared;

pub const NS: &str = "urn:xmpp:bookmarks:1";
pub const NS_LEGACY: &str = "storage:bookmarks";
pub const COMPAT: &str = "urn:xmpp:bookmarks:1#compat";
pub const COMPAT_PEP: &str = "urn:xmpp:bookmarks:1#compat-pep";

/// XEP-0402 §3: the node is private, keeps every bookmark, and sends nothing on login.
fn node_config(ctx: &Context) -> NodeConfig {
    NodeConfig {
        access_model: AccessModel::Whitelist,
        persist_items: true,
        max_items: ctx.config.pubsub.max_items_per_node,
        send_last: SendLast::Never,
        ..NodeConfig::default()
    }
}

/// The owner's XEP-0402 bookmarks: room JID → `<conference/>`.
async fn current(ctx: &Context, owner: &str) -> Result<Vec<(String, Element)>, Fail> {
    let query = ItemsQuery { max: ctx.config.pubsub.max_items_per_node as usize, ..Default::default() };
    let page = match ctx.store.pubsub_items(owner, NS, &query).await {
        Ok(page) => page,
        Err(e) => return Err(Fail::store(e)),
    };
    Ok(page
        .items
        .into_iter()
        .filter_map(|item| Element::parse(&item.payload).filter(|c| c.is("conference", NS)).map(|c| (item.id, c)))
        .collect())
}

fn text_child(from: &Element, name: &str, ns: &str, to_ns: &'static str) -> Option<Element> {
    from.child(name, ns).map(|c| Element::new(name, to_ns).with_text(c.text()))
}

/// XEP-0048 `<storage/>` generated from the XEP-0402 items.
pub async fn legacy_storage(ctx: &Context, owner: &str) -> Result<Element, Fail> {
    let mut storage = Element::new("storage", NS_LEGACY);
    for (jid, c) in current(ctx, owner).await? {
        let mut conference = Element::new("conference", NS_LEGACY).with_attr("jid", jid);
        for attr in ["name", "autojoin"] {
            if let Some(v) = c.attr(attr) {
                conference.set_attr(attr, v);
            }
        }
        for name in ["nick", "password"] {
            if let Some(el) = text_child(&c, name, NS, NS_LEGACY) {
                conference.push(el);
            }
        }
        storage.push(conference);
    }
    Ok(storage)
}

/// One legacy `<conference/>` as a XEP-0402 `<conference/>` (autojoin normalised to the boolean the XEP allows).
fn convert(legacy: &Element) -> Element {
    let mut c = Element::new("conference", NS);
    if let Some(name) = legacy.attr("name") {
        c.set_attr("name", name);
    }
    if matches!(legacy.attr("autojoin"), Some("1" | "true")) {
        c.set_attr("autojoin", "true");
    }
    for name in ["nick", "password"] {
        if let Some(el) = text_child(legacy, name, NS_LEGACY, NS) {
            c.push(el);
        }
    }
    c
}

/// Replaces the XEP-0402 bookmarks with those of a legacy `<storage/>`: publishes new and changed rooms, retracts
/// rooms no longer listed.
pub async fn store_legacy(ctx: &Context, owner: &str, publisher: &str, storage: &Element) -> Result<(), Fail> {
    if !storage.is("storage", NS_LEGACY) {
        return Err(Fail::App(Condition::BadRequest, "invalid-payload"));
    }
    let desired = node_config(ctx);
    match ctx.store.pubsub_node(owner, NS).await.map_err(Fail::store)? {
        Some(config) if config != desired => {
            ctx.store.pubsub_node_configure(owner, NS, &desired).await.map_err(Fail::store)?;
        }
        _ => {}
    }
    let mut existing: HashMap<String, Element> = current(ctx, owner).await?.into_iter().collect();
    for legacy in storage.children().filter(|c| c.is("conference", NS_LEGACY)) {
        let Some(jid) = legacy.attr("jid").filter(|j| drupe_proto::BareJid::new(j).is_ok()) else { continue };
        let conference = convert(legacy);
        if existing.remove(jid).as_ref() == Some(&conference) {
            continue;
        }
        let options = items::Options { create: desired.clone(), preconditions: None, from_client: false };
        items::publish(ctx, owner, publisher, NS, Some(jid), conference, options).await?;
    }
    for jid in existing.keys() {
        items::retract(ctx, owner, NS, jid, Some(true)).await?;
    }
    Ok(())
}

/// XEP-0411: every change of the XEP-0402 node is also announced as the legacy PEP node's `current` item, to the
/// owner's resources that want it (never to contacts).
pub async fn legacy_broadcast(ctx: &Context, owner: &str) {
    let feature = format!("{NS_LEGACY}+notify");
    if ctx.pep.caps.wanting(owner, &feature).is_empty() {
        return;
    }
    let Ok(storage) = legacy_storage(ctx, owner).await else { return };
    let item = Element::new("item", NS_EVENT).with_attr("id", "current").with_child(storage);
    let items = Element::new("items", NS_EVENT).with_attr("node", NS_LEGACY).with_child(item);
    let owner_bare = format!("{owner}@{}", ctx.domain());
    let prepared = Arc::new(Prepared::new(notify::event_message(&owner_bare, items)));
    notify::to_resources(ctx, owner, &feature, &prepared);
}
