//! IQ dispatch (RFC 6120 §8.2.3, RFC 6121 §8.5): one table from (addressee, payload namespace) to the module that
//! handles it; any namespace not in the table gets `service-unavailable`.

use drupe_proto::error::{Condition, StanzaError};
use drupe_proto::xml::Element;
use drupe_proto::{ns, stanza, Jid};

use super::{blocking, carbons, disco, extdisco, mam, pep, ping, private, roster, target, vcard, version, Target};
use crate::c2s::Session;
use crate::router::{Outbound, Undeliverable};

pub async fn from_client(s: &mut Session, iq: Element, to: Option<&Jid>) {
    let kind = iq.attr("type").unwrap_or_default().to_owned();
    let addressee = target(&s.ctx, to);
    if matches!(kind.as_str(), "result" | "error") {
        // Responses go only to a full JID that asked, or to the server's own queries (XEP-0115 caps, sent from the
        // account's bare JID); anything else is dropped (RFC 6120 §8.2.3).
        match addressee {
            Target::Full(user, res) => {
                if let Some(h) = s.ctx.router.handle(&user, &res) {
                    let _ = h.send(Outbound::Stanza(iq.into()));
                }
            }
            Target::OwnAccount | Target::Server | Target::Bare(_) => pep::iq_response(s, &iq).await,
            _ => {}
        }
        return;
    }
    if !matches!(kind.as_str(), "get" | "set") || iq.attr("id").is_none() || iq.children().count() != 1 {
        return s.send_error(&iq, Condition::BadRequest);
    }
    if let Err(reply) = blocking::check_outbound(s, &iq, to, &addressee).await {
        return s.send(&reply);
    }
    let own = s.user.clone().unwrap_or_default();
    let payload_ns = iq.first_child().map(|c| c.ns().to_owned()).unwrap_or_default();
    match addressee {
        Target::Bare(user) if user == own => account(s, iq, &payload_ns, &user, true).await,
        Target::OwnAccount => account(s, iq, &payload_ns, &own, true).await,
        Target::Bare(user) => account(s, iq, &payload_ns, &user, false).await,
        Target::Server => server(s, iq, &payload_ns),
        Target::Full(user, res) => {
            match s.ctx.router.handle(&user, &res).map(|h| h.send(Outbound::Stanza(iq.clone().into()))) {
                Some(Ok(())) => {}
                Some(Err(Undeliverable::QueueFull)) => s.send_error(&iq, Condition::ResourceConstraint),
                _ => s.send_error(&iq, Condition::ServiceUnavailable),
            }
        }
        Target::Remote => s.send_error(&iq, Condition::RemoteServerNotFound),
        // Handled by the MUC service before the IQ dispatch.
        Target::Muc(..) | Target::Upload => s.send_error(&iq, Condition::ServiceUnavailable),
    }
}

/// IQs addressed to the server's domain.
fn server(s: &mut Session, iq: Element, payload_ns: &str) {
    match payload_ns {
        ns::DISCO_INFO => disco::server_info(s, &iq),
        ns::DISCO_ITEMS => disco::items(s, &iq),
        ns::PING => ping::handle(s, &iq),
        ns::VERSION => version::handle(s, &iq),
        carbons::NS => carbons::handle(s, &iq),
        extdisco::NS => extdisco::handle(s, &iq),
        // RFC 3921 session establishment, kept as a no-op for old clients (RFC 6121 Appendix E).
        ns::SESSION if iq.attr("type") == Some("set") => s.send(&stanza::iq_result(&iq, None)),
        _ => s.send_error(&iq, Condition::ServiceUnavailable),
    }
}

/// IQs addressed to an account's bare JID, answered by the server on its behalf (RFC 6121 §8.5.1).
async fn account(s: &mut Session, iq: Element, payload_ns: &str, owner: &str, own: bool) {
    match payload_ns {
        ns::ROSTER if own => roster::handle(s, iq).await,
        carbons::NS if own => carbons::handle(s, &iq),
        blocking::NS if own => blocking::handle(s, &iq).await,
        mam::NS if own => mam::handle(s, &iq).await,
        ns::DISCO_INFO => disco::account_info(s, &iq, own).await,
        ns::DISCO_ITEMS if own && iq.attr("to").is_none() => disco::items(s, &iq),
        ns::DISCO_ITEMS => pep::disco_items(s, &iq, owner).await,
        pep::NS | pep::NS_OWNER => pep::handle(s, iq, owner).await,
        vcard::NS => vcard::handle(s, &iq, owner, own).await,
        private::NS if own => private::handle(s, &iq, owner).await,
        ns::PING if own => ping::handle(s, &iq),
        // RFC 3921 session establishment without a `to` (Strophe.js, so Converse.js, sends it so).
        ns::SESSION if own && iq.attr("type") == Some("set") => s.send(&stanza::iq_result(&iq, None)),
        _ => s.send_error(&iq, StanzaError::new(Condition::ServiceUnavailable)),
    }
}
