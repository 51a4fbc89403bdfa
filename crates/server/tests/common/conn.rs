//! One raw client connection over TCP or TLS with stream-level steps: open, STARTTLS, SASL, bind, stream errors.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use drupe_proto::xml::{Element, Limits, StreamEvent, StreamReader};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_rustls::client::TlsStream;

use super::{ns, scram, DOMAIN, WAIT};

/// Accepts any certificate: the server under test uses a freshly generated self-signed one.
#[derive(Debug)]
struct AcceptAnyCert;

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        rustls::crypto::ring::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS client that accepts the test server's self-signed certificate.
pub fn tls_connector() -> tokio_rustls::TlsConnector {
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCert))
        .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// RFC 7395 over TLS: the harness's stream output is translated to frames and back (`ws.rs`).
    Ws(Box<super::ws::Ws>),
    Gone,
}

/// What a read step ended with, when it did not produce an event.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The server closed the socket.
    Eof,
    /// Nothing arrived in time.
    Timeout,
}

/// One raw client connection.
pub struct Conn {
    stream: Stream,
    reader: StreamReader,
    events: VecDeque<StreamEvent>,
    eof: bool,
    /// Everything received, as text, for failure messages.
    log: String,
    /// WebSocket: every text message received, as sent by the server.
    pub frames: Vec<String>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr, direct_tls: bool) -> Conn {
        let tcp = timeout(WAIT, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
        tcp.set_nodelay(true).expect("nodelay");
        let mut conn = Conn {
            stream: Stream::Plain(tcp),
            reader: StreamReader::new(Limits::default()),
            events: VecDeque::new(),
            eof: false,
            log: String::new(),
            frames: Vec::new(),
        };
        if direct_tls {
            conn.handshake().await;
        }
        conn
    }

    /// An RFC 7395 WebSocket to the HTTPS listener (subprotocol `xmpp`), nothing sent yet.
    pub async fn connect_ws(addr: SocketAddr) -> Conn {
        let ws = super::ws::connect(addr, "/xmpp-websocket", Some("xmpp")).await.expect("WebSocket handshake");
        Conn {
            stream: Stream::Ws(Box::new(ws)),
            reader: StreamReader::new(Limits::default()),
            events: VecDeque::new(),
            eof: false,
            log: String::new(),
            frames: Vec::new(),
        }
    }

    /// WebSocket: sends `message` as is, as one message (text, or binary when `binary`).
    pub async fn send_ws_message(&mut self, message: &[u8], binary: bool) {
        use futures_util::SinkExt;
        let Stream::Ws(ws) = &mut self.stream else { panic!("not a WebSocket") };
        let m = if binary {
            tokio_tungstenite::tungstenite::Message::binary(message.to_vec())
        } else {
            tokio_tungstenite::tungstenite::Message::text(String::from_utf8(message.to_vec()).expect("UTF-8"))
        };
        ws.send(m).await.expect("send WebSocket message");
    }

    async fn handshake(&mut self) {
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            panic!("TLS over a non-plain stream");
        };
        let name = ServerName::try_from(DOMAIN).expect("server name");
        let tls = timeout(WAIT, tls_connector().connect(name, tcp)).await.expect("TLS handshake in time");
        self.stream = Stream::Tls(Box::new(tls.expect("TLS handshake")));
        self.reader = StreamReader::new(Limits::default());
    }

    pub async fn send_raw(&mut self, data: impl AsRef<[u8]>) {
        let data = data.as_ref();
        let r = match &mut self.stream {
            Stream::Plain(s) => s.write_all(data).await,
            Stream::Tls(s) => {
                async {
                    s.write_all(data).await?;
                    s.flush().await
                }
                .await
            }
            Stream::Ws(ws) => {
                assert!(super::ws::send_frames(ws, super::ws::to_frames(data)).await, "write to server");
                Ok(())
            }
            Stream::Gone => panic!("write on a closed connection"),
        };
        r.expect("write to server");
    }

    /// Like [`Conn::send_raw`], for sends that may race with the server closing the connection.
    pub async fn try_send_raw(&mut self, data: impl AsRef<[u8]>) -> bool {
        let data = data.as_ref();
        match &mut self.stream {
            Stream::Plain(s) => s.write_all(data).await.is_ok(),
            Stream::Tls(s) => s.write_all(data).await.is_ok() && s.flush().await.is_ok(),
            Stream::Ws(ws) => super::ws::send_frames(ws, super::ws::to_frames(data)).await,
            Stream::Gone => false,
        }
    }

    /// Reads until at least one event is queued, the socket ends, or `deadline` passes.
    async fn fill(&mut self, deadline: Instant) -> Result<(), Ended> {
        let mut buf = [0u8; 8192];
        while self.events.is_empty() {
            if self.eof {
                return Err(Ended::Eof);
            }
            let read = match &mut self.stream {
                Stream::Plain(s) => tokio::time::timeout_at(deadline, s.read(&mut buf)).await,
                Stream::Tls(s) => tokio::time::timeout_at(deadline, s.read(&mut buf)).await,
                Stream::Ws(ws) => match tokio::time::timeout_at(deadline, super::ws::next_text(ws)).await {
                    Err(_) => return Err(Ended::Timeout),
                    Ok(None) => Ok(Ok(0)),
                    Ok(Some(frame)) => {
                        let bytes = super::ws::from_frame(&frame);
                        self.frames.push(frame);
                        let n = bytes.len().min(buf.len());
                        assert_eq!(n, bytes.len(), "frame larger than the test buffer");
                        buf[..n].copy_from_slice(&bytes);
                        Ok(Ok(n))
                    }
                },
                Stream::Gone => return Err(Ended::Eof),
            };
            let n = match read {
                Err(_) => return Err(Ended::Timeout),
                Ok(Ok(0)) | Ok(Err(_)) => {
                    self.eof = true;
                    continue;
                }
                Ok(Ok(n)) => n,
            };
            self.log.push_str(&String::from_utf8_lossy(&buf[..n]));
            let mut events = Vec::new();
            if let Err(e) = self.reader.feed(&buf[..n], &mut events) {
                panic!("server sent unparsable XML ({e:?}); received so far:\n{}", self.log);
            }
            self.events.extend(events);
        }
        Ok(())
    }

    /// The next stream event, or why there is none before `deadline`.
    pub async fn next_event_until(&mut self, deadline: Instant) -> Result<StreamEvent, Ended> {
        self.fill(deadline).await?;
        Ok(self.events.pop_front().expect("filled"))
    }

    pub async fn next_event(&mut self) -> Result<StreamEvent, Ended> {
        self.next_event_until(Instant::now() + WAIT).await
    }

    /// The next first-level element (stanza, negotiation element or stream error), skipping whitespace.
    pub async fn next_element(&mut self) -> Element {
        loop {
            match self.next_event().await {
                Ok(StreamEvent::Stanza(el)) => return el,
                Ok(StreamEvent::Whitespace) => {}
                other => panic!("expected an element, got {other:?}; received so far:\n{}", self.log),
            }
        }
    }

    /// Everything received on this connection, as text.
    pub fn received(&self) -> &str {
        &self.log
    }

    /// Sends a stream header for `to` (and any extra attributes) and expects the server's header and features.
    pub async fn open(&mut self) -> Element {
        self.open_raw(&header(DOMAIN)).await;
        match self.next_event().await {
            Ok(StreamEvent::Open(h)) => assert_eq!(h.from.as_deref(), Some(DOMAIN), "server header"),
            other => panic!("expected the server's stream header, got {other:?}\n{}", self.log),
        }
        let features = self.next_element().await;
        assert!(features.is("features", ns::STREAMS), "expected features, got {}", features.to_xml());
        features
    }

    /// Sends `header` as is.
    pub async fn open_raw(&mut self, header: &str) {
        self.send_raw(header).await;
    }

    /// Opens the stream, negotiates STARTTLS and opens the stream again; returns the features offered over TLS.
    pub async fn start_tls(&mut self) -> Element {
        let features = self.open().await;
        assert!(features.child("starttls", ns::TLS).is_some(), "no STARTTLS offered: {}", features.to_xml());
        self.upgrade().await
    }

    /// On an opened stream: STARTTLS, then the stream opened again over TLS; returns the features offered then.
    pub async fn upgrade(&mut self) -> Element {
        self.send_raw("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await;
        let proceed = self.next_element().await;
        assert!(proceed.is("proceed", ns::TLS), "expected <proceed/>, got {}", proceed.to_xml());
        self.handshake().await;
        self.open().await
    }

    /// SASL PLAIN; returns `<success/>` or `<failure/>`. After success the client side is reset for the restart.
    pub async fn auth_plain(&mut self, authzid: &str, user: &str, password: &str) -> Element {
        let message = B64.encode(format!("{authzid}\0{user}\0{password}"));
        self.send_raw(format!("<auth xmlns='{}' mechanism='PLAIN'>{message}</auth>", ns::SASL)).await;
        let outcome = self.next_element().await;
        if outcome.is("success", ns::SASL) {
            self.reader.reset();
        }
        outcome
    }

    /// SASL SCRAM-SHA-256; `Err` carries the `<failure/>`. The server signature in `<success/>` is verified.
    pub async fn auth_scram(&mut self, user: &str, password: &str) -> Result<(), Element> {
        let client = scram::Client::new(user, password);
        let first = B64.encode(client.first_message());
        self.send_raw(format!("<auth xmlns='{}' mechanism='SCRAM-SHA-256'>{first}</auth>", ns::SASL)).await;
        let challenge = self.next_element().await;
        if !challenge.is("challenge", ns::SASL) {
            return Err(challenge);
        }
        let server_first = B64.decode(challenge.text().trim()).expect("challenge is base64");
        let server_first = String::from_utf8(server_first).expect("challenge is UTF-8");
        let (final_message, expected_signature) = client.final_message(&server_first);
        self.send_raw(format!("<response xmlns='{}'>{}</response>", ns::SASL, B64.encode(final_message))).await;
        let outcome = self.next_element().await;
        if !outcome.is("success", ns::SASL) {
            return Err(outcome);
        }
        let server_final = String::from_utf8(B64.decode(outcome.text().trim()).expect("base64")).expect("UTF-8");
        assert_eq!(server_final, expected_signature, "server signature");
        self.reader.reset();
        Ok(())
    }

    /// Binds `resource` (`None`: let the server choose); returns the full JID or the error IQ.
    pub async fn bind(&mut self, resource: Option<&str>) -> Result<String, Element> {
        let payload = match resource {
            Some(r) => format!("<resource>{r}</resource>"),
            None => String::new(),
        };
        self.send_raw(format!("<iq type='set' id='bind1'><bind xmlns='{}'>{payload}</bind></iq>", ns::BIND)).await;
        let reply = self.next_element().await;
        assert_eq!(reply.attr("id"), Some("bind1"), "bind reply: {}", reply.to_xml());
        match reply.child("bind", ns::BIND).and_then(|b| b.child("jid", ns::BIND)) {
            Some(jid) if reply.attr("type") == Some("result") => Ok(jid.text()),
            _ => Err(reply),
        }
    }

    /// Expects `<stream:error>` with `condition`, then the end of the stream (close tag or socket end).
    pub async fn expect_stream_error(&mut self, condition: &str) -> Element {
        let error = self.expect_stream_error_any().await;
        assert!(
            error.child(condition, ns::STREAM_ERRORS).is_some(),
            "expected stream error {condition}, got {}",
            error.to_xml()
        );
        error
    }

    /// Expects some `<stream:error>` (stanzas before it are skipped), then the end of the stream.
    pub async fn expect_stream_error_any(&mut self) -> Element {
        let deadline = Instant::now() + WAIT;
        let error = loop {
            match self.next_event_until(deadline).await {
                Ok(StreamEvent::Stanza(el)) if el.is("error", ns::STREAMS) => break el,
                Ok(_) => {}
                Err(e) => panic!("expected a stream error, got {e:?}; received:\n{}", self.log),
            }
        };
        self.expect_closed().await;
        error
    }

    /// Expects the server to end the stream: `</stream:stream>` or the socket closing, with no stanza before.
    pub async fn expect_closed(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.next_event_until(deadline).await {
                Ok(StreamEvent::Close) | Err(Ended::Eof) => return,
                Ok(StreamEvent::Whitespace) => {}
                other => panic!("expected the stream to close, got {other:?}; received:\n{}", self.log),
            }
        }
    }

    /// The TLS stream under this connection (its socket and rustls state), for tests of the TLS layer itself.
    pub fn tls_mut(&mut self) -> &mut TlsStream<TcpStream> {
        match &mut self.stream {
            Stream::Tls(tls) => tls,
            _ => panic!("not a TLS connection"),
        }
    }

    /// Whether the server closed the socket within `wait` (anything received before is ignored).
    pub async fn closed_within(&mut self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            match self.next_event_until(deadline).await {
                Err(Ended::Eof) => return true,
                Err(Ended::Timeout) => return false,
                Ok(_) => {}
            }
        }
    }
}

impl Conn {
    /// XEP-0388: `<authenticate/>` with PLAIN as the initial response and `inline` (user agent, Bind2, resume)
    /// inside; returns the `<success/>` or `<failure/>`. No stream restart follows a SASL2 success.
    pub async fn sasl2_plain(&mut self, user: &str, password: &str, inline: &str) -> Element {
        let message = B64.encode(format!("\0{user}\0{password}"));
        self.send_raw(format!(
            "<authenticate xmlns='{SASL2}' mechanism='PLAIN'><initial-response>{message}</initial-response>\
             {inline}</authenticate>"
        ))
        .await;
        self.next_element().await
    }

    /// XEP-0388 with SCRAM-SHA-256; returns the `<success/>` (whose server signature is verified) or `<failure/>`.
    pub async fn sasl2_scram(&mut self, user: &str, password: &str, inline: &str) -> Element {
        let client = scram::Client::new(user, password);
        let first = B64.encode(client.first_message());
        self.send_raw(format!(
            "<authenticate xmlns='{SASL2}' mechanism='SCRAM-SHA-256'><initial-response>{first}</initial-response>\
             {inline}</authenticate>"
        ))
        .await;
        let challenge = self.next_element().await;
        if !challenge.is("challenge", SASL2) {
            return challenge;
        }
        let server_first = String::from_utf8(B64.decode(challenge.text().trim()).expect("base64")).expect("UTF-8");
        let (final_message, expected_signature) = client.final_message(&server_first);
        self.send_raw(format!("<response xmlns='{SASL2}'>{}</response>", B64.encode(final_message))).await;
        let outcome = self.next_element().await;
        if outcome.is("success", SASL2) {
            let data = outcome.child("additional-data", SASL2).map(Element::text).unwrap_or_default();
            let server_final = String::from_utf8(B64.decode(data.trim()).expect("base64")).expect("UTF-8");
            assert_eq!(server_final, expected_signature, "server signature in {}", outcome.to_xml());
        }
        outcome
    }
}

/// The XEP-0388 namespace.
pub const SASL2: &str = "urn:xmpp:sasl:2";

/// A client stream header addressed to `to`.
pub fn header(to: &str) -> String {
    format!(
        "<?xml version='1.0'?><stream:stream to='{to}' version='1.0' xmlns='{}' xmlns:stream='{}'>",
        ns::CLIENT,
        ns::STREAMS
    )
}
