//! RFC 6121 §3-4: presence subscriptions (the state machine of Appendix A, both the user's and the contact's side,
//! since every account is local), presence broadcast, probes answered from the router's presence table, directed
//! presence, and unavailable presence when a session ends.

use drupe_proto::xml::Element;
use drupe_proto::{ns, Jid};
use drupe_store::{RosterItem, Subscription};

use super::{blocking, message, roster, target, Target};
use crate::c2s::Session;
use crate::context::Context;
use crate::router::Outbound;

pub async fn from_client(s: &mut Session, el: Element, to: Option<&Jid>) {
    let kind = el.attr("type").map(str::to_owned);
    match (kind.as_deref(), target(&s.ctx, to)) {
        (Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed"), t) => {
            let contact = match (t, to) {
                (Target::Bare(_) | Target::Full(..) | Target::Remote, Some(to)) => to.to_bare().to_string(),
                _ => return,
            };
            if let Some(k) = kind {
                send_subscription(s, &contact, &k).await;
            }
        }
        (Some("probe" | "error"), _) => {}
        (None | Some("unavailable"), Target::OwnAccount) => broadcast(s, el).await,
        (None | Some("unavailable"), Target::Bare(user)) => directed(s, el, &user, None),
        (None | Some("unavailable"), Target::Full(user, res)) => directed(s, el, &user, Some(&res)),
        // Presence to the server or to other domains (no server-to-server yet) goes nowhere.
        _ => {}
    }
}

fn priority(el: &Element) -> i8 {
    el.child("priority", ns::CLIENT).and_then(|p| p.text().trim().parse().ok()).unwrap_or(0)
}

fn bare(s: &Session) -> String {
    s.jid.as_ref().map(|j| j.to_bare().to_string()).unwrap_or_default()
}

/// The local account behind a bare JID, if it is on this server.
fn local_user(ctx: &Context, bare_jid: &str) -> Option<String> {
    match target(ctx, Jid::new(bare_jid).ok().as_ref()) {
        Target::Bare(user) => Some(user),
        _ => None,
    }
}

/// Sends `el` to every available resource of `user`.
fn to_available(ctx: &Context, user: &str, el: &Element) {
    let shared = std::sync::Arc::new(el.clone());
    for (_, handle) in ctx.router.available(user) {
        let _ = handle.send(Outbound::Stanza(shared.clone()));
    }
}

async fn roster_items(ctx: &Context, user: &str) -> Vec<RosterItem> {
    match ctx.store.roster(user).await {
        Ok(r) => r.items,
        Err(e) => {
            tracing::error!(error = %e, "cannot read roster for presence");
            Vec::new()
        }
    }
}

/// Presence without `to`: the session's broadcast presence (RFC 6121 §4.2, §4.4, §4.5).
async fn broadcast(s: &mut Session, el: Element) {
    let (Some(user), Some(jid)) = (s.user.clone(), s.jid.clone()) else { return };
    let resource = jid.resource().to_string();
    let available = el.attr("type").is_none();
    if !available {
        return went_offline(s).await;
    }
    let initial = s.presence.is_none();
    let prio = priority(&el);
    s.presence = Some(el.clone());
    s.ctx.router.set_presence(&user, &resource, s.id, Some((prio, el.clone())));
    // XEP-0115/0163: caps decide which PEP notifications this resource gets (and its last items now).
    super::pep::presence_available(s, &el).await;
    let items = roster_items(&s.ctx, &user).await;
    let me_jid = Jid::from(jid.clone());
    for item in items.iter().filter(|i| matches!(i.subscription, Subscription::From | Subscription::Both)) {
        if let Some(contact) = local_user(&s.ctx, &item.jid) {
            if !blocked_either_way(&s.ctx, &user, &me_jid, &contact, &item.jid).await {
                to_available(&s.ctx, &contact, &el.clone().with_attr("to", item.jid.as_str()));
            }
        }
    }
    // Every available resource of the account, the sender included (RFC 6121 §4.2.2, §4.4.2).
    let own = std::sync::Arc::new(el.clone().with_attr("to", bare(s)));
    for (_, handle) in s.ctx.router.available(&user) {
        if handle.id == s.id {
            s.send(&own);
        } else {
            let _ = handle.send(Outbound::Stanza(own.clone()));
        }
    }
    // Stored messages go to the first resource with non-negative priority (XEP-0160 §3), which may be a later
    // presence of this session.
    if prio >= 0 && !s.offline_delivered {
        s.offline_delivered = true;
        s.offline_due = true;
    }
    if !initial {
        if std::mem::take(&mut s.offline_due) {
            message::flush_offline(s).await;
        }
        return;
    }
    // Initial presence: probe contacts (answered locally from the router), show the account's other resources,
    // redeliver pending subscription requests (RFC 6121 §3.1.3), then stored messages.
    let me = jid.to_string();
    for item in items.iter().filter(|i| matches!(i.subscription, Subscription::To | Subscription::Both)) {
        if let Some(contact) = local_user(&s.ctx, &item.jid) {
            if blocked_either_way(&s.ctx, &user, &me_jid, &contact, &item.jid).await {
                continue;
            }
            for p in s.ctx.router.presences(&contact) {
                s.send(&p.with_attr("to", me.as_str()));
            }
        }
    }
    for p in s.ctx.router.presences(&user) {
        if p.attr("from") != Some(me.as_str()) {
            s.send(&p.with_attr("to", me.as_str()));
        }
    }
    for item in items.iter().filter(|i| i.pending_in) {
        s.send(&subscription_stanza("subscribe", &item.jid, &bare(s)));
    }
    if std::mem::take(&mut s.offline_due) {
        message::flush_offline(s).await;
    }
}

/// Whether `user` (as `user_jid`) and a local contact block each other in either direction (XEP-0191 §3.3).
async fn blocked_either_way(ctx: &Context, user: &str, user_jid: &Jid, contact: &str, contact_bare: &str) -> bool {
    let Ok(contact_jid) = Jid::new(contact_bare) else { return false };
    blocking::blocks(ctx, user, &contact_jid).await || blocking::blocks(ctx, contact, user_jid).await
}

/// XEP-0191 §3.3.5: contacts that were just blocked see the account go unavailable.
pub async fn hide_from(s: &mut Session, jids: &[String]) {
    let Some(user) = s.user.clone() else { return };
    for jid in jids {
        let Ok(j) = Jid::new(jid) else { continue };
        let bare = j.to_bare().to_string();
        if let Some(contact) = local_user(&s.ctx, &bare) {
            share_presence(&s.ctx, &user, &contact, &bare, false);
        }
    }
}

/// Directed presence (RFC 6121 §4.6) to a local account or resource.
fn directed(s: &mut Session, el: Element, user: &str, resource: Option<&str>) {
    let to = el.attr("to").unwrap_or_default().to_owned();
    if el.attr("type").is_none() {
        s.directed.insert(to);
    } else {
        s.directed.remove(&to);
    }
    match resource {
        Some(res) => {
            if let Some(handle) = s.ctx.router.handle(user, res) {
                let _ = handle.send(Outbound::Stanza(el.into()));
            }
        }
        None => to_available(&s.ctx, user, &el),
    }
}

/// The session became unavailable (explicitly or because it ended): tell everyone who saw it available.
pub async fn went_offline(s: &mut Session) {
    let (Some(user), Some(jid)) = (s.user.clone(), s.jid.clone()) else { return };
    super::pep::went_unavailable(&s.ctx, &user, jid.resource().as_str(), s.id);
    let directed = std::mem::take(&mut s.directed);
    if s.presence.take().is_none() && directed.is_empty() {
        return;
    }
    s.ctx.router.set_presence(&user, jid.resource().as_str(), s.id, None);
    let unavailable =
        Element::new("presence", ns::CLIENT).with_attr("type", "unavailable").with_attr("from", jid.to_string());
    for item in roster_items(&s.ctx, &user).await {
        if matches!(item.subscription, Subscription::From | Subscription::Both) {
            if let Some(contact) = local_user(&s.ctx, &item.jid) {
                to_available(&s.ctx, &contact, &unavailable.clone().with_attr("to", item.jid.as_str()));
            }
        }
    }
    for (_, handle) in s.ctx.router.available(&user) {
        if handle.id != s.id {
            let _ = handle.send(Outbound::Stanza(unavailable.clone().into()));
        }
    }
    for to in directed {
        if let Ok(j) = Jid::new(&to) {
            let el = unavailable.clone().with_attr("to", to.as_str());
            match target(&s.ctx, Some(&j)) {
                Target::Bare(u) => to_available(&s.ctx, &u, &el),
                Target::Full(u, r) => {
                    if let Some(h) = s.ctx.router.handle(&u, &r) {
                        let _ = h.send(Outbound::Stanza(el.into()));
                    }
                }
                _ => {}
            }
        }
    }
}

fn subscription_stanza(kind: &str, from: &str, to: &str) -> Element {
    Element::new("presence", ns::CLIENT).with_attr("type", kind).with_attr("from", from).with_attr("to", to)
}

/// Presence of every available resource of `from_user` (or unavailable for each) to `to_user`'s resources.
fn share_presence(ctx: &Context, from_user: &str, to_user: &str, to_bare: &str, available: bool) {
    for p in ctx.router.presences(from_user) {
        let el = if available {
            p.with_attr("to", to_bare)
        } else {
            let from = p.attr("from").unwrap_or_default();
            subscription_stanza("unavailable", from, to_bare)
        };
        to_available(ctx, to_user, &el);
    }
}

async fn item_or_new(ctx: &Context, user: &str, contact: &str) -> RosterItem {
    match ctx.store.roster_item(user, contact).await {
        Ok(Some(item)) => item,
        Ok(None) => roster::new_item(contact),
        Err(e) => {
            tracing::error!(error = %e, "cannot read roster item");
            roster::new_item(contact)
        }
    }
}

async fn save(ctx: &Context, user: &str, item: &RosterItem) {
    if let Err(e) = roster::put(ctx, user, item).await {
        tracing::warn!(condition = e.condition.as_str(), "roster update failed");
    }
}

/// The user's side of an outbound subscription stanza (RFC 6121 §3.1.2, §3.2, §3.3, §3.4), then the contact's
/// side when the contact is local.
pub async fn send_subscription(s: &mut Session, contact: &str, kind: &str) {
    let Some(user) = s.user.clone() else { return };
    let me = bare(s);
    let ctx = s.ctx.clone();
    if let (Some(contact_user), Ok(me_jid)) = (local_user(&ctx, contact), Jid::new(&me)) {
        // Subscription traffic between blocked parties goes nowhere (XEP-0191 §3.3).
        if blocked_either_way(&ctx, &user, &me_jid, &contact_user, contact).await {
            return;
        }
    }
    let mut item = item_or_new(&ctx, &user, contact).await;
    // A local JID without an account is treated like a remote one: the stanza goes nowhere, silently (RFC 6121
    // §3.1.3 lets the server ignore it; answering would reveal which accounts exist).
    let contact_user = match local_user(&ctx, contact) {
        Some(c) if ctx.store.account_exists(&c).await.unwrap_or(false) => Some(c),
        _ => None,
    };
    match kind {
        "subscribe" => {
            if !matches!(item.subscription, Subscription::To | Subscription::Both) && !item.ask_out {
                item.ask_out = true;
                save(&ctx, &user, &item).await;
            }
            if let Some(c) = contact_user {
                inbound_subscribe(&ctx, &c, contact, &user, &me).await;
            }
        }
        "subscribed" => {
            if item.pending_in {
                item.pending_in = false;
                item.subscription = match item.subscription {
                    Subscription::To | Subscription::Both => Subscription::Both,
                    _ => Subscription::From,
                };
                save(&ctx, &user, &item).await;
                if let Some(c) = contact_user {
                    inbound_subscribed(&ctx, &c, &me).await;
                    share_presence(&ctx, &user, &c, contact, true);
                }
            } else if !matches!(item.subscription, Subscription::From | Subscription::Both) && !item.approved {
                // Pre-approval (RFC 6121 §3.4).
                item.approved = true;
                save(&ctx, &user, &item).await;
            }
        }
        "unsubscribe" => {
            if matches!(item.subscription, Subscription::To | Subscription::Both) || item.ask_out {
                item.ask_out = false;
                item.subscription = drop_to(item.subscription);
                save(&ctx, &user, &item).await;
            }
            if let Some(c) = contact_user {
                inbound_unsubscribe(&ctx, &c, &me).await;
                share_presence(&ctx, &c, &user, &me, false);
            }
        }
        "unsubscribed" => {
            let had = matches!(item.subscription, Subscription::From | Subscription::Both) || item.pending_in;
            if had || item.approved {
                item.pending_in = false;
                item.approved = false;
                item.subscription = drop_from(item.subscription);
                save(&ctx, &user, &item).await;
            }
            if let (true, Some(c)) = (had, contact_user) {
                inbound_unsubscribed(&ctx, &c, &me).await;
                share_presence(&ctx, &user, &c, contact, false);
            }
        }
        _ => {}
    }
}

fn drop_to(sub: Subscription) -> Subscription {
    match sub {
        Subscription::Both | Subscription::From => Subscription::From,
        _ => Subscription::None,
    }
}

fn drop_from(sub: Subscription) -> Subscription {
    match sub {
        Subscription::Both | Subscription::To => Subscription::To,
        _ => Subscription::None,
    }
}

/// The contact's server receives a subscription request (RFC 6121 §3.1.3).
async fn inbound_subscribe(ctx: &Context, contact: &str, contact_bare: &str, user: &str, user_bare: &str) {
    let mut item = item_or_new(ctx, contact, user_bare).await;
    if matches!(item.subscription, Subscription::From | Subscription::Both) {
        // Already subscribed: answer on the contact's behalf.
        inbound_subscribed(ctx, user, contact_bare).await;
        share_presence(ctx, contact, user, user_bare, true);
        return;
    }
    if item.approved {
        item.approved = false;
        item.subscription = if item.subscription == Subscription::To { Subscription::Both } else { Subscription::From };
        save(ctx, contact, &item).await;
        inbound_subscribed(ctx, user, contact_bare).await;
        share_presence(ctx, contact, user, user_bare, true);
        return;
    }
    if !item.pending_in {
        item.pending_in = true;
        save(ctx, contact, &item).await;
    }
    // Delivered now to available resources; otherwise again at the contact's next login (from `pending_in`).
    to_available(ctx, contact, &subscription_stanza("subscribe", user_bare, contact_bare));
}

/// The user's server receives the contact's approval (RFC 6121 §3.1.6).
async fn inbound_subscribed(ctx: &Context, user: &str, contact_bare: &str) {
    let mut item = item_or_new(ctx, user, contact_bare).await;
    if !item.ask_out {
        return;
    }
    item.ask_out = false;
    item.subscription = if item.subscription == Subscription::From { Subscription::Both } else { Subscription::To };
    save(ctx, user, &item).await;
    let user_bare = format!("{user}@{}", ctx.domain());
    to_available(ctx, user, &subscription_stanza("subscribed", contact_bare, &user_bare));
    // XEP-0163: the new subscriber gets the contact's last PEP items.
    if let Some(contact) = local_user(ctx, contact_bare) {
        super::pep::notify::subscription_approved(ctx, user, &contact).await;
    }
}

/// The contact's server receives an unsubscribe (RFC 6121 §3.3.3).
async fn inbound_unsubscribe(ctx: &Context, contact: &str, user_bare: &str) {
    let mut item = item_or_new(ctx, contact, user_bare).await;
    if !(matches!(item.subscription, Subscription::From | Subscription::Both) || item.pending_in) {
        return;
    }
    item.pending_in = false;
    item.subscription = drop_from(item.subscription);
    save(ctx, contact, &item).await;
    let contact_bare = format!("{contact}@{}", ctx.domain());
    to_available(ctx, contact, &subscription_stanza("unsubscribe", user_bare, &contact_bare));
}

/// The user's server receives the contact's cancellation or denial (RFC 6121 §3.2.3).
async fn inbound_unsubscribed(ctx: &Context, user: &str, contact_bare: &str) {
    let mut item = item_or_new(ctx, user, contact_bare).await;
    if !(matches!(item.subscription, Subscription::To | Subscription::Both) || item.ask_out) {
        return;
    }
    item.ask_out = false;
    item.subscription = drop_to(item.subscription);
    save(ctx, user, &item).await;
    let user_bare = format!("{user}@{}", ctx.domain());
    to_available(ctx, user, &subscription_stanza("unsubscribed", contact_bare, &user_bare));
}
