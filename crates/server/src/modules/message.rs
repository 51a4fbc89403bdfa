//! RFC 6121 §8.5 message routing and XEP-0160 offline storage (with XEP-0203 delay stamps).
//!
//! A message is handed to the recipient's sessions at once. Its archive copies are committed in one group-commit
//! batch while the sender's session reads on; the session counts the message as handled (XEP-0198) only once they
//! are (c2s/durable.rs). For an account with no available resource the offline copy is committed before the
//! session moves on. Either way an acknowledgement always covers durable data.

use drupe_proto::delay::delay;
use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::xml::Element;
use drupe_proto::Jid;
use drupe_store::OfflinePush;
use futures_util::future::BoxFuture;

use super::{blocking, carbons, mam, now_ms, store_failure, target, Target};
use crate::c2s::Session;
use crate::context::Context;
use crate::router::{Outbound, Undeliverable};

const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

/// A message from the session's client. The futures awaited here are boxed one by one: each allocation then stays
/// under 1 KiB, where glibc's malloc serves it from its per-thread cache; one future holding them all took 4.4 KiB per
/// message, an allocation that also made malloc merge its small free chunks every time.
pub async fn from_client(s: &mut Session, el: Element, to: Option<&Jid>) {
    let addressee = target(&s.ctx, to);
    if let Err(reply) = Box::pin(blocking::check_outbound(s, &el, to, &addressee)).await {
        return s.send(&reply);
    }
    let Some(user) = s.user.clone() else { return };
    let recipient = match &addressee {
        // A message to one's own bare JID is routed like any other (RFC 6121 §8.5.2, to the account's resources).
        Target::OwnAccount => Some((user.as_str(), None)),
        Target::Bare(u) => Some((u.as_str(), None)),
        Target::Full(u, r) => Some((u.as_str(), Some(r.as_str()))),
        // (Group chat addresses never get here: `handle_client_stanza` hands them to the MUC service.)
        Target::Server | Target::Remote | Target::Muc(..) | Target::Upload => None,
    };
    let result = match recipient {
        Some((to_user, resource)) => {
            // The sender's archive copy is committed in the same batch as the recipient's (one fsync).
            let outgoing = if to_user == user {
                None
            } else {
                match Box::pin(mam::prepare_outgoing(&s.ctx, &user, &el)).await {
                    Ok(w) => w,
                    Err(e) => return s.send_error(&el, e),
                }
            };
            Box::pin(deliver(&s.ctx, to_user, resource, el.clone(), Fresh::Yes(outgoing))).await
        }
        // Messages to the server itself (RFC 6120 §10.3.1 with a domain `to`): nothing handles them.
        None if addressee == Target::Server => Err(StanzaError::new(Condition::ServiceUnavailable)),
        None => Err(StanzaError::new(Condition::RemoteServerNotFound)),
    };
    match result {
        Ok(archived) => {
            carbons::sent(&s.ctx, &user, &el, s.id);
            if let Some(archived) = archived {
                s.committing(archived).await;
            }
        }
        Err(e) => s.send_error(&el, e),
    }
}

/// A delivered message's archive write, still committing.
pub type Committing = BoxFuture<'static, ()>;

/// Whether a message is new (archive it, with the sender's copy if any) or routed again after its session ended.
pub enum Fresh {
    Yes(Option<mam::ArchiveWrite>),
    Rerouted,
}

/// Delivers a message to a local account per RFC 6121 §8.5.2-8.5.3, archiving it and storing it offline when
/// needed. The recipient gets it at once; this returns after the archive and offline writes are committed (in one
/// group-commit batch). An error is the stanza error to bounce to the sender.
pub async fn deliver_to_account(
    ctx: &Context,
    user: &str,
    resource: Option<&str>,
    el: Element,
    fresh: Fresh,
) -> Result<(), StanzaError> {
    if let Some(archived) = deliver(ctx, user, resource, el, fresh).await? {
        archived.await;
    }
    Ok(())
}

/// [`deliver_to_account`], but a delivered message's archive write comes back still committing, for the sender's
/// session to keep while it reads on. An offline copy is committed before this returns.
async fn deliver(
    ctx: &Context,
    user: &str,
    resource: Option<&str>,
    mut el: Element,
    fresh: Fresh,
) -> Result<Option<Committing>, StanzaError> {
    let kind = el.attr("type").unwrap_or("normal").to_owned();
    let handle = resource.and_then(|res| ctx.router.handle(user, res));
    if resource.is_some() && handle.is_none() {
        // No such resource (RFC 6121 §8.5.3.2.1).
        match kind.as_str() {
            "error" => return Ok(None),
            "groupchat" => return Err(StanzaError::new(Condition::ServiceUnavailable)),
            _ => {}
        }
    }
    let available: Vec<_> = match handle {
        Some(_) => Vec::new(),
        None => ctx.router.available(user).into_iter().filter(|(prio, _)| *prio >= 0).collect(),
    };
    if handle.is_none() && available.is_empty() && !Box::pin(exists(ctx, user)).await? {
        // The same answer whether or not the account exists (RFC 6121 §8.5.1, no enumeration).
        return match kind.as_str() {
            "error" => Ok(None),
            _ => Err(StanzaError::new(Condition::ServiceUnavailable)),
        };
    }
    match (kind.as_str(), &handle, available.is_empty()) {
        // A bound full JID gets whatever is addressed to it (RFC 6121 §8.5.3.1); groupchat to a bare JID does not.
        ("groupchat", None, _) => return Err(StanzaError::new(Condition::ServiceUnavailable)),
        ("error" | "headline", None, true) => return Ok(None),
        _ => {}
    }
    let (incoming, outgoing) = match fresh {
        Fresh::Yes(outgoing) => (Box::pin(mam::prepare_incoming(ctx, user, &mut el)).await?, outgoing),
        Fresh::Rerouted => (None, None),
    };
    let archived = mam::write(ctx, [incoming, outgoing]).map(|write| -> Committing {
        Box::pin(async move {
            if let Err(e) = write.await {
                // Delivered or stored all the same; only the history copy is missing.
                tracing::warn!(condition = e.condition.as_str(), "message not archived");
            }
        })
    });
    let mut delivered = Vec::new();
    let shared = std::sync::Arc::new(el);
    match &handle {
        Some(h) => match h.send(Outbound::Stanza(shared.clone())) {
            Ok(()) => delivered.push(h.id),
            Err(Undeliverable::QueueFull) => return Err(StanzaError::new(Condition::ResourceConstraint)),
            Err(Undeliverable::NoSession) => return Err(StanzaError::new(Condition::ServiceUnavailable)),
        },
        None => {
            for (_, h) in &available {
                if h.send(Outbound::Stanza(shared.clone())).is_ok() {
                    delivered.push(h.id);
                }
            }
        }
    }
    if !delivered.is_empty() {
        carbons::received(ctx, user, &shared, &delivered);
        return Ok(archived);
    }
    if !available.is_empty() && !matches!(kind.as_str(), "chat" | "normal") {
        return Err(StanzaError::new(Condition::ResourceConstraint));
    }
    let el = std::sync::Arc::unwrap_or_clone(shared);
    // Boxed: the offline write is the rare branch, and inline its future would more than double this one's, which
    // every delivered message allocates.
    let archived = async {
        if let Some(archived) = archived {
            archived.await;
        }
    };
    let (_, stored) = Box::pin(async { tokio::join!(archived, store_offline(ctx, user, el)) }).await;
    stored.map(|()| None)
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
