//! RFC 6121 §2 roster management: get (with versioning, §2.6), set, remove, and pushes to every interested
//! resource of the account.

use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::stanza;
use drupe_proto::xml::Element;
use drupe_proto::{ns, BareJid};
use drupe_store::{RosterItem, Subscription};

use super::{presence, store_failure};
use crate::c2s::Session;
use crate::context::Context;
use crate::router::Outbound;

pub async fn handle(s: &mut Session, iq: Element) {
    let Some(user) = s.user.clone() else { return };
    let result = match iq.attr("type") {
        Some("get") => get(s, &user, &iq).await,
        Some("set") => set(s, &user, &iq).await,
        _ => Err(StanzaError::new(Condition::BadRequest)),
    };
    if let Err(e) = result {
        s.send_error(&iq, e);
    }
}

async fn get(s: &mut Session, user: &str, iq: &Element) -> Result<(), StanzaError> {
    let roster = s.ctx.store.roster(user).await.map_err(store_failure)?;
    s.roster_requested = true;
    let version = roster.version.to_string();
    let query = iq.first_child().filter(|q| q.is("query", ns::ROSTER));
    if query.and_then(|q| q.attr("ver")) == Some(version.as_str()) {
        // Unchanged since the client's copy: empty result, changes come as pushes (RFC 6121 §2.6.3).
        s.send(&stanza::iq_result(iq, None));
        return Ok(());
    }
    let mut payload = Element::new("query", ns::ROSTER).with_attr("ver", version);
    for item in roster.items.iter().filter(|i| visible(i)) {
        payload.push(item_element(item));
    }
    s.send(&stanza::iq_result(iq, Some(payload)));
    Ok(())
}

async fn set(s: &mut Session, user: &str, iq: &Element) -> Result<(), StanzaError> {
    let bad = || StanzaError::new(Condition::BadRequest);
    let query = iq.first_child().filter(|q| q.is("query", ns::ROSTER)).ok_or_else(bad)?;
    let mut items = query.children().filter(|c| c.is("item", ns::ROSTER));
    let item = items.next().ok_or_else(bad)?;
    if items.next().is_some() {
        return Err(bad()); // exactly one item per set (RFC 6121 §2.3.3)
    }
    let jid = item.attr("jid").and_then(|j| BareJid::new(j).ok()).ok_or_else(bad)?.to_string();
    if item.attr("subscription") == Some("remove") {
        return remove(s, user, &jid, iq).await;
    }
    let mut groups: Vec<String> = Vec::new();
    for g in item.children().filter(|c| c.is("group", ns::ROSTER)) {
        let name = g.text();
        if name.is_empty() {
            return Err(StanzaError::new(Condition::NotAcceptable).with_text("empty group name"));
        }
        if groups.contains(&name) {
            return Err(bad());
        }
        groups.push(name);
    }
    let existing = s.ctx.store.roster_item(user, &jid).await.map_err(store_failure)?;
    // The client may change only name and groups; subscription state is the server's (RFC 6121 §2.1.2.5).
    let mut updated = existing.unwrap_or_else(|| new_item(&jid));
    updated.name = item.attr("name").filter(|n| !n.is_empty()).map(str::to_owned);
    updated.groups = groups;
    put(&s.ctx, user, &updated).await?;
    s.send(&stanza::iq_result(iq, None));
    Ok(())
}

async fn remove(s: &mut Session, user: &str, jid: &str, iq: &Element) -> Result<(), StanzaError> {
    let Some(item) = s.ctx.store.roster_item(user, jid).await.map_err(store_failure)? else {
        return Err(StanzaError::new(Condition::ItemNotFound));
    };
    // Removing an item cancels the subscriptions both ways (RFC 6121 §2.5.2).
    if matches!(item.subscription, Subscription::To | Subscription::Both) || item.ask_out {
        presence::send_subscription(s, jid, "unsubscribe").await;
    }
    if matches!(item.subscription, Subscription::From | Subscription::Both) || item.pending_in {
        presence::send_subscription(s, jid, "unsubscribed").await;
    }
    let version = s.ctx.store.roster_remove(user, jid).await.map_err(store_failure)?;
    s.send(&stanza::iq_result(iq, None));
    if let Some(version) = version {
        let mut removed = new_item(jid);
        removed.subscription = Subscription::None;
        push(&s.ctx, user, version, item_element(&removed).with_attr("subscription", "remove"));
    }
    Ok(())
}

/// Stores an item and pushes it to the account's interested resources.
pub async fn put(ctx: &Context, user: &str, item: &RosterItem) -> Result<(), StanzaError> {
    let version = ctx.store.roster_put(user, item).await.map_err(store_failure)?;
    if visible(item) {
        push(ctx, user, version, item_element(item));
    }
    Ok(())
}

fn push(ctx: &Context, user: &str, version: u64, item: Element) {
    let query = Element::new("query", ns::ROSTER).with_attr("ver", version.to_string()).with_child(item);
    super::push_to_resources(ctx, user, query, Outbound::RosterPush);
}

pub fn new_item(jid: &str) -> RosterItem {
    RosterItem {
        jid: jid.to_owned(),
        name: None,
        subscription: Subscription::None,
        ask_out: false,
        pending_in: false,
        approved: false,
        groups: Vec::new(),
    }
}

/// An item that exists only to remember an inbound subscription request is not part of the user's roster
/// (RFC 6121 §3.1.3: the contact's server must not add an item for a request alone).
fn visible(item: &RosterItem) -> bool {
    !(item.subscription == Subscription::None
        && !item.ask_out
        && !item.approved
        && item.name.is_none()
        && item.groups.is_empty()
        && item.pending_in)
}

pub fn item_element(item: &RosterItem) -> Element {
    let sub = match item.subscription {
        Subscription::None => "none",
        Subscription::To => "to",
        Subscription::From => "from",
        Subscription::Both => "both",
    };
    let mut el = Element::new("item", ns::ROSTER).with_attr("jid", item.jid.as_str()).with_attr("subscription", sub);
    if let Some(name) = &item.name {
        el.set_attr("name", name.as_str());
    }
    if item.ask_out {
        el.set_attr("ask", "subscribe");
    }
    if item.approved {
        el.set_attr("approved", "true");
    }
    for g in &item.groups {
        el.push(Element::new("group", ns::ROSTER).with_text(g.as_str()));
    }
    el
}
