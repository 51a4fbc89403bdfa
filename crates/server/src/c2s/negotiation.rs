//! Stream negotiation (RFC 6120 §4-7): stream header and features, STARTTLS, SASL, resource binding.

use std::time::Duration;

use drupe_proto::error::{Condition, StanzaError, StreamCondition, StreamError};
use drupe_proto::sasl::Mechanism;
use drupe_proto::stanza;
use drupe_proto::xml::{Element, StreamHeader};
use drupe_proto::{ns, BareJid, FullJid};

use super::session::{Flow, Session};
use super::tls::TlsStream;
use super::transport::Transport;
use crate::context::random_token;
use crate::router::{BindError, SessionHandle};

/// Normalizes a username (the localpart of an account) or returns `None` when it cannot be one.
pub fn normalize_username(name: &str, domain: &str) -> Option<String> {
    if name.is_empty() || name.contains(['@', '/']) {
        return None;
    }
    let jid = BareJid::new(&format!("{name}@{domain}")).ok()?;
    jid.node().map(|n| n.to_string())
}

impl Session {
    pub(super) fn tls_required_and_missing(&self) -> bool {
        self.ctx.config.c2s.require_tls && !self.transport.is_tls()
    }

    pub(super) fn stream_open(&mut self, header: StreamHeader) -> Result<(), StreamError> {
        let id = random_token(16);
        let domain = self.ctx.domain().to_owned();
        self.out.header(&domain, &id, header.from.as_deref());
        self.header_sent = true;
        if header.content_ns.as_deref() != Some(ns::CLIENT) {
            return Err(StreamError::new(StreamCondition::InvalidNamespace).with_text("content namespace"));
        }
        if header.version.as_deref() != Some("1.0") {
            return Err(StreamError::new(StreamCondition::UnsupportedVersion));
        }
        match header.to.as_deref() {
            Some(to) if to.eq_ignore_ascii_case(&domain) => {}
            _ => return Err(StreamError::new(StreamCondition::HostUnknown)),
        }
        let features = self.features();
        self.send(&features);
        Ok(())
    }

    pub(super) fn features(&self) -> Element {
        let mut f = Element::new("features", ns::STREAMS);
        if self.user.is_some() {
            f.push(Element::new("bind", ns::BIND));
            f.push(Element::new("session", ns::SESSION).with_child(Element::new("optional", ns::SESSION)));
            f.push(Element::new("ver", ns::ROSTER_VER));
            f.push(Element::new("sub", ns::PRE_APPROVAL));
            f.push(Element::new("sm", super::sm::NS));
            f.push(Element::new("csi", super::csi::NS));
            return f;
        }
        let tls = self.transport.is_tls();
        // WebSocket and BOSH get their TLS from HTTPS (RFC 7395 §3.3.1): no STARTTLS inside them.
        if !tls && !self.transport.is_framed() {
            let mut starttls = Element::new("starttls", ns::TLS);
            if self.ctx.config.c2s.require_tls {
                starttls.push(Element::new("required", ns::TLS));
            }
            f.push(starttls);
        }
        if !self.tls_required_and_missing() {
            let mut mechs = Element::new("mechanisms", ns::SASL);
            for m in Mechanism::offered(tls) {
                mechs.push(Element::new("mechanism", ns::SASL).with_text(m.name()));
            }
            f.push(mechs);
            f.push(super::sasl::sasl2_feature(tls, tls && self.ctx.config.auth.fast_token_days > 0));
        }
        f
    }

    /// Everything before the resource is bound.
    pub(super) async fn negotiate(&mut self, el: Element) -> Result<Flow, StreamError> {
        if el.is("starttls", ns::TLS) {
            if self.transport.is_tls() || self.transport.is_framed() || self.user.is_some() {
                self.send(&Element::new("failure", ns::TLS));
                return Err(StreamError::new(StreamCondition::PolicyViolation).with_text("TLS already negotiated"));
            }
            self.send(&Element::new("proceed", ns::TLS));
            self.flush().await.map_err(|_| StreamError::new(StreamCondition::UndefinedCondition))?;
            return Ok(Flow::StartTls);
        }
        if (el.ns() == ns::SASL || el.ns() == super::sasl::NS_SASL2) && self.user.is_none() {
            return self.sasl(el).await;
        }
        if self.user.is_some() && el.is("resume", super::sm::NS) {
            self.sm_resume(&el).await?;
            return Ok(Flow::Continue);
        }
        if self.user.is_some() && el.is("enable", super::sm::NS) {
            // Stream management needs a bound resource (XEP-0198 §3).
            self.send(
                &Element::new("failed", super::sm::NS)
                    .with_child(Element::new("unexpected-request", ns::STANZA_ERRORS)),
            );
            return Ok(Flow::Continue);
        }
        if self.user.is_some() && stanza::kind(&el) == Some(stanza::Kind::Iq) {
            if let Some(bind) = el.child("bind", ns::BIND) {
                let requested = bind.child("resource", ns::BIND).map(|r| r.text());
                self.bind(&el, requested.as_deref().map(str::trim));
                return Ok(Flow::Continue);
            }
        }
        if self.tls_required_and_missing() {
            return Err(StreamError::new(StreamCondition::PolicyViolation).with_text("STARTTLS is required"));
        }
        Err(StreamError::new(StreamCondition::NotAuthorized))
    }

    /// STARTTLS (RFC 6120 §5.4.3.3): the plain socket becomes a TLS one; the stream restarts.
    pub(super) async fn start_tls(&mut self) -> Result<(), StreamError> {
        let Transport::Plain(tcp) = std::mem::replace(&mut self.transport, Transport::Upgrading) else {
            return Err(StreamError::new(StreamCondition::InternalServerError));
        };
        let timeout = Duration::from_secs(self.ctx.config.c2s.auth_timeout_secs);
        match Box::pin(TlsStream::accept(tcp, self.ctx.tls_config.clone(), timeout)).await {
            Ok(tls) => {
                self.transport = Transport::Tls(Box::new(tls));
                self.reader.reset();
                self.header_sent = false;
                Ok(())
            }
            // Nothing can be sent on a socket whose handshake failed; end quietly.
            _ => {
                self.closing = true;
                Ok(())
            }
        }
    }

    /// RFC 6120 §7 resource binding by IQ.
    fn bind(&mut self, iq: &Element, requested: Option<&str>) {
        if iq.attr("type") != Some("set") {
            return self.send_error(iq, Condition::BadRequest);
        }
        let resource = match requested {
            Some(r) if !r.is_empty() => r.to_owned(),
            _ => random_token(12),
        };
        match self.bind_resource(&resource) {
            Ok(jid) => {
                let payload =
                    Element::new("bind", ns::BIND).with_child(Element::new("jid", ns::BIND).with_text(jid.to_string()));
                let mut result = stanza::iq_result(iq, Some(payload));
                result.remove_attr("to");
                result.remove_attr("from");
                self.send(&result);
            }
            Err(e) => self.send_error(iq, e),
        }
    }

    /// Binds `resource` for the authenticated account (replacing a session that had it) and registers this
    /// session's queue with the router.
    pub(super) fn bind_resource(&mut self, resource: &str) -> Result<FullJid, StanzaError> {
        let user = self.user.clone().ok_or_else(|| StanzaError::new(Condition::NotAuthorized))?;
        let jid = FullJid::new(&format!("{user}@{}/{resource}", self.ctx.domain()))
            .map_err(|_| StanzaError::new(Condition::BadRequest))?;
        let (tx, rx) = crate::queue::channel(self.ctx.config.c2s.outbound_queue);
        let handle = SessionHandle { id: self.id, tx };
        let max = self.ctx.config.limits.max_resources_per_account;
        match self.ctx.router.bind(&user, jid.resource().as_str(), handle, max) {
            Ok(Some(old)) => {
                let _ = old.send(crate::router::Outbound::Replaced);
            }
            Ok(None) => {}
            Err(BindError::TooManyResources) => {
                return Err(
                    StanzaError::new(Condition::ResourceConstraint).with_text("too many sessions for this account")
                );
            }
        }
        self.set_queue(Some(rx));
        tracing::Span::current().record("jid", tracing::field::display(&jid));
        self.jid = Some(jid.clone());
        Ok(jid)
    }
}

/// A store failure inside a session: logged once, reported to the client as internal-server-error.
pub fn internal(e: drupe_store::StoreError) -> StreamError {
    tracing::error!(error = %e, "store error");
    StreamError::new(StreamCondition::InternalServerError)
}
