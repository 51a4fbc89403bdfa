//! SASL authentication in both profiles: RFC 6120 §6 (`<auth/>`, then a stream restart) and XEP-0388 SASL2
//! (`<authenticate/>`, no restart), the latter with inline XEP-0386 Bind2 (resource, carbons, stream management,
//! CSI) and XEP-0198 resumption, so a modern client is online after one round trip.
//!
//! The mechanisms themselves are `proto::sasl::SaslServer`; this file only feeds it and formats its results.

use base64::Engine;
use drupe_proto::error::{StreamCondition, StreamError};
use drupe_proto::ns;
use drupe_proto::sasl::{ht, Mechanism, SaslError, SaslServer, Step};
use drupe_proto::xml::Element;

use super::negotiation::{internal, normalize_username};
use super::session::{Flow, Session};
use crate::auth::Admission;
use crate::context::random_token;
use crate::modules::carbons;

pub const NS_SASL2: &str = "urn:xmpp:sasl:2";
pub const NS_BIND2: &str = "urn:xmpp:bind:0";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Which profile an exchange runs in, with what a SASL2 client asked to do inline.
pub enum Profile {
    Sasl1,
    Sasl2(Box<Inline>),
}

/// What a SASL2 `<authenticate/>` asked for besides authentication.
#[derive(Default)]
pub struct Inline {
    user_agent_id: Option<String>,
    bind: Option<Element>,
    resume: Option<Element>,
    /// XEP-0484: a token was requested (`<request-token/>`).
    request_token: bool,
    /// XEP-0484: `<fast invalidate='true'/>`.
    invalidate_token: bool,
    /// XEP-0484: the current token is past half its life; issue a new one.
    rotate_token: bool,
}

/// An exchange in progress.
pub struct Exchange {
    server: SaslServer,
    profile: Profile,
    /// The account the client named, once it has (the throttle counts failures per account too).
    account: Option<String>,
}

/// How a SASL failure counts toward slowing down password guessing (`auth.rs`).
enum Guess {
    /// Not a guess (an abort, an unknown mechanism, ...).
    No,
    /// A wrong credential, for the account named if any: delayed, and counted per address and per account.
    Wrong(Option<String>),
    /// Refused before verification: counts toward the connection's attempts only.
    Refused,
}

/// `<authentication/>` for the stream features: the SASL2 mechanisms and what may be done inline.
pub fn sasl2_feature(tls: bool, fast: bool) -> Element {
    let mut auth = Element::new("authentication", NS_SASL2);
    for m in Mechanism::offered(tls) {
        auth.push(Element::new("mechanism", NS_SASL2).with_text(m.name()));
    }
    let mut bind_inline = Element::new("inline", NS_BIND2);
    for var in [carbons::NS, super::sm::NS, super::csi::NS] {
        bind_inline.push(Element::new("feature", NS_BIND2).with_attr("var", var));
    }
    let mut inline = Element::new("inline", NS_SASL2)
        .with_child(Element::new("bind", NS_BIND2).with_child(bind_inline))
        .with_child(Element::new("sm", super::sm::NS));
    if fast {
        inline.push(super::fast::feature());
    }
    auth.with_child(inline)
}

impl Profile {
    fn ns(&self) -> &'static str {
        match self {
            Profile::Sasl1 => ns::SASL,
            Profile::Sasl2(_) => NS_SASL2,
        }
    }
}

impl Session {
    pub(super) async fn sasl(&mut self, el: Element) -> Result<Flow, StreamError> {
        match (el.ns(), el.name()) {
            (ns::SASL, "auth") => {
                let text = el.text();
                let initial = (!text.is_empty()).then_some(text);
                self.sasl_start(Profile::Sasl1, el.attr("mechanism"), initial).await
            }
            (NS_SASL2, "authenticate") => {
                let profile = Profile::Sasl2(Box::new(Inline {
                    user_agent_id: el.child("user-agent", NS_SASL2).and_then(|u| u.attr("id")).map(str::to_owned),
                    bind: el.child("bind", NS_BIND2).cloned(),
                    resume: el.child("resume", super::sm::NS).cloned(),
                    request_token: el.child("request-token", super::fast::NS).is_some(),
                    invalidate_token: el
                        .child("fast", super::fast::NS)
                        .is_some_and(|f| matches!(f.attr("invalidate"), Some("true" | "1"))),
                    rotate_token: false,
                }));
                let initial = el.child("initial-response", NS_SASL2).map(Element::text);
                self.sasl_start(profile, el.attr("mechanism"), initial).await
            }
            (_, "response") => match self.sasl.take() {
                Some(exchange) => self.sasl_input(*exchange, &el.text()).await,
                None => self.sasl_failure(profile_of(&el), SaslError::MalformedRequest, Guess::No).await,
            },
            (_, "abort") => {
                self.sasl = None;
                self.sasl_failure(profile_of(&el), SaslError::Aborted, Guess::No).await
            }
            _ => Err(StreamError::new(StreamCondition::UnsupportedStanzaType)),
        }
    }

    async fn sasl_start(
        &mut self,
        profile: Profile,
        mechanism: Option<&str>,
        initial: Option<String>,
    ) -> Result<Flow, StreamError> {
        let tls = self.transport.is_tls();
        if self.tls_required_and_missing() {
            return self.sasl_failure(profile, SaslError::EncryptionRequired, Guess::No).await;
        }
        // An address whose recent failures are not paid for yet is not verified at all (`auth.rs`).
        match self.ctx.throttle.admit(self.peer.ip(), std::time::Instant::now()) {
            Admission::Refused => {
                return self.sasl_failure(profile, SaslError::TemporaryAuthFailure, Guess::Refused).await
            }
            Admission::After(wait) if !wait.is_zero() => tokio::time::sleep(wait).await,
            Admission::After(_) => {}
        }
        if mechanism == Some(ht::MECHANISM) && tls && self.ctx.config.auth.fast_token_days > 0 {
            if let Profile::Sasl2(inline) = profile {
                return self.fast_authenticate(inline, initial).await;
            }
        }
        let mechanism = mechanism.and_then(Mechanism::from_name).filter(|m| Mechanism::offered(tls).contains(m));
        let Some(mechanism) = mechanism else {
            return self.sasl_failure(profile, SaslError::InvalidMechanism, Guess::No).await;
        };
        let server = SaslServer::new(mechanism, self.ctx.domain(), random_token(24), self.ctx.fake_salt_secret, tls)
            .with_fake_iterations(self.ctx.config.auth.scram_iterations);
        let exchange = Exchange { server, profile, account: None };
        match initial {
            Some(text) => self.sasl_input(exchange, &text).await,
            None => {
                // No initial response: ask for it with an empty challenge (RFC 6120 §6.4.2).
                self.send(&Element::new("challenge", exchange.profile.ns()));
                self.sasl = Some(Box::new(exchange));
                Ok(Flow::Continue)
            }
        }
    }

    async fn sasl_input(&mut self, mut exchange: Exchange, text: &str) -> Result<Flow, StreamError> {
        let text = text.trim();
        let data = if text == "=" { Ok(Vec::new()) } else { B64.decode(text) };
        let Ok(data) = data else {
            return self.sasl_failure(exchange.profile, SaslError::IncorrectEncoding, Guess::Wrong(None)).await;
        };
        let mut step = exchange.server.step(&data);
        loop {
            match step {
                Ok(Step::NeedCredentials { username }) => {
                    let user = normalize_username(&username, self.ctx.domain());
                    let creds = match &user {
                        Some(user) => self.ctx.store.account_credentials(user).await.map_err(internal)?,
                        None => None,
                    };
                    exchange.account = user;
                    step = exchange.server.provide_credentials(creds.as_ref());
                }
                Ok(Step::Challenge(challenge)) => {
                    self.send(&Element::new("challenge", exchange.profile.ns()).with_text(B64.encode(challenge)));
                    self.sasl = Some(Box::new(exchange));
                    return Ok(Flow::Continue);
                }
                Ok(Step::Success { username, additional_data }) => {
                    let Some(user) = normalize_username(&username, self.ctx.domain()) else {
                        return self.sasl_failure(exchange.profile, SaslError::NotAuthorized, Guess::Wrong(None)).await;
                    };
                    self.authenticated(user, "SASL");
                    return self.sasl_success(exchange.profile, additional_data).await;
                }
                Err(e) => {
                    let counts = matches!(e, SaslError::NotAuthorized | SaslError::InvalidAuthzid);
                    let guess = if counts { Guess::Wrong(exchange.account.take()) } else { Guess::No };
                    return self.sasl_failure(exchange.profile, e, guess).await;
                }
            }
        }
    }

    /// The client proved to be `user`: what it sends from now on is read with the limits of a logged-in client.
    fn authenticated(&mut self, user: String, how: &str) {
        self.ctx.throttle.success(&user);
        tracing::info!(user = %user, how, "authenticated");
        self.user = Some(user);
        self.reader.set_limits(self.ctx.config.limits.reader(true));
    }

    /// XEP-0484: one HMAC instead of a SASL exchange.
    async fn fast_authenticate(
        &mut self,
        mut inline: Box<Inline>,
        initial: Option<String>,
    ) -> Result<Flow, StreamError> {
        let data = initial.and_then(|t| B64.decode(t.trim()).ok()).unwrap_or_default();
        match super::fast::verify(&self.ctx, &data, inline.user_agent_id.as_deref()).await.map_err(internal)? {
            Some((user, answer, rotate)) => {
                self.authenticated(user, "a FAST token");
                inline.rotate_token = rotate;
                self.sasl_success(Profile::Sasl2(inline), Some(answer)).await
            }
            None => self.sasl_failure(Profile::Sasl2(inline), SaslError::NotAuthorized, Guess::Wrong(None)).await,
        }
    }

    async fn sasl_success(&mut self, profile: Profile, additional: Option<Vec<u8>>) -> Result<Flow, StreamError> {
        let Profile::Sasl2(inline_request) = profile else {
            let mut success = Element::new("success", ns::SASL);
            if let Some(data) = additional {
                success.append_text(B64.encode(data));
            }
            self.send(&success);
            self.header_sent = false;
            return Ok(Flow::Restart);
        };
        let Inline { user_agent_id, bind, resume, request_token, invalidate_token, rotate_token } = *inline_request;
        let mut success = Element::new("success", NS_SASL2);
        if let Some(data) = additional {
            success.push(Element::new("additional-data", NS_SASL2).with_text(B64.encode(data)));
        }
        let mut inline = Vec::new();
        let mut resend = Vec::new();
        if let Some(resume) = &resume {
            match self.sm_take_over(resume).await? {
                Ok((resumed, r)) => {
                    inline.push(resumed);
                    resend = r;
                }
                Err(failed) => inline.push(failed),
            }
        }
        if self.jid.is_none() {
            if let Some(bind) = &bind {
                match self.bind2(bind, user_agent_id.as_deref()) {
                    Ok(bound) => inline.push(bound),
                    Err(e) => {
                        tracing::debug!(condition = e.condition.as_str(), "bind2 refused");
                        return self.sasl_failure_after_auth(e.condition.as_str()).await;
                    }
                }
            }
        }
        let identity = match &self.jid {
            Some(jid) => jid.to_string(),
            None => format!("{}@{}", self.user.as_deref().unwrap_or_default(), self.ctx.domain()),
        };
        success.push(Element::new("authorization-identifier", NS_SASL2).with_text(identity));
        if let (Some(ua), Some(user)) = (user_agent_id.as_deref(), self.user.clone()) {
            if invalidate_token {
                self.ctx.store.fast_tokens_revoke(&user, Some(ua)).await.map_err(internal)?;
            } else if (request_token || rotate_token) && self.ctx.config.auth.fast_token_days > 0 {
                success.push(super::fast::issue(&self.ctx, &user, ua).await.map_err(internal)?);
            }
        }
        for el in inline {
            success.push(el);
        }
        self.send(&success);
        for sent in resend {
            self.resend(sent);
        }
        if self.jid.is_none() {
            // No restart in SASL2: the post-authentication features follow directly (bind etc.).
            let features = self.features();
            self.send(&features);
        }
        Ok(Flow::Continue)
    }

    /// XEP-0386: binds a resource derived from the client's tag (stable per user agent, so a reconnecting device
    /// replaces its own old session) and applies the inline requests. Returns `<bound/>`.
    fn bind2(
        &mut self,
        bind: &Element,
        user_agent_id: Option<&str>,
    ) -> Result<Element, drupe_proto::error::StanzaError> {
        let tag: String = bind
            .child("tag", NS_BIND2)
            .map(Element::text)
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_')
            .take(32)
            .collect();
        let suffix = match user_agent_id {
            Some(id) => device_suffix(&self.ctx.fake_salt_secret, self.user.as_deref().unwrap_or_default(), id),
            None => random_token(8),
        };
        let resource = if tag.is_empty() { suffix } else { format!("{tag}.{suffix}") };
        let jid = self.bind_resource(&resource)?;
        let mut bound = Element::new("bound", NS_BIND2);
        for req in bind.children() {
            match (req.ns(), req.name()) {
                (carbons::NS, "enable") => {
                    if let Some(user) = self.user.clone() {
                        self.ctx.router.set_carbons(&user, jid.resource().as_str(), self.id, true);
                    }
                }
                (super::sm::NS, "enable") => bound.push(self.sm_enable(req)),
                (super::csi::NS, _) => self.csi_element(req),
                _ => {}
            }
        }
        Ok(bound)
    }

    /// Authentication succeeded but the inline bind could not be done: report it as a SASL2 failure.
    async fn sasl_failure_after_auth(&mut self, condition: &str) -> Result<Flow, StreamError> {
        self.user = None;
        let failure = Element::new("failure", NS_SASL2)
            .with_child(Element::new("aborted", ns::SASL))
            .with_child(Element::new("text", NS_SASL2).with_text(format!("bind failed: {condition}")));
        self.send(&failure);
        Ok(Flow::Continue)
    }

    /// Sends `<failure/>`; a wrong credential is delayed (growing per address and per account, `auth.rs`), and
    /// wrong or refused attempts end the connection after `max_attempts_per_connection`.
    async fn sasl_failure(&mut self, profile: Profile, error: SaslError, guess: Guess) -> Result<Flow, StreamError> {
        self.sasl = None;
        match guess {
            Guess::No => {}
            Guess::Wrong(account) => {
                self.auth_failures += 1;
                let now = std::time::Instant::now();
                let delay = self.ctx.throttle.failure(self.peer.ip(), account.as_deref(), now);
                tracing::info!(
                    failures = self.auth_failures,
                    delay_ms = delay.as_millis() as u64,
                    "authentication failed"
                );
                tokio::time::sleep(delay).await;
            }
            Guess::Refused => {
                self.auth_failures += 1;
                tracing::info!(
                    failures = self.auth_failures,
                    "authentication refused: recent failures from this address"
                );
            }
        }
        self.send(&Element::new("failure", profile.ns()).with_child(Element::new(error.condition(), ns::SASL)));
        if self.auth_failures >= self.ctx.config.auth.max_attempts_per_connection {
            return Err(StreamError::new(StreamCondition::PolicyViolation).with_text("too many failed authentications"));
        }
        Ok(Flow::Continue)
    }
}

fn profile_of(el: &Element) -> Profile {
    if el.ns() == NS_SASL2 {
        Profile::Sasl2(Box::default())
    } else {
        Profile::Sasl1
    }
}

/// A short stable suffix for (account, user agent): the same device gets the same resource.
fn device_suffix(secret: &[u8; 32], user: &str, user_agent_id: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, format!("{user}\0{user_agent_id}").as_bytes());
    tag.as_ref()[..6].iter().map(|b| format!("{b:02x}")).collect()
}
