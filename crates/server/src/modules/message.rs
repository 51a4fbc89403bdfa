//! RFC 6121 §8.5 message routing and XEP-0160 offline storage (with XEP-0203 delay stamps).
//!
//! A message for an account with no available resource is committed to the store before the sender's session
//! reads its next stanza: the session awaits the write, and the store's group commit makes that cheap.

use drupe_proto::delay::delay;
use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::xml::Element;
use drupe_proto::Jid;
use drupe_store::OfflinePush;

use super::{blocking, carbons, mam, now_ms, store_failure, target, Target};
use crate::c2s::Session;
use crate::context::Context;
use crate::router::{Outbound, Undeliverable};

const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

pub async fn from_client(s: &mut Session, el: Element, to: Option<&Jid>) {
    let addressee = target(&s.ctx, to);
    if let Err(reply) = blocking::check_outbound(s, &el, to, &addressee).await {
        return s.send(&reply);
    }
    let result = match addressee {
        // A message to one's own bare JID is routed like any other (RFC 6121 §8.5.2, to the account's resources).
        Target::OwnAccount => match s.user.clone() {
            Some(user) => deliver_to_account(&s.ctx, &user, None, el.clone(), true).await,
            None => Ok(()),
        },
        Target::Bare(ref user) => deliver_to_account(&s.ctx, user, None, el.clone(), true).await,
        Target::Full(ref user, ref res) => deliver_to_account(&s.ctx, user, Some(res), el.clone(), true).await,
        // Messages to the server itself (RFC 6120 §10.3.1 with a domain `to`): nothing handles them.
        Target::Server => Err(StanzaError::new(Condition::ServiceUnavailable)),
        Target::Remote => Err(StanzaError::new(Condition::RemoteServerNotFound)),
    };
    match result {
        Ok(()) => {
            if let Some(user) = s.user.clone() {
                let to_self = matches!(&addressee, Target::OwnAccount)
                    || matches!(&addressee, Target::Bare(u) | Target::Full(u, _) if *u == user);
                if !to_self {
                    if let Err(e) = mam::archive_outgoing(&s.ctx, &user, &el).await {
                        tracing::warn!(condition = e.condition.as_str(), "sent message not archived");
                    }
                }
                carbons::sent(&s.ctx, &user, &el, s.id);
            }
        }
        Err(e) => s.send_error(&el, e),
    }
}

/// Delivers a message to a local account per RFC 6121 §8.5.2-8.5.3, archiving it (when `fresh`: not a message
/// routed again after a session ended) and storing it offline when needed. An error is the stanza error to bounce
/// to the sender.
pub async fn deliver_to_account(
    ctx: &Context,
    user: &str,
    resource: Option<&str>,
    mut el: Element,
    fresh: bool,
) -> Result<(), StanzaError> {
    let kind = el.attr("type").unwrap_or("normal").to_owned();
    let handle = resource.and_then(|res| ctx.router.handle(user, res));
    if resource.is_some() && handle.is_none() {
        // No such resource (RFC 6121 §8.5.3.2.1).
        match kind.as_str() {
            "error" => return Ok(()),
            "groupchat" => return Err(StanzaError::new(Condition::ServiceUnavailable)),
            _ => {}
        }
    }
    let available: Vec<_> = match handle {
        Some(_) => Vec::new(),
        None => ctx.router.available(user).into_iter().filter(|(prio, _)| *prio >= 0).collect(),
    };
    if handle.is_none() && available.is_empty() && !exists(ctx, user).await? {
        // The same answer whether or not the account exists (RFC 6121 §8.5.1, no enumeration).
        return match kind.as_str() {
            "error" => Ok(()),
            _ => Err(StanzaError::new(Condition::ServiceUnavailable)),
        };
    }
    if fresh {
        mam::archive_incoming(ctx, user, &mut el).await?;
    }
    if let Some(handle) = handle {
        return match handle.send(Outbound::Stanza(el.clone())) {
            Ok(()) => {
                carbons::received(ctx, user, &el, &[handle.id]);
                Ok(())
            }
            Err(Undeliverable::QueueFull) => Err(StanzaError::new(Condition::ResourceConstraint)),
            Err(Undeliverable::NoSession) => Err(StanzaError::new(Condition::ServiceUnavailable)),
        };
    }
    match kind.as_str() {
        "error" if available.is_empty() => Ok(()),
        "groupchat" => Err(StanzaError::new(Condition::ServiceUnavailable)),
        "headline" if available.is_empty() => Ok(()),
        _ if available.is_empty() => store_offline(ctx, user, el).await,
        _ => {
            let mut delivered = Vec::with_capacity(available.len());
            for (_, handle) in &available {
                if handle.send(Outbound::Stanza(el.clone())).is_ok() {
                    delivered.push(handle.id);
                }
            }
            match (!delivered.is_empty(), kind.as_str()) {
                (true, _) => {
                    carbons::received(ctx, user, &el, &delivered);
                    Ok(())
                }
                (false, "chat" | "normal") => store_offline(ctx, user, el).await,
                (false, _) => Err(StanzaError::new(Condition::ResourceConstraint)),
            }
        }
    }
}

async fn exists(ctx: &Context, user: &str) -> Result<bool, StanzaError> {
    if !ctx.router.bound(user).is_empty() {
        return Ok(true);
    }
    ctx.store.account_exists(user).await.map_err(store_failure)
}

/// Stores a message for later delivery. Chat-state-only messages are not worth keeping (XEP-0085 §5.5).
async fn store_offline(ctx: &Context, user: &str, mut el: Element) -> Result<(), StanzaError> {
    if !el.children().any(|c| c.ns() != CHATSTATES) {
        return Ok(());
    }
    let now = now_ms();
    el.push(delay(ctx.domain(), now));
    let limit = ctx.config.limits.max_offline_messages;
    match ctx.store.offline_push(user, &el.to_xml(), now, limit).await.map_err(store_failure)? {
        OfflinePush::Stored(_) => {
            // The account may have come online while the write was committing, after its sessions read their
            // offline messages: have them look again.
            for (_, handle) in ctx.router.available(user) {
                let _ = handle.send(Outbound::OfflineStored);
            }
            Ok(())
        }
        // The same bare condition as for a missing account: nothing tells the sender which case it was.
        OfflinePush::Full => Err(StanzaError::new(Condition::ServiceUnavailable)),
    }
}

/// Delivers the account's stored messages to this session (on its initial available presence) and removes them
/// from the store once they are written to the socket.
pub async fn flush_offline(s: &mut Session) {
    let Some(user) = s.user.clone() else { return };
    let stored = match s.ctx.store.offline_list(&user).await {
        Ok(list) => list,
        Err(e) => return tracing::error!(error = %e, "cannot read offline messages"),
    };
    let Some(last) = stored.last().map(|m| m.id) else { return };
    for m in &stored {
        match Element::parse(&m.stanza) {
            Some(el) => s.send(&el),
            None => tracing::warn!(id = m.id, "dropping unparsable offline message"),
        }
    }
    if s.flush().await.is_ok() {
        if let Err(e) = s.ctx.store.offline_delete_through(&user, last).await {
            tracing::error!(error = %e, "cannot delete delivered offline messages");
        }
    }
}
