//! XEP-0060 §8 owner use cases on a PEP service: create (with configure), configure (get/set the
//! `pubsub#node_config` form), default configuration, purge, delete (with notifications) and affiliations (the
//! whitelist of XEP-0223 private nodes). Only the account itself is the owner.

use drupe_proto::dataform::NS as XDATA;
use drupe_proto::error::Condition;
use drupe_proto::xml::Element;
use drupe_proto::Jid;
use drupe_store::{Affiliation, NodeConfig, NodeCreated, StoreError};

use super::{node_config, node_of, notify, Fail, Requester, NS, NS_EVENT, NS_OWNER};
use crate::context::Context;

/// A `<pubsub xmlns='…#owner'/>` request.
pub async fn handle(
    ctx: &Context,
    iq: &Element,
    pubsub: &Element,
    owner: &str,
    me: &Requester,
) -> Result<Option<Element>, Fail> {
    if me.user != owner {
        return Err(Condition::Forbidden.into());
    }
    let Some(action) = pubsub.first_child() else { return Err(Condition::BadRequest.into()) };
    let cap = ctx.config.pubsub.max_items_per_node;
    let set = iq.attr("type") == Some("set");
    match (set, action.name()) {
        (false, "default") => {
            let form = node_config::render(&NodeConfig::default(), "form", node_config::NODE_CONFIG);
            let default = Element::new("default", NS_OWNER).with_child(form);
            Ok(Some(Element::new("pubsub", NS_OWNER).with_child(default)))
        }
        (false, "configure") => {
            let node = node_of(action)?;
            let config = existing(ctx, owner, node).await?;
            let form = node_config::render(&config, "form", node_config::NODE_CONFIG);
            let configure = Element::new("configure", NS_OWNER).with_attr("node", node).with_child(form);
            Ok(Some(Element::new("pubsub", NS_OWNER).with_child(configure)))
        }
        (true, "configure") => {
            let node = node_of(action)?;
            let config = existing(ctx, owner, node).await?;
            let Some(x) = action.child("x", XDATA) else { return Err(Condition::BadRequest.into()) };
            let new = node_config::apply(&config, x, cap)?;
            if !ctx.store.pubsub_node_configure(owner, node, &new).await.map_err(Fail::store)? {
                return Err(Condition::ItemNotFound.into());
            }
            Ok(None)
        }
        (true, "delete") => {
            let node = node_of(action)?;
            let config = existing(ctx, owner, node).await?;
            ctx.store.pubsub_node_delete(owner, node).await.map_err(Fail::store)?;
            if config.notify_delete {
                let event = Element::new("delete", NS_EVENT).with_attr("node", node);
                notify::broadcast(ctx, owner, node, &config, event).await;
            }
            if node == super::avatar::METADATA {
                super::avatar::forget(ctx, owner);
            }
            Ok(None)
        }
        (true, "purge") => {
            let node = node_of(action)?;
            let config = existing(ctx, owner, node).await?;
            ctx.store.pubsub_purge(owner, node).await.map_err(Fail::store)?;
            let event = Element::new("purge", NS_EVENT).with_attr("node", node);
            notify::broadcast(ctx, owner, node, &config, event).await;
            if node == super::bookmarks::NS {
                super::bookmarks::legacy_broadcast(ctx, owner).await;
            }
            Ok(None)
        }
        (false, "affiliations") => {
            let node = node_of(action)?;
            existing(ctx, owner, node).await?;
            let list = ctx.store.pubsub_affiliations(owner, node).await.map_err(Fail::store)?;
            let mut el = Element::new("affiliations", NS_OWNER).with_attr("node", node);
            el.push(affiliation(&me.bare, "owner"));
            for (jid, a) in list {
                el.push(affiliation(&jid, a.as_str()));
            }
            Ok(Some(Element::new("pubsub", NS_OWNER).with_child(el)))
        }
        (true, "affiliations") => {
            let node = node_of(action)?;
            existing(ctx, owner, node).await?;
            let mut changes = Vec::new();
            for a in action.children().filter(|c| c.is("affiliation", NS_OWNER)) {
                let jid = a.attr("jid").and_then(|j| Jid::new(j).ok()).ok_or(Condition::JidMalformed)?;
                let bare = jid.to_bare().to_string();
                if bare == me.bare {
                    // The owner's own affiliation cannot change.
                    return Err(Condition::NotAcceptable.into());
                }
                let value = match a.attr("affiliation") {
                    Some("none") => None,
                    Some(v) => Some(Affiliation::parse(v).ok_or(Condition::BadRequest)?),
                    None => return Err(Condition::BadRequest.into()),
                };
                changes.push((bare, value));
            }
            ctx.store.pubsub_set_affiliations(owner, node, &changes).await.map_err(Fail::store)?;
            Ok(None)
        }
        _ => Err(Condition::BadRequest.into()),
    }
}

fn affiliation(jid: &str, kind: &str) -> Element {
    Element::new("affiliation", NS_OWNER).with_attr("jid", jid).with_attr("affiliation", kind)
}

async fn existing(ctx: &Context, owner: &str, node: &str) -> Result<NodeConfig, Fail> {
    ctx.store.pubsub_node(owner, node).await.map_err(Fail::store)?.ok_or_else(|| Condition::ItemNotFound.into())
}

/// `<create node/>` with an optional `<configure><x/></configure>` (XEP-0060 §8.1.3).
pub async fn create_request(
    ctx: &Context,
    pubsub: &Element,
    create: &Element,
    owner: &str,
    me: &Requester,
) -> Result<Option<Element>, Fail> {
    if me.user != owner {
        return Err(Condition::Forbidden.into());
    }
    // PEP nodes are named by their namespace: no instant (unnamed) nodes.
    let node =
        create.attr("node").filter(|n| !n.is_empty()).ok_or(Fail::App(Condition::NotAcceptable, "nodeid-required"))?;
    let cap = ctx.config.pubsub.max_items_per_node;
    let config = match pubsub.child("configure", NS).and_then(|c| c.child("x", XDATA)) {
        Some(x) => node_config::apply(&NodeConfig::default(), x, cap)?,
        None => NodeConfig::default(),
    };
    match ctx.store.pubsub_node_create(owner, node, &config, ctx.config.pubsub.max_nodes_per_account).await {
        Ok(NodeCreated::Created) => Ok(None),
        Ok(NodeCreated::Exists) => Err(Condition::Conflict.into()),
        Ok(NodeCreated::TooManyNodes) => Err(Condition::PolicyViolation.into()),
        Err(StoreError::NoSuchAccount) => Err(Condition::ItemNotFound.into()),
        Err(e) => Err(Fail::store(e)),
    }
}
