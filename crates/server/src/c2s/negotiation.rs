//! Stream negotiation (RFC 6120 §4-7): stream header and features, STARTTLS, SASL, resource binding.

use base64::Engine;
use drupe_proto::error::{Condition, StanzaError, StreamCondition, StreamError};
use drupe_proto::sasl::{Mechanism, SaslError, SaslServer, Step};
use drupe_proto::stanza;
use drupe_proto::xml::{Element, StreamHeader};
use drupe_proto::{ns, BareJid, FullJid};
use tokio::sync::mpsc;

use super::session::{Flow, Session};
use crate::context::random_token;
use crate::router::{BindError, SessionHandle};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Normalizes a username (the localpart of an account) or returns `None` when it cannot be one.
pub fn normalize_username(name: &str, domain: &str) -> Option<String> {
    if name.is_empty() || name.contains(['@', '/']) {
        return None;
    }
    let jid = BareJid::new(&format!("{name}@{domain}")).ok()?;
    jid.node().map(|n| n.to_string())
}

impl Session {
    fn tls_required_and_missing(&self) -> bool {
        self.ctx.config.c2s.require_tls && !self.transport.is_tls()
    }

    pub(super) fn stream_open(&mut self, header: StreamHeader) -> Result<(), StreamError> {
        let id = random_token(16);
        let domain = self.ctx.domain().to_owned();
        self.send_raw(&stanza::stream_header(&domain, &id, header.from.as_deref()));
        self.header_sent = true;
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

    fn features(&self) -> Element {
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
        if !tls {
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
        }
        f
    }

    /// Everything before the resource is bound.
    pub(super) async fn negotiate(&mut self, el: Element) -> Result<Flow, StreamError> {
        if el.is("starttls", ns::TLS) {
            if self.transport.is_tls() || self.user.is_some() {
                self.send(&Element::new("failure", ns::TLS));
                return Err(StreamError::new(StreamCondition::PolicyViolation).with_text("TLS already negotiated"));
            }
            self.send(&Element::new("proceed", ns::TLS));
            self.flush().await.map_err(|_| StreamError::new(StreamCondition::UndefinedCondition))?;
            return Ok(Flow::StartTls);
        }
        if el.ns() == ns::SASL && self.user.is_none() {
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

    async fn sasl(&mut self, el: Element) -> Result<Flow, StreamError> {
        match el.name() {
            "auth" => {
                let tls = self.transport.is_tls();
                if self.tls_required_and_missing() {
                    return self.sasl_failure(SaslError::EncryptionRequired, false).await;
                }
                let mechanism = el.attr("mechanism").and_then(Mechanism::from_name);
                let Some(mechanism) = mechanism.filter(|m| Mechanism::offered(tls).contains(m)) else {
                    return self.sasl_failure(SaslError::InvalidMechanism, false).await;
                };
                let server =
                    SaslServer::new(mechanism, self.ctx.domain(), random_token(24), self.ctx.fake_salt_secret, tls)
                        .with_fake_iterations(self.ctx.config.auth.scram_iterations);
                self.sasl = Some(server);
                let text = el.text();
                if text.is_empty() {
                    // No initial response: ask for it with an empty challenge (RFC 6120 §6.4.2).
                    self.send(&Element::new("challenge", ns::SASL));
                    return Ok(Flow::Continue);
                }
                self.sasl_input(&text).await
            }
            "response" if self.sasl.is_some() => self.sasl_input(&el.text()).await,
            "response" => self.sasl_failure(SaslError::MalformedRequest, false).await,
            "abort" => {
                self.sasl = None;
                self.sasl_failure(SaslError::Aborted, false).await
            }
            _ => Err(StreamError::new(StreamCondition::UnsupportedStanzaType)),
        }
    }

    async fn sasl_input(&mut self, text: &str) -> Result<Flow, StreamError> {
        let text = text.trim();
        let data = if text == "=" { Ok(Vec::new()) } else { B64.decode(text) };
        let Ok(data) = data else {
            self.sasl = None;
            return self.sasl_failure(SaslError::IncorrectEncoding, true).await;
        };
        let Some(mut server) = self.sasl.take() else {
            return self.sasl_failure(SaslError::MalformedRequest, false).await;
        };
        let mut step = server.step(&data);
        loop {
            match step {
                Ok(Step::NeedCredentials { username }) => {
                    let creds = match normalize_username(&username, self.ctx.domain()) {
                        Some(user) => self.ctx.store.account_credentials(&user).await.map_err(internal)?,
                        None => None,
                    };
                    step = server.provide_credentials(creds.as_ref());
                }
                Ok(Step::Challenge(challenge)) => {
                    self.send(&Element::new("challenge", ns::SASL).with_text(B64.encode(challenge)));
                    self.sasl = Some(server);
                    return Ok(Flow::Continue);
                }
                Ok(Step::Success { username, additional_data }) => {
                    let Some(user) = normalize_username(&username, self.ctx.domain()) else {
                        return self.sasl_failure(SaslError::NotAuthorized, true).await;
                    };
                    self.ctx.throttle.success(self.peer.ip());
                    let mut success = Element::new("success", ns::SASL);
                    if let Some(data) = additional_data {
                        success.append_text(B64.encode(data));
                    }
                    self.send(&success);
                    tracing::info!(user = %user, "authenticated");
                    self.user = Some(user);
                    self.header_sent = false;
                    return Ok(Flow::Restart);
                }
                Err(e) => {
                    let counts = matches!(e, SaslError::NotAuthorized | SaslError::InvalidAuthzid);
                    return self.sasl_failure(e, counts).await;
                }
            }
        }
    }

    /// Sends `<failure/>`; a failure that counts as a wrong credential is delayed (growing per address) and ends
    /// the connection after `max_attempts_per_connection`.
    async fn sasl_failure(&mut self, error: SaslError, counts: bool) -> Result<Flow, StreamError> {
        self.sasl = None;
        if counts {
            self.auth_failures += 1;
            let delay = self.ctx.throttle.failure(self.peer.ip(), std::time::Instant::now());
            tracing::info!(failures = self.auth_failures, delay_ms = delay.as_millis() as u64, "authentication failed");
            tokio::time::sleep(delay).await;
        }
        self.send(&Element::new("failure", ns::SASL).with_child(Element::new(error.condition(), ns::SASL)));
        if self.auth_failures >= self.ctx.config.auth.max_attempts_per_connection {
            return Err(StreamError::new(StreamCondition::PolicyViolation).with_text("too many failed authentications"));
        }
        Ok(Flow::Continue)
    }

    fn bind(&mut self, iq: &Element, requested: Option<&str>) {
        let Some(user) = self.user.clone() else { return };
        if iq.attr("type") != Some("set") {
            return self.send_error(iq, Condition::BadRequest);
        }
        let resource = match requested {
            Some(r) if !r.is_empty() => r.to_owned(),
            _ => random_token(12),
        };
        let Ok(jid) = FullJid::new(&format!("{user}@{}/{resource}", self.ctx.domain())) else {
            return self.send_error(iq, Condition::BadRequest);
        };
        let (tx, rx) = mpsc::channel(self.ctx.config.c2s.outbound_queue);
        let handle = SessionHandle { id: self.id, tx };
        let max = self.ctx.config.limits.max_resources_per_account;
        match self.ctx.router.bind(&user, jid.resource().as_str(), handle, max) {
            Ok(Some(old)) => {
                let _ = old.send(crate::router::Outbound::Replaced);
            }
            Ok(None) => {}
            Err(BindError::TooManyResources) => {
                return self.send_error(
                    iq,
                    StanzaError::new(Condition::ResourceConstraint).with_text("too many sessions for this account"),
                );
            }
        }
        self.set_queue(Some(rx));
        tracing::Span::current().record("jid", tracing::field::display(&jid));
        let payload =
            Element::new("bind", ns::BIND).with_child(Element::new("jid", ns::BIND).with_text(jid.to_string()));
        let mut result = stanza::iq_result(iq, Some(payload));
        result.remove_attr("to");
        result.remove_attr("from");
        self.send(&result);
        self.jid = Some(jid);
    }
}

/// A store failure inside a session: logged once, reported to the client as internal-server-error.
pub fn internal(e: drupe_store::StoreError) -> StreamError {
    tracing::error!(error = %e, "store error");
    StreamError::new(StreamCondition::InternalServerError)
}
