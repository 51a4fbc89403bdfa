//! One XMPP client connection: TCP (Nagle off), STARTTLS accepting any certificate, SASL PLAIN or SCRAM,
//! resource binding (RFC 6120 §5-7), then stanzas in and out.
//!
//! Parsing goes through drupe-proto's [`StreamReader`], which is restarted after STARTTLS and SASL success as
//! RFC 6120 §5.4.3.3 and §6.4.6 require.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use drupe_proto::error::StreamError;
use drupe_proto::ns;
use drupe_proto::xml::{escape_attr, escape_text, Element, Limits, StreamEvent, StreamReader};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::scram::{ScramClient, ScramHash};
use crate::{Mechanism, Target};

/// Why one client could not log in or went away.
#[derive(Debug)]
pub enum ClientError {
    Io(std::io::Error),
    /// The server's XML could not be parsed.
    Xml(StreamError),
    /// The server sent `<stream:error>` with this condition.
    Stream(String),
    /// The server closed the stream or the connection.
    Closed,
    Timeout,
    /// SASL failed (condition or reason).
    Auth(String),
    /// Anything else the server did that this client does not expect.
    Protocol(String),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "i/o: {e}"),
            ClientError::Xml(e) => write!(f, "bad XML from server: {e:?}"),
            ClientError::Stream(c) => write!(f, "stream error from server: {c}"),
            ClientError::Closed => f.write_str("connection closed by server"),
            ClientError::Timeout => f.write_str("timed out"),
            ClientError::Auth(c) => write!(f, "authentication failed: {c}"),
            ClientError::Protocol(c) => write!(f, "unexpected from server: {c}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> ClientError {
        ClientError::Io(e)
    }
}

/// Size of the read buffer; small because the idle scenario holds thousands of connections.
const READ_BUF: usize = 4096;

/// A byte stream with an XML stream reader on top.
pub(crate) struct Conn<S> {
    io: S,
    reader: StreamReader,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

impl<S: AsyncRead + Unpin> Conn<S> {
    pub(crate) fn new(io: S) -> Conn<S> {
        Conn { io, reader: StreamReader::new(Limits::default()), buf: vec![0; READ_BUF].into(), start: 0, end: 0 }
    }

    /// The next stream event. Cancel-safe: the only await is the socket read, and no parsed input is pending
    /// while it waits.
    pub(crate) async fn next_event(&mut self) -> Result<StreamEvent, ClientError> {
        loop {
            if self.start < self.end {
                let mut rest = &self.buf[self.start..self.end];
                let r = self.reader.next(&mut rest);
                self.start = self.end - rest.len();
                if let Some(ev) = r.map_err(ClientError::Xml)? {
                    return Ok(ev);
                }
            }
            self.start = 0;
            self.end = 0;
            let n = self.io.read(&mut self.buf).await?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.end = n;
        }
    }

    /// The next first-level element, skipping whitespace keepalives; a stream error or close is an error.
    async fn next_stanza(&mut self) -> Result<Element, ClientError> {
        loop {
            match self.next_event().await? {
                StreamEvent::Stanza(el) if el.is("error", ns::STREAMS) => {
                    let cond = el.first_child().map(|c| c.name().to_owned()).unwrap_or_default();
                    return Err(ClientError::Stream(cond));
                }
                StreamEvent::Stanza(el) => return Ok(el),
                StreamEvent::Whitespace => {}
                StreamEvent::Close => return Err(ClientError::Closed),
                StreamEvent::Open(_) => return Err(ClientError::Protocol("second stream header".into())),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub(crate) async fn send(&mut self, data: &[u8]) -> Result<(), ClientError> {
        self.io.write_all(data).await?;
        self.io.flush().await?;
        Ok(())
    }

    /// Sends the initial stream header and returns the server's `<stream:features/>`.
    pub(crate) async fn open_stream(&mut self, domain: &str) -> Result<Element, ClientError> {
        self.reader.reset();
        let mut header = b"<?xml version='1.0'?><stream:stream to='".to_vec();
        escape_attr(&mut header, domain);
        header.extend_from_slice(
            b"' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
        );
        self.send(&header).await?;
        loop {
            match self.next_event().await? {
                StreamEvent::Open(_) => break,
                StreamEvent::Whitespace => {}
                _ => return Err(ClientError::Protocol("expected a stream header".into())),
            }
        }
        let features = self.next_stanza().await?;
        if !features.is("features", ns::STREAMS) {
            return Err(ClientError::Protocol(format!("expected stream features, got <{}>", features.name())));
        }
        Ok(features)
    }
}

type Tls = TlsStream<TcpStream>;

/// An authenticated, bound client session, split so that it can read while a write waits: a client that stops
/// reading while the server cannot write to it would deadlock with a server that stops reading meanwhile.
pub struct Client {
    pub incoming: Incoming,
    pub outgoing: Outgoing,
    /// The full JID the server bound.
    pub jid: String,
}

/// The reading half of a [`Client`]. Stanzas are read as trees ([`Incoming::next_stanza`]) until the first
/// [`Incoming::next_raw`]; from then on the stream is split into raw elements (`crate::raw`) and a tree is built
/// only when asked for.
pub struct Incoming {
    conn: Conn<ReadHalf<Tls>>,
    /// Raw mode, from the first [`Incoming::next_raw`] on.
    raw: Option<crate::raw::Splitter>,
}

/// The writing half of a [`Client`]: stanzas are queued without waiting and written by [`Outgoing::write`].
pub struct Outgoing {
    io: WriteHalf<Tls>,
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    pos: usize,
    /// Written bytes may still sit in the TLS layer.
    unflushed: bool,
}

/// Connects and logs in user `index` of `target` with `resource`, bounded by `target.timeout`.
pub async fn login(target: &Target, tls: &TlsConnector, index: usize, resource: &str) -> Result<Client, ClientError> {
    match tokio::time::timeout(target.timeout, login_unbounded(target, tls, index, resource)).await {
        Ok(r) => r,
        Err(_) => Err(ClientError::Timeout),
    }
}

async fn login_unbounded(
    target: &Target,
    tls: &TlsConnector,
    index: usize,
    resource: &str,
) -> Result<Client, ClientError> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
    // Nagle would hold back the small writes of every negotiation step.
    tcp.set_nodelay(true)?;
    let mut plain = Conn::new(tcp);
    let features = plain.open_stream(&target.domain).await?;
    if features.child("starttls", ns::TLS).is_none() {
        return Err(ClientError::Protocol("server does not offer STARTTLS".into()));
    }
    plain.send(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await?;
    let proceed = plain.next_stanza().await?;
    if !proceed.is("proceed", ns::TLS) {
        return Err(ClientError::Protocol(format!("STARTTLS answered with <{}>", proceed.name())));
    }
    let name = ServerName::try_from(target.domain.clone())
        .map_err(|_| ClientError::Protocol(format!("`{}` is not a TLS server name", target.domain)))?;
    let tls_stream = tls.connect(name, plain.io).await?;
    let mut conn = Conn::new(tls_stream);
    let features = conn.open_stream(&target.domain).await?;
    authenticate(&mut conn, target, &target.username(index), &features).await?;
    let features = conn.open_stream(&target.domain).await?;
    let jid = bind(&mut conn, &features, resource).await?;
    let Conn { io, reader, buf, start, end } = conn;
    let (read, write) = tokio::io::split(io);
    let conn = Conn { io: read, reader, buf, start, end };
    let incoming = Incoming { conn, raw: None };
    Ok(Client { incoming, outgoing: Outgoing { io: write, buf: Vec::new(), pos: 0, unflushed: false }, jid })
}

/// Binds `resource` (and establishes an RFC 3921 session where a server still requires it); returns the JID.
pub(crate) async fn bind<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    features: &Element,
    resource: &str,
) -> Result<String, ClientError> {
    if features.child("bind", ns::BIND).is_none() {
        return Err(ClientError::Protocol("server does not offer resource binding".into()));
    }
    let mut iq = b"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>".to_vec();
    escape_text(&mut iq, resource);
    iq.extend_from_slice(b"</resource></bind></iq>");
    conn.send(&iq).await?;
    let jid = loop {
        let el = conn.next_stanza().await?;
        if el.name() != "iq" || el.attr("id") != Some("bind") {
            continue;
        }
        if el.attr("type") != Some("result") {
            return Err(ClientError::Protocol(format!("bind failed: {}", el.to_xml())));
        }
        let jid = el.child("bind", ns::BIND).and_then(|b| b.child("jid", ns::BIND)).map(|j| j.text());
        break jid.ok_or_else(|| ClientError::Protocol("bind result without a JID".into()))?;
    };
    // RFC 3921 session establishment, for servers that still require it (RFC 6121 dropped it).
    if let Some(session) = features.child("session", ns::SESSION) {
        if session.child("optional", ns::SESSION).is_none() {
            conn.send(b"<iq type='set' id='sess'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>").await?;
            loop {
                let el = conn.next_stanza().await?;
                if el.name() == "iq" && el.attr("id") == Some("sess") {
                    break;
                }
            }
        }
    }
    Ok(jid)
}

pub(crate) async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    conn: &mut Conn<S>,
    target: &Target,
    user: &str,
    features: &Element,
) -> Result<(), ClientError> {
    let mech = target.mechanism;
    let offered = features
        .child("mechanisms", ns::SASL)
        .is_some_and(|m| m.children().any(|c| c.text().trim().eq_ignore_ascii_case(mech.name())));
    if !offered {
        return Err(ClientError::Auth(format!("server does not offer {}", mech.name())));
    }
    let hash = match mech {
        Mechanism::Plain => None,
        Mechanism::ScramSha1 => Some(ScramHash::Sha1),
        Mechanism::ScramSha256 => Some(ScramHash::Sha256),
    };
    let mut scram = hash.map(|h| ScramClient::new(h, user, &target.password));
    let initial = match &scram {
        Some(s) => s.client_first(),
        None => format!("\0{user}\0{}", target.password).into_bytes(),
    };
    let auth = format!("<auth xmlns='{}' mechanism='{}'>{}</auth>", ns::SASL, mech.name(), B64.encode(initial));
    conn.send(auth.as_bytes()).await?;
    let mut answered = false;
    loop {
        let el = conn.next_stanza().await?;
        if el.ns() != ns::SASL {
            continue;
        }
        let data = B64.decode(el.text().trim()).map_err(|_| ClientError::Protocol("bad base64 in SASL".into()))?;
        match (el.name(), scram.as_mut()) {
            ("success", None) => return Ok(()),
            ("success", Some(s)) => {
                // Some servers send the server-final-message as a challenge and an empty success.
                if !(answered && data.is_empty()) {
                    s.verify_server_final(&data).map_err(ClientError::Auth)?;
                }
                return Ok(());
            }
            ("challenge", Some(s)) if s.has_server_signature() => {
                s.verify_server_final(&data).map_err(ClientError::Auth)?;
                answered = true;
                conn.send(format!("<response xmlns='{}'/>", ns::SASL).as_bytes()).await?;
            }
            ("challenge", Some(s)) => {
                let fin = s.client_final(&data).map_err(ClientError::Auth)?;
                conn.send(format!("<response xmlns='{}'>{}</response>", ns::SASL, B64.encode(fin)).as_bytes()).await?;
            }
            ("failure", _) => {
                let cond = el.first_child().map(|c| c.name().to_owned()).unwrap_or_else(|| "failure".into());
                return Err(ClientError::Auth(cond));
            }
            (other, _) => return Err(ClientError::Protocol(format!("unexpected SASL <{other}>"))),
        }
    }
}

impl Incoming {
    /// The next first-level element (whitespace skipped; a stream error or close is an error). Cancel-safe.
    pub async fn next_stanza(&mut self) -> Result<Element, ClientError> {
        if self.raw.is_none() {
            return self.conn.next_stanza().await;
        }
        crate::raw::tree(self.next_raw().await?)
    }

    /// Reads until the server closes the stream.
    async fn until_close(&mut self) -> Result<(), ClientError> {
        if self.raw.is_some() {
            loop {
                match self.next_raw().await {
                    Ok(_) => {}
                    Err(ClientError::Closed) => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
        }
        while !matches!(self.conn.next_event().await?, StreamEvent::Close) {}
        Ok(())
    }

    /// The next first-level element as bytes, unparsed (see `crate::raw`); a stream error is returned like any
    /// element, a close is an error. Cancel-safe: what was read stays in `self`.
    pub async fn next_raw(&mut self) -> Result<&[u8], ClientError> {
        let Conn { io, buf, start, end, .. } = &mut self.conn;
        // The tree reader stops at element boundaries: whatever it has not consumed is the next element.
        let splitter =
            self.raw.get_or_insert_with(|| crate::raw::Splitter::new(&buf[std::mem::take(start)..std::mem::take(end)]));
        splitter.next(io, buf).await
    }
}

impl Outgoing {
    /// Queues a chat message with `body` to `to`.
    pub fn queue_message(&mut self, to: &str, body: &str) {
        self.queue_typed_message(to, "chat", body);
    }

    /// Queues `<message type=kind>` (e.g. `groupchat` to a XEP-0045 room).
    pub fn queue_typed_message(&mut self, to: &str, kind: &str, body: &str) {
        self.buf.extend_from_slice(b"<message type='");
        self.buf.extend_from_slice(kind.as_bytes());
        self.buf.extend_from_slice(b"' to='");
        escape_attr(&mut self.buf, to);
        self.buf.extend_from_slice(b"'><body>");
        escape_text(&mut self.buf, body);
        self.buf.extend_from_slice(b"</body></message>");
    }

    /// Queues a XEP-0045 join: presence to `room/nick` with the MUC payload, no history.
    pub fn queue_join(&mut self, room: &str, nick: &str) {
        self.buf.extend_from_slice(b"<presence to='");
        escape_attr(&mut self.buf, &format!("{room}/{nick}"));
        self.buf
            .extend_from_slice(b"'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>");
    }

    /// Queues the owner's acceptance of the default configuration of a room just created and locked (an instant
    /// room, XEP-0045 §10.1.2).
    pub fn queue_instant_room(&mut self, room: &str) {
        self.queue_room_config(room, &[]);
    }

    /// Queues the owner's `muc#roomconfig` submission with `fields` (var, value) for a room just created and
    /// locked (XEP-0045 §10.1.3); the answer is the IQ with id `instant`.
    pub fn queue_room_config(&mut self, room: &str, fields: &[(&str, &str)]) {
        self.buf.extend_from_slice(b"<iq type='set' id='instant' to='");
        escape_attr(&mut self.buf, room);
        self.buf.extend_from_slice(
            b"'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>",
        );
        if !fields.is_empty() {
            self.buf.extend_from_slice(
                b"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>",
            );
        }
        for (var, value) in fields {
            self.buf.extend_from_slice(b"<field var='");
            escape_attr(&mut self.buf, var);
            self.buf.extend_from_slice(b"'><value>");
            escape_text(&mut self.buf, value);
            self.buf.extend_from_slice(b"</value></field>");
        }
        self.buf.extend_from_slice(b"</x></query></iq>");
    }

    /// Queues the answer to a server ping (XEP-0199) and returns true, or returns false for any other stanza.
    pub fn answer_ping(&mut self, el: &Element) -> bool {
        if el.name() != "iq" || el.attr("type") != Some("get") || el.child("ping", ns::PING).is_none() {
            return false;
        }
        self.buf.extend_from_slice(b"<iq type='result' id='");
        escape_attr(&mut self.buf, el.attr("id").unwrap_or_default());
        if let Some(from) = el.attr("from") {
            self.buf.extend_from_slice(b"' to='");
            escape_attr(&mut self.buf, from);
        }
        self.buf.extend_from_slice(b"'/>");
        true
    }

    /// Whether queued bytes wait to be written or flushed.
    pub fn pending(&self) -> bool {
        self.pos < self.buf.len() || self.unflushed
    }

    /// Bytes queued and not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Writes and flushes everything queued. Cancel-safe: progress is kept in `self`, so a `select!` may drop
    /// it to read and call it again later.
    pub async fn write(&mut self) -> Result<(), ClientError> {
        while self.pos < self.buf.len() {
            let n = self.io.write(&self.buf[self.pos..]).await?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.pos += n;
            self.unflushed = true;
        }
        self.buf.clear();
        self.pos = 0;
        if self.unflushed {
            self.io.flush().await?;
            self.unflushed = false;
        }
        Ok(())
    }
}

impl Client {
    /// Sends initial presence (RFC 6121 §4.2).
    pub async fn send_presence(&mut self) -> Result<(), ClientError> {
        self.outgoing.buf.extend_from_slice(b"<presence/>");
        self.outgoing.write().await
    }

    /// Writes what is queued, closes the stream, and waits (briefly) for the server to close its side.
    pub async fn close(mut self) {
        let closing = async {
            self.outgoing.buf.extend_from_slice(b"</stream:stream>");
            self.outgoing.write().await?;
            self.incoming.until_close().await?;
            self.outgoing.io.shutdown().await?;
            Ok::<(), ClientError>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), closing).await;
    }
}
