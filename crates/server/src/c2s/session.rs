//! The session task: the read/write loop of one client connection and the state that lives as long as it does.
//!
//! Only this task writes to its socket. Other sessions reach it through its bounded queue ([`Outbound`]).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use drupe_proto::error::{StanzaError, StreamCondition, StreamError};
use drupe_proto::stanza;
use drupe_proto::xml::{Element, StreamEvent, StreamReader};
use drupe_proto::{ns, FullJid};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::Instrument;

use super::output::Output;
use super::sm::{Sent, StreamManagement, Takeover};
use super::tls::TlsStream;
use super::transport::{Received, Transport};
use crate::context::Context;
use crate::modules;
use crate::router::Outbound;

/// Queued stanzas written per wake-up before the socket is flushed.
const WRITE_BATCH: usize = 64;

/// How a session ends.
enum End {
    /// The client closed its stream: answer with our close.
    Closed,
    /// The socket is gone (EOF, reset, write failure).
    Dropped,
    /// We close the stream with this error.
    Error(StreamError),
    /// A new connection resumed this session (XEP-0198): hand the state over and close the old socket.
    TakenOver(Takeover),
}

/// What processing one element asks the read loop to do next.
pub(super) enum Flow {
    Continue,
    /// Upgrade the socket to TLS; unread bytes received before the upgrade are discarded (RFC 6120 §5.4.3.3).
    StartTls,
    /// SASL succeeded: the client starts a new stream on the same transport (RFC 6120 §6.4.6).
    Restart,
}

pub struct Session {
    pub ctx: Arc<Context>,
    pub id: u64,
    pub(super) peer: SocketAddr,
    pub(super) transport: Transport,
    pub(super) reader: StreamReader,
    pub(super) out: Output,
    pub(super) header_sent: bool,
    /// A SASL exchange waiting for the client's next response (boxed: every idle session would carry it inline).
    pub(super) sasl: Option<Box<super::sasl::Exchange>>,
    pub(super) auth_failures: u32,
    /// Bytes written before authentication (`c2s.max_unauthenticated_output_bytes`).
    unauthenticated_output: u32,
    pub(super) rx: Option<crate::queue::Receiver<Outbound>>,
    pub(super) closing: bool,
    /// The account, once authenticated.
    pub user: Option<String>,
    /// The full JID, once bound.
    pub jid: Option<FullJid>,
    /// The last available presence this session broadcast (`None`: unavailable).
    pub presence: Option<Element>,
    pub roster_requested: bool,
    /// Stored messages were delivered to this session (on its first non-negative presence).
    pub offline_delivered: bool,
    /// Stored messages are to be delivered after the current presence is handled.
    pub offline_due: bool,
    /// Entities this session sent directed available presence to (RFC 6121 §4.6): they get unavailable at the end.
    pub directed: HashSet<String>,
    pub(super) sm: Option<StreamManagement>,
    /// Requests from a resuming connection, when stream management with resumption is enabled.
    pub(super) takeover: Option<crate::queue::Receiver<Takeover>>,
    /// XEP-0352: `Some` while the client is inactive, with what is held back.
    pub(super) csi: Option<super::csi::Held>,
    /// Another session bound our resource: it now owns the full JID and its presence.
    pub(super) replaced: bool,
    /// Offline messages arrived after our initial flush (see `Outbound::OfflineStored`).
    offline_pending: bool,
    /// Archive writes of messages this session sent, still committing (`durable.rs`).
    pub(super) commits: super::durable::Commits,
}

/// Runs one client connection to its end.
pub async fn run(socket: TcpStream, peer: SocketAddr, direct_tls: bool, ctx: Arc<Context>) {
    let id = ctx.next_id();
    let span = tracing::info_span!("c2s", id, %peer, jid = tracing::field::Empty);
    async move {
        let auth_timeout = Duration::from_secs(ctx.config.c2s.auth_timeout_secs);
        let transport = if direct_tls {
            match Box::pin(TlsStream::accept(socket, ctx.tls_config.clone(), auth_timeout)).await {
                Ok(tls) => Transport::Tls(Box::new(tls)),
                Err(e) => return tracing::debug!(error = %e, "TLS handshake failed"),
            }
        } else {
            Transport::Plain(socket)
        };
        serve(ctx, id, peer, transport).await;
    }
    .instrument(span)
    .await
}

/// Runs a client stream over a WebSocket or BOSH transport (the HTTP side made it) to its end.
pub async fn run_framed(transport: Transport, peer: SocketAddr, ctx: Arc<Context>) {
    let id = ctx.next_id();
    let kind = if matches!(transport, Transport::Bosh(_)) { "bosh" } else { "websocket" };
    let span = tracing::info_span!("c2s", id, %peer, transport = kind, jid = tracing::field::Empty);
    serve(ctx, id, peer, transport).instrument(span).await
}

async fn serve(ctx: Arc<Context>, id: u64, peer: SocketAddr, transport: Transport) {
    let mut session = Session::new(ctx, id, peer, transport);
    tracing::debug!("connected");
    let end = session.drive().await;
    Box::pin(session.finish(end)).await;
    tracing::debug!("disconnected");
}

impl Session {
    fn new(ctx: Arc<Context>, id: u64, peer: SocketAddr, transport: Transport) -> Session {
        let framed = transport.is_framed();
        let mut reader = StreamReader::new(ctx.config.limits.reader(false));
        if framed {
            super::framing::prepare_reader(&mut reader);
        }
        Session {
            id,
            peer,
            transport,
            reader,
            out: if framed { Output::framed() } else { Output::default() },
            header_sent: false,
            sasl: None,
            auth_failures: 0,
            unauthenticated_output: 0,
            rx: None,
            closing: false,
            user: None,
            jid: None,
            presence: None,
            roster_requested: false,
            offline_delivered: false,
            offline_due: false,
            directed: HashSet::new(),
            sm: None,
            takeover: None,
            replaced: false,
            offline_pending: false,
            commits: Default::default(),
            csi: None,
            ctx,
        }
    }

    async fn drive(&mut self) -> End {
        let ctx = self.ctx.clone();
        let auth_deadline = Instant::now() + Duration::from_secs(self.ctx.config.c2s.auth_timeout_secs);
        let idle = Duration::from_secs(self.ctx.config.c2s.idle_timeout_secs);
        let ping_interval = Duration::from_secs(self.ctx.config.c2s.ping_interval_secs);
        let ping_timeout = Duration::from_secs(self.ctx.config.c2s.ping_timeout_secs);
        let pinging = !ping_interval.is_zero();
        let mut last_input = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        loop {
            let deadline = match (self.jid.is_some(), pinging, ping_sent) {
                (false, _, _) => auth_deadline,
                (true, false, _) => last_input + idle,
                (true, true, None) => last_input + ping_interval,
                (true, true, Some(at)) => at + ping_timeout,
            };
            enum Wake {
                Read(Received),
                Queue(Option<Outbound>),
                Takeover(Option<Takeover>),
                Committed(u32),
                Timeout,
                Shutdown,
            }
            let wake = tokio::select! {
                biased;
                _ = self.ctx.shutdown.cancelled() => Wake::Shutdown,
                o = recv(&mut self.rx) => Wake::Queue(o),
                t = recv(&mut self.takeover) => Wake::Takeover(t),
                n = self.commits.committed(), if !self.commits.is_empty() => Wake::Committed(n),
                r = self.transport.receive() => Wake::Read(r),
                _ = tokio::time::sleep_until(deadline) => Wake::Timeout,
            };
            match wake {
                Wake::Shutdown => return End::Error(StreamError::new(StreamCondition::SystemShutdown)),
                // XEP-0199 §4.2: a bound client silent for `ping_interval` is pinged; silence after that means the
                // connection is dead (treated like a dropped socket, so stream management may still resume).
                Wake::Timeout if self.jid.is_some() && pinging && ping_sent.is_none() => {
                    ping_sent = Some(Instant::now());
                    // A stanza like any other: stream management counts it, as the client does.
                    let ping = Element::new("iq", ns::CLIENT)
                        .with_attr("type", "get")
                        .with_attr("id", format!("ping-{}", crate::context::random_token(8)))
                        .with_child(Element::new("ping", ns::PING));
                    self.send(&ping);
                }
                Wake::Timeout if self.jid.is_some() && pinging => {
                    tracing::debug!("no answer to ping: connection considered dead");
                    return End::Dropped;
                }
                Wake::Timeout => {
                    return End::Error(StreamError::new(StreamCondition::ConnectionTimeout));
                }
                Wake::Queue(None) => self.rx = None,
                Wake::Takeover(None) => self.takeover = None,
                Wake::Takeover(Some(request)) => return End::TakenOver(request),
                Wake::Committed(stanzas) => self.sm_count(stanzas),
                Wake::Queue(Some(o)) => {
                    if let Err(e) = self.outbound(o) {
                        return End::Error(e);
                    }
                    for _ in 1..WRITE_BATCH {
                        let Some(Ok(o)) = self.rx.as_mut().map(|rx| rx.try_recv()) else { break };
                        if let Err(e) = self.outbound(o) {
                            return End::Error(e);
                        }
                    }
                    if std::mem::take(&mut self.offline_pending) && self.offline_delivered {
                        Box::pin(modules::message::flush_offline(self)).await;
                    }
                }
                Wake::Read(Received::Eof) => return End::Dropped,
                Wake::Read(Received::Invalid(e)) => return End::Error(e),
                Wake::Read(input) => {
                    last_input = Instant::now();
                    ping_sent = None;
                    let handled = match input {
                        Received::Bytes(data) => self.input(&data).await,
                        Received::Frame(text) => self.input_frame(text.as_bytes()).await,
                        Received::Events(events) => self.input_events(events).await,
                        _ => Ok(()),
                    };
                    if let Err(e) = handled {
                        return End::Error(e);
                    }
                    if !self.reader.in_stanza() {
                        // Between stanzas nothing needs the parser's scratch buffers: an idle session stays small.
                        self.reader.release_buffers();
                    }
                }
            }
            if let Err(e) = self.sm_check() {
                return End::Error(e);
            }
            self.sm_request_if_due();
            // A write that waits (the client reads slowly or not at all) still ends at shutdown, and before login
            // at the login deadline: the session then ends as a lost connection, and what it held is rerouted.
            let unauthenticated = self.jid.is_none();
            let flushed = tokio::select! {
                biased;
                r = self.flush() => r,
                _ = ctx.shutdown.cancelled() => Err(std::io::Error::other("shutdown while writing")),
                _ = tokio::time::sleep_until(auth_deadline), if unauthenticated => {
                    Err(std::io::Error::other("login deadline while writing"))
                }
            };
            if let Err(e) = flushed {
                tracing::debug!(error = %e, "write failed");
                return End::Dropped;
            }
            if self.closing {
                return End::Closed;
            }
        }
    }

    /// Processes bytes from the socket.
    async fn input(&mut self, mut data: &[u8]) -> Result<(), StreamError> {
        while let Some(event) = self.reader.next(&mut data)? {
            if data.is_empty() {
                // All input so far has made events: the parser is free for other streams while this one's stanza
                // is handled (which may wait for the store).
                self.reader.release_buffers();
            }
            if self.event(event).await? {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Handles one stream event, the same on every transport. `Ok(true)`: stop reading this input (the stream
    /// closed, or STARTTLS discards what was pipelined after it).
    pub(super) async fn event(&mut self, event: StreamEvent) -> Result<bool, StreamError> {
        match event {
            StreamEvent::Open(header) => self.stream_open(header)?,
            StreamEvent::Whitespace => {}
            StreamEvent::Close => {
                self.closing = true;
                return Ok(true);
            }
            // Boxed: the futures of every module would otherwise live in each idle session's task.
            StreamEvent::Stanza(el) => match Box::pin(self.element(el)).await? {
                Flow::Continue => {}
                // Framed transports parse each element as its own document: there is no stream to restart.
                Flow::Restart if self.transport.is_framed() => {}
                Flow::Restart => self.reader.reset(),
                Flow::StartTls => {
                    Box::pin(self.start_tls()).await?;
                    return Ok(true);
                }
            },
        }
        Ok(false)
    }

    /// One first-level element, in whatever phase the stream is.
    async fn element(&mut self, el: Element) -> Result<Flow, StreamError> {
        if self.jid.is_none() {
            return Box::pin(self.negotiate(el)).await;
        }
        if el.ns() == super::sm::NS {
            if el.name() == "enable" {
                self.commits_settle().await;
            }
            self.sm_element(&el)?;
            return Ok(Flow::Continue);
        }
        if el.ns() == super::csi::NS {
            self.csi_element(&el);
            return Ok(Flow::Continue);
        }
        match stanza::kind(&el) {
            Some(kind) => {
                // Messages pipeline their archive writes; anything else may read them (durable.rs).
                if kind == stanza::Kind::Message {
                    self.commits_room().await;
                } else {
                    self.commits_settle().await;
                }
                modules::handle_client_stanza(self, kind, el).await?;
                self.sm_handled();
                Ok(Flow::Continue)
            }
            None if matches!(el.name(), "message" | "presence" | "iq") => {
                Err(StreamError::new(StreamCondition::InvalidNamespace))
            }
            None => Err(StreamError::new(StreamCondition::UnsupportedStanzaType)),
        }
    }

    /// Queues a stanza or negotiation element for writing.
    pub fn send(&mut self, el: &Element) {
        self.out.element(el);
        if let Some(sm) = self.sm.as_mut() {
            if stanza::kind(el).is_some() {
                sm.unacked.push_back(Sent::Element(Arc::new(el.clone())));
            }
        }
    }

    /// [`Session::send`] for a stanza shared with other recipients: stream management keeps the shared copy.
    pub fn send_shared(&mut self, el: Arc<Element>) {
        self.out.element(&el);
        if let Some(sm) = self.sm.as_mut() {
            if stanza::kind(&el).is_some() {
                sm.unacked.push_back(Sent::Element(el));
            }
        }
    }

    /// Writes a stanza serialized once for many recipients, with this session's `to` spliced in.
    pub fn send_addressed(&mut self, p: Arc<crate::router::Prepared>, to: Box<str>) {
        self.out.addressed(&p, &to);
        if let Some(sm) = self.sm.as_mut() {
            sm.unacked.push_back(Sent::Addressed(p, to));
        }
    }

    /// Sends again what stream management kept.
    pub(super) fn resend(&mut self, sent: Sent) {
        match sent {
            Sent::Element(el) => self.send_shared(el),
            Sent::Addressed(p, to) => self.send_addressed(p, to),
        }
    }

    /// Answers `to` with a stanza error (never answering an error with an error).
    pub fn send_error(&mut self, to: &Element, error: impl Into<StanzaError>) {
        if !stanza::is_error(to) {
            let mut reply = stanza::error_reply(to, &error.into());
            // Our own reply to our own client: `to` is the client, `from` is whatever it addressed.
            if let Some(jid) = &self.jid {
                reply.set_attr("to", jid.to_string());
            }
            self.send(&reply);
        }
    }

    /// Writes what is queued; a client that reads none of it for `c2s.write_timeout_secs` fails the write.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        if self.user.is_none() {
            // Before authentication a client gets a few KiB (header, features, SASL): one that keeps asking for
            // more (e.g. a flood of `<abort/>`s it never reads the answers to) is not worth serving.
            let len = u32::try_from(self.out.bytes().len()).unwrap_or(u32::MAX);
            self.unauthenticated_output = self.unauthenticated_output.saturating_add(len);
            if self.unauthenticated_output as usize > self.ctx.config.c2s.max_unauthenticated_output_bytes {
                self.out.clear();
                return Err(std::io::Error::other("c2s.max_unauthenticated_output_bytes reached"));
            }
        }
        let stall = Duration::from_secs(self.ctx.config.c2s.write_timeout_secs);
        let r = self.transport.send(&self.out, stall).await;
        self.out.clear();
        r
    }

    fn outbound(&mut self, o: Outbound) -> Result<(), StreamError> {
        match o {
            Outbound::Stanza(el) => self.csi_send(el),
            // While inactive (CSI), stanzas are held as elements; otherwise the shared serialization is written.
            Outbound::Addressed(p, to) if self.csi.is_some() => self.csi_send(Arc::new(p.to_element(&to))),
            Outbound::Addressed(p, to) => self.send_addressed(p, to),
            Outbound::RosterPush(el) => {
                if self.roster_requested {
                    self.send_shared(el)
                }
            }
            Outbound::OfflineStored => self.offline_pending = true,
            Outbound::Replaced => {
                self.replaced = true;
                return Err(StreamError::new(StreamCondition::Conflict).with_text("replaced by a new session"));
            }
        }
        Ok(())
    }

    /// Registers this session's queue after bind (or takes over a resumed session's).
    pub(super) fn set_queue(&mut self, rx: Option<crate::queue::Receiver<Outbound>>) {
        self.rx = rx;
    }

    async fn finish(&mut self, end: End) {
        // Before anything reads `h` (a resumption, the parked state) or the session is gone.
        self.commits_settle().await;
        let mut held = Vec::new();
        let end = match end {
            End::Dropped if self.resumable() => {
                tracing::debug!("connection lost; waiting for the client to resume");
                let (takeover, h) = self.park().await;
                held = h;
                match takeover {
                    Some(t) => End::TakenOver(t),
                    None => End::Dropped,
                }
            }
            other => other,
        };
        if let End::TakenOver(request) = end {
            self.transport.shutdown().await;
            if let Some(detached) = self.detach(held) {
                let _ = request.send(Box::new(detached));
            }
            return;
        }
        match &end {
            End::Error(e) => {
                if e.condition == StreamCondition::InternalServerError {
                    tracing::error!(error = %e, "closing session on internal error");
                } else {
                    tracing::debug!(error = %e, "closing stream with error");
                }
                if !self.header_sent {
                    let id = crate::context::random_token(16);
                    self.out.header(self.ctx.domain(), &id, None);
                }
                self.out.stream_error(e);
                self.out.close();
            }
            End::Closed => self.out.close(),
            End::Dropped => self.out.clear(),
            End::TakenOver(_) => {}
        }
        if !matches!(end, End::Dropped) {
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                let _ = self.flush().await;
                self.transport.shutdown().await;
            })
            .await;
        }
        if let (Some(user), Some(jid)) = (self.user.clone(), self.jid.clone()) {
            self.ctx.router.unbind(&user, jid.resource().as_str(), self.id);
            if let Some(id) = self.sm.as_ref().and_then(|sm| sm.id.clone()) {
                self.ctx.resumption_remove(&id, self.id);
            }
            // Unacknowledged and held stanzas are undeliverable here: route them again (XEP-0198 §5).
            let mut undelivered: Vec<Element> =
                self.sm.take().map(|sm| sm.unacked.into_iter().map(Sent::into_element).collect()).unwrap_or_default();
            undelivered.extend(held.into_iter().map(Arc::unwrap_or_clone));
            let pending = self.rx.take();
            if self.replaced {
                // The new session owns this full JID: no unavailable presence on its behalf.
                self.presence = None;
                self.directed.clear();
            }
            modules::session_ended(self, pending, undelivered).await;
        }
    }
}

pub(super) async fn recv<T>(rx: &mut Option<crate::queue::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
