//! The session side of a BOSH (XEP-0124/XEP-0206) connection: the transport a client session runs on.
//!
//! The session task owns the link, so it alone answers the HTTP requests of its client (they wait on a oneshot).
//! Requests are taken in `rid` order (early ones wait for the gap, XEP-0124 §14.2), at most `hold` (1) stays
//! held for the server to answer with output, a held request is answered empty after `wait`, answers are kept for
//! one retransmission (§14.3), and a session without any request for `inactivity` counts as a dropped connection.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drupe_proto::error::{StreamCondition, StreamError};
use drupe_proto::xml::StreamEvent;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};
use tokio::time::Instant;

use super::{body, Request};
use crate::c2s::output::{Frame, Output};
use crate::c2s::transport::Received;

/// Sessions by `sid`: where the HTTP handlers hand requests to.
pub type Registry = Arc<Mutex<HashMap<String, mpsc::Sender<Request>>>>;

/// Requests the client may have outstanding (XEP-0124 `requests`): one held, one more in flight.
pub const REQUESTS: u64 = 2;
/// Requests held for the server to answer when it has output (XEP-0124 `hold`).
pub const HOLD: usize = 1;

struct Held {
    rid: u64,
    deadline: Instant,
    reply: oneshot::Sender<String>,
}

/// Negotiated at session creation.
pub struct Params {
    pub sid: String,
    pub secure: bool,
    pub wait: Duration,
    pub inactivity: Duration,
    pub max_buffered: usize,
    /// The `rid` of the creation request.
    pub rid: u64,
    /// Attributes of the first response (sid, wait, hold, …).
    pub creation_attrs: String,
}

pub struct Link {
    params: Params,
    rx: mpsc::Receiver<Request>,
    registry: Registry,
    /// The highest `rid` taken in order.
    rid: u64,
    /// Requests that arrived before the ones before them.
    early: BTreeMap<u64, Request>,
    held: VecDeque<Held>,
    /// Elements written by the session and not yet sent in a response.
    pending: Vec<u8>,
    /// The last answers, by the `rid` they answered, for retransmission.
    answered: VecDeque<(u64, String)>,
    created: bool,
    terminated: bool,
    last_request: Instant,
    _permit: OwnedSemaphorePermit,
}

impl Link {
    pub fn new(params: Params, rx: mpsc::Receiver<Request>, registry: Registry, permit: OwnedSemaphorePermit) -> Link {
        Link {
            rid: params.rid.wrapping_sub(1),
            params,
            rx,
            registry,
            early: BTreeMap::new(),
            held: VecDeque::new(),
            pending: Vec::new(),
            answered: VecDeque::new(),
            created: false,
            terminated: false,
            last_request: Instant::now(),
            _permit: permit,
        }
    }

    pub fn secure(&self) -> bool {
        self.params.secure
    }

    /// Waits for the next request in `rid` order; answers held requests whose `wait` passed meanwhile.
    /// Cancel-safe: state changes only after an await completed.
    pub async fn receive(&mut self) -> Received {
        loop {
            let deadline = match self.held.front() {
                Some(h) => h.deadline,
                None => self.last_request + self.params.inactivity,
            };
            tokio::select! {
                r = self.rx.recv() => match r {
                    None => return Received::Eof,
                    Some(request) => {
                        if let Some(received) = self.accept(request) {
                            return received;
                        }
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if self.held.is_empty() {
                        tracing::debug!(sid = %self.params.sid, "BOSH client inactive");
                        return Received::Eof;
                    }
                    let now = Instant::now();
                    while self.held.front().is_some_and(|h| h.deadline <= now) {
                        self.answer(false);
                    }
                }
            }
        }
    }

    /// Takes one request: in order, early (kept), a retransmission (answered again), or out of the window.
    fn accept(&mut self, request: Request) -> Option<Received> {
        self.last_request = Instant::now();
        let next = self.rid.wrapping_add(1);
        if request.rid < next {
            if let Some((_, body)) = self.answered.iter().find(|(rid, _)| *rid == request.rid) {
                let _ = request.reply.send(body.clone());
                return None;
            }
            if let Some(h) = self.held.iter_mut().find(|h| h.rid == request.rid) {
                // The client gave up on the held copy: answer the new one instead.
                h.reply = request.reply;
                return None;
            }
        }
        if request.rid < next || request.rid >= next + REQUESTS {
            let _ = request.reply.send(body::terminate("item-not-found"));
            return Some(Received::Invalid(
                StreamError::new(StreamCondition::PolicyViolation).with_text("BOSH rid out of window"),
            ));
        }
        self.early.insert(request.rid, request);
        let mut events = Vec::new();
        while let Some(request) = self.early.remove(&self.rid.wrapping_add(1)) {
            self.rid = request.rid;
            events.extend(request.events);
            let deadline = Instant::now() + self.params.wait;
            self.held.push_back(Held { rid: request.rid, deadline, reply: request.reply });
        }
        // XEP-0124 §10: with more than `hold` requests waiting, the oldest is answered at once.
        while self.held.len() > HOLD {
            self.answer(false);
        }
        if !self.pending.is_empty() {
            self.answer(false);
        }
        // Even an empty poll is input: it keeps the session's idle and ping timers quiet.
        Some(Received::Events(events))
    }

    /// Answers the oldest held request with everything pending (`terminate`: and ends the session).
    fn answer(&mut self, terminate: bool) {
        let Some(held) = self.held.pop_front() else { return };
        let attrs = if self.created { "" } else { self.params.creation_attrs.as_str() };
        let body = body::response(attrs, terminate, &self.pending);
        self.created = true;
        self.pending.clear();
        if self.pending.capacity() > 4096 {
            self.pending = Vec::new();
        }
        self.answered.push_back((held.rid, body.clone()));
        if self.answered.len() > REQUESTS as usize {
            self.answered.pop_front();
        }
        let _ = held.reply.send(body);
    }

    /// Takes the session's output: elements wait for a request to carry them; `<close/>` ends the session.
    pub fn deliver(&mut self, out: &Output) -> io::Result<()> {
        for (frame, kind) in out.frames() {
            match kind {
                // The session creation response carries the stream attributes instead (XEP-0206 §5).
                Frame::Open => {}
                Frame::Element => self.pending.extend_from_slice(frame),
                Frame::Close => self.terminated = true,
            }
        }
        if self.terminated {
            self.terminate();
            return Ok(());
        }
        if self.pending.len() > self.params.max_buffered {
            return Err(io::Error::other("BOSH client does not collect its output"));
        }
        if !self.pending.is_empty() {
            self.answer(false);
        }
        Ok(())
    }

    /// Ends the session: every held request is answered with `type='terminate'` (the first with what is pending).
    pub fn terminate(&mut self) {
        self.terminated = true;
        while !self.held.is_empty() {
            self.answer(true);
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        let mut registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        registry.remove(&self.params.sid);
    }
}

/// What a restart or session creation request stands for.
pub fn open_event(to: Option<&str>) -> StreamEvent {
    StreamEvent::Open(drupe_proto::xml::StreamHeader {
        to: to.map(str::to_owned),
        version: Some("1.0".into()),
        content_ns: Some(drupe_proto::ns::CLIENT.into()),
        ..Default::default()
    })
}
