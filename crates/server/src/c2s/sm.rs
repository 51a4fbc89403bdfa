//! XEP-0198 Stream Management: stanza acknowledgements both ways and resumption of a session whose connection
//! dropped.
//!
//! The inbound count `h` grows only after a stanza is fully handled, its archive and offline copies committed, and in
//! the order stanzas came (a session reads on while a message's archive write commits: durable.rs), so an `<a/>`
//! from us always means durable. Outbound stanzas stay queued until the client acknowledges them; if the session is
//! not resumed in time, unacknowledged messages are routed again (to other resources or offline storage), never
//! dropped.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use drupe_proto::error::{StreamCondition, StreamError};
use drupe_proto::xml::Element;
use drupe_proto::FullJid;
use tokio::sync::oneshot;

use super::session::{recv, Session};
use crate::context::random_token;
use crate::queue;
use crate::router::{Outbound, Prepared};

/// Resumptions of one detached session that may be asked for at once (the first takes it over; the others then
/// find nothing to take).
const TAKEOVER_QUEUE: usize = 2;

pub const NS: &str = "urn:xmpp:sm:3";

/// Per-session acknowledgement state.
#[derive(Debug, Default)]
pub struct StreamManagement {
    /// Resumption id, when the client asked for resumption.
    pub id: Option<String>,
    /// Stanzas handled from the client, modulo 2^32.
    pub inbound: u32,
    /// The last `h` the client acknowledged, modulo 2^32.
    pub acked: u32,
    /// Stanzas sent and not yet acknowledged, oldest first.
    pub unacked: VecDeque<Sent>,
    /// One of our `<r/>` is outstanding.
    pub requested: bool,
}

impl StreamManagement {
    /// Applies the client's `h`. Errors when it acknowledges more than was sent (XEP-0198 §4).
    pub fn ack(&mut self, h: u32) -> Result<(), StreamError> {
        let newly = h.wrapping_sub(self.acked) as usize;
        if newly > self.unacked.len() {
            return Err(StreamError::new(StreamCondition::UndefinedCondition).with_text("handled count too high"));
        }
        self.unacked.drain(..newly);
        self.acked = h;
        self.requested = false;
        Ok(())
    }
}

/// A stanza kept for resending: as sent to this session (shared element or shared serialization).
#[derive(Debug, Clone)]
pub enum Sent {
    Element(Arc<Element>),
    Addressed(Arc<Prepared>, Box<str>),
}

impl Sent {
    /// The stanza as an element (for routing it again when nobody resumes).
    pub fn into_element(self) -> Element {
        match self {
            Sent::Element(el) => Arc::unwrap_or_clone(el),
            Sent::Addressed(p, to) => p.to_element(&to),
        }
    }
}

/// Everything a resuming connection takes over from the session it replaces.
pub struct Detached {
    pub id: u64,
    pub jid: FullJid,
    pub rx: Option<queue::Receiver<Outbound>>,
    pub presence: Option<Element>,
    pub roster_requested: bool,
    pub offline_delivered: bool,
    pub directed: HashSet<String>,
    pub sm: StreamManagement,
    /// Stanzas that arrived while the session was waiting for its client to come back.
    pub held: Vec<Arc<Element>>,
}

/// A request, sent to the session that owns a resumption id, to hand its state over.
pub type Takeover = oneshot::Sender<Box<Detached>>;

fn failed(condition: &str) -> Element {
    Element::new("failed", NS).with_child(Element::new(condition, drupe_proto::ns::STANZA_ERRORS))
}

fn parse_h(el: &Element) -> Option<u32> {
    el.attr("h")?.parse().ok()
}

impl Session {
    /// A top-level element in the SM namespace on a bound stream.
    pub(super) fn sm_element(&mut self, el: &Element) -> Result<(), StreamError> {
        match el.name() {
            "enable" => {
                let reply = self.sm_enable(el);
                self.send(&reply);
            }
            "r" => {
                if self.sm.is_none() {
                    return Err(StreamError::new(StreamCondition::UnsupportedStanzaType));
                }
                self.sm_request();
            }
            "a" => {
                let h = parse_h(el).ok_or_else(|| StreamError::new(StreamCondition::InvalidXml))?;
                match self.sm.as_mut() {
                    Some(sm) => sm.ack(h)?,
                    None => return Err(StreamError::new(StreamCondition::UnsupportedStanzaType)),
                }
            }
            _ => return Err(StreamError::new(StreamCondition::UnsupportedStanzaType)),
        }
        Ok(())
    }

    /// Enables stream management; returns `<enabled/>` or `<failed/>` (sent by the caller, or inside Bind2's
    /// `<bound/>`).
    pub(super) fn sm_enable(&mut self, el: &Element) -> Element {
        if self.sm.is_some() {
            return failed("unexpected-request");
        }
        let mut sm = StreamManagement::default();
        let mut enabled = Element::new("enabled", NS);
        if matches!(el.attr("resume"), Some("true" | "1")) {
            let id = random_token(24);
            let (tx, rx) = queue::channel(TAKEOVER_QUEUE);
            if let Some(user) = self.user.clone() {
                self.ctx.resumption_register(&id, &user, self.id, tx);
            }
            self.takeover = Some(rx);
            enabled.set_attr("id", id.as_str());
            enabled.set_attr("resume", "true");
            enabled.set_attr("max", self.ctx.config.sm.resume_timeout_secs.to_string());
            sm.id = Some(id);
        }
        self.sm = Some(sm);
        enabled
    }

    /// Counts a stanza from the client as handled: now, or after the archive writes still committing (durable.rs).
    pub(super) fn sm_handled(&mut self) {
        if self.sm.is_some() && !self.commits.count_after() {
            self.sm_count(1);
        }
    }

    /// Ends the stream when the client leaves too much unacknowledged (a bounded copy per session).
    pub(super) fn sm_check(&self) -> Result<(), StreamError> {
        match &self.sm {
            Some(sm) if sm.unacked.len() > self.ctx.config.sm.max_unacked => {
                Err(StreamError::new(StreamCondition::ResourceConstraint).with_text("too many unacknowledged stanzas"))
            }
            _ => Ok(()),
        }
    }

    /// Asks for an acknowledgement when enough stanzas are outstanding.
    pub(super) fn sm_request_if_due(&mut self) {
        let every = self.ctx.config.sm.request_ack_every;
        let due = self.sm.as_ref().is_some_and(|sm| !sm.requested && sm.unacked.len() >= every);
        if due {
            if let Some(sm) = self.sm.as_mut() {
                sm.requested = true;
            }
            self.out.raw_element(b"<r xmlns='urn:xmpp:sm:3'/>");
        }
    }

    /// `<resume/>` on an authenticated, not yet bound stream (XEP-0198 §5).
    pub(super) async fn sm_resume(&mut self, el: &Element) -> Result<(), StreamError> {
        match self.sm_take_over(el).await? {
            Ok((resumed, resend)) => {
                self.send(&resumed);
                for sent in resend {
                    self.resend(sent);
                }
            }
            Err(failed) => self.send(&failed),
        }
        Ok(())
    }

    /// Takes the state of the session named by `<resume previd h/>`. `Ok(Ok((resumed, resend)))`: this session is
    /// now that one; send `<resumed/>` then the stanzas to resend. `Ok(Err(failed))`: nothing to resume.
    pub(super) async fn sm_take_over(
        &mut self,
        el: &Element,
    ) -> Result<Result<(Element, Vec<Sent>), Element>, StreamError> {
        let (Some(previd), Some(h)) = (el.attr("previd"), parse_h(el)) else {
            return Ok(Err(failed("bad-request")));
        };
        let Some(user) = self.user.clone() else { return Ok(Err(failed("unexpected-request"))) };
        let Some(owner) = self.ctx.resumption_lookup(previd, &user) else {
            return Ok(Err(failed("item-not-found")));
        };
        let (tx, rx) = oneshot::channel();
        let detached = match owner.try_send(tx) {
            Ok(()) => tokio::time::timeout(Duration::from_secs(5), rx).await.ok().and_then(Result::ok),
            Err(_) => None,
        };
        let Some(mut d) = detached else {
            return Ok(Err(failed("item-not-found")));
        };
        d.sm.ack(h)?;
        let previd = previd.to_owned();
        let (tx, takeover) = queue::channel(TAKEOVER_QUEUE);
        self.ctx.resumption_register(&previd, &user, d.id, tx);
        self.takeover = Some(takeover);
        self.id = d.id;
        tracing::Span::current().record("jid", tracing::field::display(&d.jid));
        tracing::info!(unacked = d.sm.unacked.len(), held = d.held.len(), "session resumed");
        self.jid = Some(d.jid);
        self.presence = d.presence;
        self.roster_requested = d.roster_requested;
        self.offline_delivered = d.offline_delivered;
        self.directed = d.directed;
        self.set_queue(d.rx);
        let inbound = d.sm.inbound;
        let mut resend: Vec<Sent> = d.sm.unacked.drain(..).collect();
        resend.extend(d.held.into_iter().map(Sent::Element));
        self.sm = Some(d.sm);
        let resumed = Element::new("resumed", NS).with_attr("previd", previd).with_attr("h", inbound.to_string());
        Ok(Ok((resumed, resend)))
    }
}

impl Session {
    pub(super) fn resumable(&self) -> bool {
        self.sm.as_ref().is_some_and(|sm| sm.id.is_some()) && self.jid.is_some()
    }

    /// Packs the state a resuming connection takes over.
    pub(super) fn detach(&mut self, held: Vec<Arc<Element>>) -> Option<Detached> {
        Some(Detached {
            id: self.id,
            jid: self.jid.take()?,
            rx: self.rx.take(),
            presence: self.presence.take(),
            roster_requested: self.roster_requested,
            offline_delivered: self.offline_delivered,
            directed: std::mem::take(&mut self.directed),
            sm: self.sm.take()?,
            held,
        })
    }

    /// The connection dropped but the client may resume (XEP-0198 §5): keep the binding and collect what arrives
    /// until it does, the resumption timeout passes, or another login takes the resource.
    pub(super) async fn park(&mut self) -> (Option<Takeover>, Vec<Arc<Element>>) {
        let deadline = tokio::time::sleep(Duration::from_secs(self.ctx.config.sm.resume_timeout_secs));
        tokio::pin!(deadline);
        let mut held = Vec::new();
        loop {
            tokio::select! {
                t = recv(&mut self.takeover) => match t {
                    Some(t) => return (Some(t), held),
                    None => return (None, held),
                },
                o = recv(&mut self.rx) => match o {
                    Some(Outbound::Stanza(el)) => held.push(el),
                    Some(Outbound::Addressed(p, to)) => held.push(Arc::new(p.to_element(&to))),
                    Some(Outbound::RosterPush(el)) if self.roster_requested => held.push(el),
                    Some(Outbound::RosterPush(_) | Outbound::OfflineStored) => {}
                    Some(Outbound::Replaced) => {
                        self.replaced = true;
                        return (None, held);
                    }
                    None => self.rx = None,
                },
                _ = &mut deadline => return (None, held),
                _ = self.ctx.shutdown.cancelled() => return (None, held),
            }
            if held.len() > self.ctx.config.sm.max_unacked {
                return (None, held);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sm_with(acked: u32, unacked: usize) -> StreamManagement {
        let mut sm = StreamManagement { acked, ..Default::default() };
        for _ in 0..unacked {
            sm.unacked.push_back(Sent::Element(Arc::new(Element::new("message", drupe_proto::ns::CLIENT))));
        }
        sm
    }

    #[test]
    fn acks_wrap_around_at_two_to_the_32() {
        // Three stanzas outstanding across the wrap: the client acknowledges h = 1 (== u32::MAX + 2 mod 2^32).
        let mut sm = sm_with(u32::MAX - 1, 3);
        sm.ack(1).unwrap();
        assert_eq!(sm.unacked.len(), 0);
        assert_eq!(sm.acked, 1);
    }

    #[test]
    fn acking_more_than_was_sent_is_an_error_and_old_acks_change_nothing() {
        let mut sm = sm_with(10, 2);
        assert_eq!(sm.ack(13).unwrap_err().condition, StreamCondition::UndefinedCondition);
        sm.ack(11).unwrap();
        assert_eq!(sm.unacked.len(), 1);
        sm.ack(11).unwrap();
        assert_eq!(sm.unacked.len(), 1);
    }
}
