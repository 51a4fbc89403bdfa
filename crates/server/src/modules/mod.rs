//! Server behaviour per feature, one file per RFC section or XEP. Every stanza from a bound client enters through
//! [`handle_client_stanza`], which stamps `from` (no spoofing, RFC 6120 §8.1.2.1) and dispatches by kind.

pub mod blocking;
pub mod carbons;
pub mod disco;
pub mod extdisco;
pub mod iq;
pub mod mam;
pub mod message;
pub mod muc;
pub mod pep;
pub mod ping;
pub mod presence;
pub mod private;
pub mod roster;
pub mod upload;
pub mod vcard;
pub mod version;

use drupe_proto::error::{Condition, StanzaError, StreamError};
use drupe_proto::stanza::{self, Kind};
use drupe_proto::xml::Element;
use drupe_proto::Jid;

use crate::c2s::Session;
use crate::context::Context;
use crate::queue;
use crate::router::Outbound;

/// Where a stanza is addressed, relative to this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// No `to`: the sender's own account (RFC 6120 §10.3).
    OwnAccount,
    /// The server's domain itself.
    Server,
    /// A local account's bare JID.
    Bare(String),
    /// A local account's full JID.
    Full(String, String),
    /// The group chat service (XEP-0045): (room, nick).
    Muc(Option<String>, Option<String>),
    /// The HTTP File Upload service (XEP-0363).
    Upload,
    /// Another domain: there is no server-to-server yet.
    Remote,
}

pub fn target(ctx: &Context, to: Option<&Jid>) -> Target {
    let Some(to) = to else { return Target::OwnAccount };
    if to.domain().as_str().eq_ignore_ascii_case(&ctx.muc.domain) {
        let (room, nick) = muc::address(to);
        return Target::Muc(room, nick);
    }
    if to.node().is_none() && to.domain().as_str().eq_ignore_ascii_case(&ctx.upload.domain) {
        return Target::Upload;
    }
    if !to.domain().as_str().eq_ignore_ascii_case(ctx.domain()) {
        return Target::Remote;
    }
    match (to.node(), to.resource()) {
        (None, _) => Target::Server,
        (Some(node), None) => Target::Bare(node.to_string()),
        (Some(node), Some(res)) => Target::Full(node.to_string(), res.to_string()),
    }
}

pub async fn handle_client_stanza(s: &mut Session, kind: Kind, mut el: Element) -> Result<(), StreamError> {
    let Some(jid) = s.jid.clone() else { return Ok(()) };
    el.set_attr("from", jid.to_string());
    let to = match stanza::jid_attr(&el, "to") {
        Ok(to) => to,
        Err(()) => {
            s.send_error(&el, Condition::JidMalformed);
            return Ok(());
        }
    };
    if kind == Kind::Presence && el.attr("type").is_none() {
        // XEP-0398 §4: every available presence (broadcast, directed, MUC joins) carries the avatar hash.
        if let Some(user) = s.user.clone() {
            el = Box::pin(pep::avatar::stamp_presence(&s.ctx, &user, el)).await;
        }
    }
    if let Target::Muc(room, nick) = target(&s.ctx, to.as_ref()) {
        Box::pin(muc::from_client(s, el, room, nick)).await;
        return Ok(());
    }
    if target(&s.ctx, to.as_ref()) == Target::Upload {
        Box::pin(upload::from_client(s, el)).await;
        return Ok(());
    }
    match kind {
        Kind::Message => message::from_client(s, el, to.as_ref()).await,
        // Boxed, each on its own: the session boxes this function's future for every stanza, and messages, the
        // most frequent, then allocate only what the message path needs.
        Kind::Presence => Box::pin(presence::from_client(s, el, to.as_ref())).await,
        Kind::Iq => Box::pin(iq::from_client(s, el, to.as_ref())).await,
    }
    Ok(())
}

/// After a session is unbound: unavailable presence to everyone who saw it available, and stanzas still queued
/// for it are routed again (messages go to other resources or offline storage, RFC 6121 §8.5.3.2.1).
pub async fn session_ended(s: &mut Session, pending: Option<queue::Receiver<Outbound>>, undelivered: Vec<Element>) {
    if let Some(jid) = s.jid.clone() {
        muc::session_ended(&s.ctx, &jid);
    }
    presence::went_offline(s).await;
    let Some(user) = s.user.clone() else { return };
    let mut messages: Vec<Element> = undelivered;
    if let Some(mut rx) = pending {
        rx.close();
        while let Ok(o) = rx.try_recv() {
            match o {
                Outbound::Stanza(el) => messages.push(std::sync::Arc::unwrap_or_clone(el)),
                Outbound::Addressed(p, to) => messages.push(p.to_element(&to)),
                _ => {}
            }
        }
    }
    for el in messages.into_iter().filter(|el| el.name() == "message") {
        if let Err(e) = message::deliver_to_account(&s.ctx, &user, None, el, message::Fresh::Rerouted).await {
            tracing::debug!(condition = e.condition.as_str(), "undelivered message could not be rerouted");
        }
    }
}

/// A server-initiated `<iq type='set'/>` carrying `payload` to every bound resource of `user` (roster pushes,
/// block list pushes): one stanza, shared by all of them, wrapped by `kind` (e.g. `Outbound::RosterPush`, which a
/// session writes only once it has asked for the roster).
pub fn push_to_resources(ctx: &Context, user: &str, payload: Element, kind: fn(std::sync::Arc<Element>) -> Outbound) {
    let iq = std::sync::Arc::new(
        Element::new("iq", drupe_proto::ns::CLIENT)
            .with_attr("type", "set")
            .with_attr("id", format!("push{}", crate::context::random_token(8)))
            .with_child(payload),
    );
    for handle in ctx.router.bound(user) {
        let _ = handle.send(kind(iq.clone()));
    }
}

/// A store failure while handling one stanza: logged once, answered with internal-server-error.
pub fn store_failure(e: drupe_store::StoreError) -> StanzaError {
    tracing::error!(error = %e, "store error");
    StanzaError::new(Condition::InternalServerError)
}

/// Milliseconds since the epoch, for stamps.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
