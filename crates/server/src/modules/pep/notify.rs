//! XEP-0163 §4.3 notifications: an event about one of an account's nodes goes to every available resource (the
//! owner's own and its contacts') that may see the node and announced `node+notify` in verified caps (filtered
//! notifications, XEP-0060 §9.2). XEP-0163 §6.2 last-item delivery when a resource's features become known.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use drupe_proto::xml::Element;
use drupe_proto::{ns, Jid};
use drupe_store::{AccessModel, Affiliation, NodeConfig, PubsubItem, SendLast, Subscription};

use super::{access, caps::Features, NS_EVENT};
use crate::context::Context;
use crate::modules::blocking;
use crate::router::{Outbound, Prepared};

/// `<item id publisher>payload</item>` in `ns` (the event or the pubsub namespace).
pub fn item_element(item: &PubsubItem, ns: &'static str) -> Element {
    let mut el = Element::new("item", ns).with_attr("id", item.id.as_str());
    if let Some(payload) = Element::parse(&item.payload) {
        el.push(payload);
    }
    el
}

/// `<message from=owner type=headline><event>…</event></message>`, without `to`.
pub fn event_message(owner_bare: &str, event_child: Element) -> Element {
    Element::new("message", ns::CLIENT)
        .with_attr("from", owner_bare)
        .with_attr("type", "headline")
        .with_attr("id", crate::context::random_token(10))
        .with_child(Element::new("event", NS_EVENT).with_child(event_child))
}

/// The local users (the owner first) who may receive notifications about a node with `config`.
async fn audience(ctx: &Context, owner: &str, node: &str, config: &NodeConfig) -> Vec<String> {
    let mut users = vec![owner.to_owned()];
    let roster = match ctx.store.roster(owner).await {
        Ok(r) => r.items,
        Err(e) => {
            tracing::error!(error = %e, "cannot read roster for PEP notifications");
            return users;
        }
    };
    let Ok(owner_jid) = Jid::new(&format!("{owner}@{}", ctx.domain())) else { return users };
    let Ok(affiliations) = ctx.store.pubsub_affiliations(owner, node).await else { return users };
    let affiliations: HashMap<String, Affiliation> = affiliations.into_iter().collect();
    for item in roster.iter().filter(|i| matches!(i.subscription, Subscription::From | Subscription::Both)) {
        let allowed = match (config.access_model, affiliations.get(&item.jid)) {
            (_, Some(Affiliation::Outcast)) => false,
            (AccessModel::Whitelist, affiliation) => affiliation.is_some(),
            _ => true,
        };
        if !allowed {
            continue;
        }
        let Ok(contact_jid) = Jid::new(&item.jid) else { continue };
        let (Some(contact), None) = (contact_jid.node(), contact_jid.resource()) else { continue };
        if !contact_jid.domain().as_str().eq_ignore_ascii_case(ctx.domain()) {
            continue;
        }
        let contact = contact.to_string();
        if blocking::blocks(ctx, owner, &contact_jid).await || blocking::blocks(ctx, &contact, &owner_jid).await {
            continue;
        }
        users.push(contact);
    }
    users
}

/// Sends `event_child` (an `<items/>`, `<delete/>` or `<purge/>`) about `owner`'s `node` to every interested
/// resource. One serialization, shared by all recipients.
pub async fn broadcast(ctx: &Context, owner: &str, node: &str, config: &NodeConfig, event_child: Element) {
    let feature = format!("{node}+notify");
    let owner_bare = format!("{owner}@{}", ctx.domain());
    let prepared = Arc::new(Prepared::new(event_message(&owner_bare, event_child)));
    for user in audience(ctx, owner, node, config).await {
        to_resources(ctx, &user, &feature, &prepared);
    }
}

/// Sends `prepared` to the resources of `user` that want `feature`.
pub fn to_resources(ctx: &Context, user: &str, feature: &str, prepared: &Arc<Prepared>) {
    for (resource, session) in ctx.pep.caps.wanting(user, feature) {
        if let Some(handle) = ctx.router.handle(user, &resource).filter(|h| h.id == session) {
            let to = format!("{user}@{}/{resource}", ctx.domain());
            let _ = handle.send(Outbound::Addressed(prepared.clone(), to.into()));
        }
    }
}

/// XEP-0163 §6.2: the last item of every node the resource wants (`+notify`) and may see, of the user's own
/// account and of each contact whose presence the user is subscribed to.
/// With `only`, just that owner's nodes (a subscription was just approved, XEP-0060 §6.1.7 `on_sub`).
pub async fn last_items(
    ctx: &Context,
    user: &str,
    full_jid: &str,
    features: &Features,
    only: Option<&str>,
) -> Vec<Element> {
    let wanted: HashSet<&str> = features.iter().filter_map(|f| f.strip_suffix("+notify")).collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let user_bare = format!("{user}@{}", ctx.domain());
    let mut owners = vec![user.to_owned()];
    if let Some(owner) = only {
        owners = vec![owner.to_owned()];
    } else if let Ok(roster) = ctx.store.roster(user).await {
        for item in roster.items.iter().filter(|i| matches!(i.subscription, Subscription::To | Subscription::Both)) {
            if let Some(contact) = item.jid.strip_suffix(&format!("@{}", ctx.domain())) {
                owners.push(contact.to_owned());
            }
        }
    }
    let user_jid = Jid::new(&user_bare).ok();
    let mut out = Vec::new();
    for owner in owners {
        if owner != user {
            // XEP-0191 §3.3: nothing flows between blocked parties.
            let owner_jid = Jid::new(&format!("{owner}@{}", ctx.domain())).ok();
            let (Some(user_jid), Some(owner_jid)) = (&user_jid, &owner_jid) else { continue };
            if blocking::blocks(ctx, user, owner_jid).await || blocking::blocks(ctx, &owner, user_jid).await {
                continue;
            }
        }
        let Ok(nodes) = ctx.store.pubsub_nodes(&owner).await else { continue };
        for (node, config) in nodes.into_iter().filter(|(n, _)| wanted.contains(n.as_str())) {
            if config.send_last == SendLast::Never {
                continue;
            }
            if access::may_read(ctx, &owner, user, &user_bare, &node, &config).await.is_err() {
                continue;
            }
            let Ok(Some(item)) = ctx.store.pubsub_last_item(&owner, &node).await else { continue };
            let items = Element::new("items", NS_EVENT)
                .with_attr("node", node.as_str())
                .with_child(item_element(&item, NS_EVENT));
            let owner_bare = format!("{owner}@{}", ctx.domain());
            let mut message = event_message(&owner_bare, items);
            message.set_attr("to", full_jid);
            message.push(drupe_proto::delay::delay(&owner_bare, item.published_ms));
            out.push(message);
        }
    }
    out
}

/// `subscriber` was just approved to `owner`'s presence (RFC 6121 §3.1.6): its available resources get the last
/// items of `owner`'s nodes they want (PEP auto-subscription, XEP-0163 §4.3).
pub async fn subscription_approved(ctx: &Context, subscriber: &str, owner: &str) {
    for (resource, session, features) in ctx.pep.caps.resources(subscriber) {
        let full = format!("{subscriber}@{}/{resource}", ctx.domain());
        let messages = last_items(ctx, subscriber, &full, &features, Some(owner)).await;
        if let Some(handle) = ctx.router.handle(subscriber, &resource).filter(|h| h.id == session) {
            for message in messages {
                let _ = handle.send(Outbound::Stanza(message.into()));
            }
        }
    }
}
