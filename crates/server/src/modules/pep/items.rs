//! XEP-0060 §7.1 publish (auto-create, publish-options), §7.2 retract and §6.5 items retrieval (all, by id,
//! `max_items`, XEP-0059 paging) on an account's PEP service, plus the same operations for the server's own use
//! (bookmark and avatar synchronisation).

use drupe_proto::error::Condition;
use drupe_proto::rsm;
use drupe_proto::xml::Element;
use drupe_store::{ItemsQuery, NodeConfig, Published, PubsubItem, StoreError};

use super::{access, avatar, bookmarks, node_config, node_of, notify, vcard4, Fail, Requester, NS, NS_EVENT};
use crate::context::Context;
use crate::modules::now_ms;

/// How a node is to be created if a publish finds none, which options must hold if it exists, and who asked.
pub struct Options<'a> {
    pub create: NodeConfig,
    /// A submitted `publish-options` form: its known fields must match an existing node's configuration.
    pub preconditions: Option<&'a Element>,
    /// The owner's client published it; server-side synchronisations (bookmarks, avatars) pass `false`, so they
    /// do not trigger each other again.
    pub from_client: bool,
}

/// Publishes `payload` to `owner`'s `node` as `publisher` and notifies. Returns the item id.
pub async fn publish(
    ctx: &Context,
    owner: &str,
    publisher: &str,
    node: &str,
    id: Option<&str>,
    payload: Element,
    options: Options<'_>,
) -> Result<String, Fail> {
    let limits = &ctx.config.pubsub;
    let serialized = payload.to_xml();
    if serialized.len() > limits.max_item_bytes {
        return Err(Fail::App(Condition::NotAcceptable, "payload-too-big"));
    }
    let existing = ctx.store.pubsub_node(owner, node).await.map_err(Fail::store)?;
    if let (Some(config), Some(pre)) = (&existing, options.preconditions) {
        if !node_config::preconditions_met(config, pre, limits.max_items_per_node) {
            return Err(Fail::App(Condition::Conflict, "precondition-not-met"));
        }
    }
    let id = match id.filter(|i| !i.is_empty()) {
        Some(id) => id.to_owned(),
        None => crate::context::random_token(16),
    };
    let item =
        PubsubItem { id: id.clone(), publisher: publisher.to_owned(), payload: serialized, published_ms: now_ms() };
    let outcome = ctx.store.pubsub_publish(owner, node, &options.create, &item, limits.max_nodes_per_account).await;
    let config = match outcome {
        Ok(Published::Stored { config, .. }) => config,
        Ok(Published::TooManyNodes) => {
            return Err(Fail::Plain(
                drupe_proto::error::StanzaError::new(Condition::PolicyViolation).with_text("too many nodes"),
            ))
        }
        Err(StoreError::NoSuchAccount) => return Err(Condition::ItemNotFound.into()),
        Err(e) => return Err(Fail::store(e)),
    };
    let event =
        Element::new("items", NS_EVENT).with_attr("node", node).with_child(notify::item_element(&item, NS_EVENT));
    notify::broadcast(ctx, owner, node, &config, event).await;
    match node {
        avatar::METADATA => avatar::metadata_published(ctx, owner, &payload, options.from_client).await,
        vcard4::NODE => vcard4::published(ctx, owner, &payload, options.from_client).await,
        bookmarks::NS => bookmarks::legacy_broadcast(ctx, owner).await,
        _ => {}
    }
    Ok(id)
}

/// Removes an item and notifies (unless `notify` or the node's `notify_retract` says not to).
pub async fn retract(ctx: &Context, owner: &str, node: &str, id: &str, notify: Option<bool>) -> Result<(), Fail> {
    let Some(config) = ctx.store.pubsub_node(owner, node).await.map_err(Fail::store)? else {
        return Err(Condition::ItemNotFound.into());
    };
    if !ctx.store.pubsub_retract(owner, node, id).await.map_err(Fail::store)? {
        return Err(Condition::ItemNotFound.into());
    }
    if notify.unwrap_or(config.notify_retract) {
        let event = Element::new("items", NS_EVENT)
            .with_attr("node", node)
            .with_child(Element::new("retract", NS_EVENT).with_attr("id", id));
        notify::broadcast(ctx, owner, node, &config, event).await;
    }
    match node {
        avatar::METADATA => avatar::forget(ctx, owner),
        bookmarks::NS => bookmarks::legacy_broadcast(ctx, owner).await,
        _ => {}
    }
    Ok(())
}

/// `<publish node><item id>payload</item></publish>` with optional `<publish-options/>`.
pub async fn publish_request(
    ctx: &Context,
    pubsub: &Element,
    publish_el: &Element,
    owner: &str,
    me: &Requester,
) -> Result<Option<Element>, Fail> {
    if me.user != owner {
        return Err(Condition::Forbidden.into());
    }
    let node = node_of(publish_el)?;
    let mut items = publish_el.children().filter(|c| c.is("item", NS));
    let (Some(item), None) = (items.next(), items.next()) else {
        return Err(Fail::App(Condition::BadRequest, "item-required"));
    };
    let mut payloads = item.children();
    let (Some(payload), None) = (payloads.next(), payloads.next()) else {
        return Err(Fail::App(Condition::BadRequest, "invalid-payload"));
    };
    if node == bookmarks::NS_LEGACY {
        // XEP-0048 through PEP: stored as XEP-0402 bookmarks (XEP-0411), the node itself is never written.
        bookmarks::store_legacy(ctx, owner, &me.full, payload).await?;
        return Ok(None);
    }
    let pre = pubsub.child("publish-options", NS).and_then(|o| o.child("x", drupe_proto::dataform::NS));
    let cap = ctx.config.pubsub.max_items_per_node;
    let create = match pre {
        Some(x) => node_config::apply(&NodeConfig::default(), x, cap)
            .map_err(|_| Fail::App(Condition::Conflict, "precondition-not-met"))?,
        None => NodeConfig::default(),
    };
    let options = Options { create, preconditions: pre, from_client: true };
    let id = publish(ctx, owner, &me.full, node, item.attr("id"), payload.clone(), options).await?;
    let result =
        Element::new("publish", NS).with_attr("node", node).with_child(Element::new("item", NS).with_attr("id", id));
    Ok(Some(Element::new("pubsub", NS).with_child(result)))
}

/// `<retract node notify><item id/></retract>` (XEP-0060 §7.2).
pub async fn retract_request(
    ctx: &Context,
    retract_el: &Element,
    owner: &str,
    me: &Requester,
) -> Result<Option<Element>, Fail> {
    if me.user != owner {
        return Err(Condition::Forbidden.into());
    }
    let node = node_of(retract_el)?;
    let Some(id) = retract_el.child("item", NS).and_then(|i| i.attr("id")).filter(|i| !i.is_empty()) else {
        return Err(Fail::App(Condition::BadRequest, "item-required"));
    };
    let notify = retract_el.attr("notify").map(|v| v == "1" || v == "true");
    retract(ctx, owner, node, id, notify).await?;
    Ok(None)
}

/// `<items node max_items><item id/>*</items>` with optional RSM `<set/>` (XEP-0060 §6.5).
pub async fn items_request(
    ctx: &Context,
    pubsub: &Element,
    items_el: &Element,
    owner: &str,
    me: &Requester,
) -> Result<Option<Element>, Fail> {
    let node = node_of(items_el)?;
    if node == bookmarks::NS_LEGACY && me.user == owner {
        let item = Element::new("item", NS)
            .with_attr("id", "current")
            .with_child(bookmarks::legacy_storage(ctx, owner).await?);
        let items = Element::new("items", NS).with_attr("node", node).with_child(item);
        return Ok(Some(Element::new("pubsub", NS).with_child(items)));
    }
    let Some(config) = ctx.store.pubsub_node(owner, node).await.map_err(Fail::store)? else {
        return Err(Condition::ItemNotFound.into());
    };
    access::may_read(ctx, owner, &me.user, &me.bare, node, &config).await?;
    let cap = ctx.config.pubsub.max_items_per_node as usize;
    let ids: Vec<String> =
        items_el.children().filter(|i| i.is("item", NS)).filter_map(|i| i.attr("id")).map(str::to_owned).collect();
    let mut query = ItemsQuery { ids, max: cap, ..Default::default() };
    if let Some(max) = items_el.attr("max_items") {
        let max: usize = max.parse().map_err(|_| Condition::BadRequest)?;
        // The most recent items (§6.5.7).
        query.before = Some(None);
        query.max = max.min(cap);
    }
    let paged = pubsub.child("set", rsm::NS);
    if let Some(set) = paged {
        let request = rsm::Request::parse(set).map_err(|()| Condition::BadRequest)?;
        let latest = query.before.take().filter(|_| request.after.is_none());
        query.max = request.max.unwrap_or(query.max).min(cap);
        query.after = request.after;
        query.before = request.before.or(latest);
    }
    let page = match ctx.store.pubsub_items(owner, node, &query).await {
        Ok(page) => page,
        Err(StoreError::NotFound) => return Err(Condition::ItemNotFound.into()),
        Err(e) => return Err(Fail::store(e)),
    };
    let mut items = Element::new("items", NS).with_attr("node", node);
    for item in &page.items {
        items.push(notify::item_element(item, NS));
    }
    let mut pubsub_out = Element::new("pubsub", NS).with_child(items);
    if paged.is_some() {
        let first = page.items.first().map(|i| (i.id.as_str(), None));
        pubsub_out.push(rsm::response(first, page.items.last().map(|i| i.id.as_str()), Some(page.count)));
    }
    Ok(Some(pubsub_out))
}
