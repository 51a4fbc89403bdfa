//! The transport under a client stream: plain TCP until STARTTLS, then TLS (or TLS from the first byte on the
//! XEP-0368 direct TLS port; `tls.rs`, which holds no buffer while idle), a WebSocket (RFC 7395) or a BOSH session
//! (XEP-0206). One type, so the session code is the same for all: it receives bytes or whole elements and hands its
//! [`Output`] over to be written.

use std::io;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket};
use drupe_proto::error::{StreamCondition, StreamError};
use drupe_proto::xml::StreamEvent;
use futures_util::SinkExt;
use std::pin::Pin;
use std::task::Poll;
use sync_wrapper::SyncWrapper;

use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::output::Output;
use super::tls::TlsStream;
use crate::http::bosh::Link;

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
    /// Transient state while STARTTLS hands the socket to rustls.
    Upgrading,
    /// RFC 7395: one element per text message. `secure`: HTTPS, or plain HTTP behind a trusted TLS proxy.
    /// (`SyncWrapper`: the session is shared by reference across awaits, and a socket is only used through `&mut`.)
    WebSocket {
        socket: Box<SyncWrapper<WebSocket>>,
        secure: bool,
        max_frame: usize,
    },
    /// XEP-0206: elements arrive in the `<body/>` of HTTP requests and leave in their responses.
    Bosh(Box<Link>),
}

/// What one read from the transport gave.
pub enum Received {
    /// Bytes of the XML stream (TCP: as many as one read gave; TLS: the plaintext of the records one read completed).
    Bytes(Vec<u8>),
    /// One WebSocket text message: a complete element.
    Frame(Utf8Bytes),
    /// Stream events parsed from a BOSH request.
    Events(Vec<StreamEvent>),
    /// The peer broke the transport's framing rules: close the stream with this error.
    Invalid(StreamError),
    /// The connection is gone.
    Eof,
}

impl Transport {
    /// Whether the stream is encrypted (PLAIN is offered, `c2s.require_tls` is satisfied, STARTTLS is not offered).
    pub fn is_tls(&self) -> bool {
        match self {
            Transport::Tls(_) => true,
            Transport::WebSocket { secure, .. } => *secure,
            Transport::Bosh(link) => link.secure(),
            Transport::Plain(_) | Transport::Upgrading => false,
        }
    }

    /// Whether the transport carries one element per frame instead of one XML stream.
    pub fn is_framed(&self) -> bool {
        matches!(self, Transport::WebSocket { .. } | Transport::Bosh(_))
    }

    /// Waits for input. Cancel-safe: nothing is lost when another branch of the session's `select!` wins.
    pub async fn receive(&mut self) -> Received {
        match self {
            Transport::Plain(s) => bytes(read_chunk(s).await),
            Transport::Tls(s) => bytes(s.receive().await),
            Transport::Upgrading => Received::Eof,
            Transport::WebSocket { socket, max_frame, .. } => loop {
                match socket.get_mut().recv().await {
                    None | Some(Ok(Message::Close(_))) => return Received::Eof,
                    Some(Ok(Message::Text(text))) if text.len() > *max_frame => {
                        return Received::Invalid(policy("message larger than limits.max_stanza_bytes"));
                    }
                    Some(Ok(Message::Text(text))) => return Received::Frame(text),
                    Some(Ok(Message::Binary(_))) => {
                        return Received::Invalid(policy("binary messages are not XMPP (RFC 7395 §3.2)"));
                    }
                    // tungstenite answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Err(e)) if is_io(&e) => return Received::Eof,
                    // Oversize messages and WebSocket protocol violations.
                    Some(Err(e)) => return Received::Invalid(policy(&e.to_string())),
                }
            },
            Transport::Bosh(link) => link.receive().await,
        }
    }

    /// Writes everything in `out` (it is not cleared here). A peer that takes no byte for `stall` fails the write
    /// with `TimedOut` (`c2s.write_timeout_secs`): a client that stops reading cannot hold its session's task.
    pub async fn send(&mut self, out: &Output, stall: Duration) -> io::Result<()> {
        match self {
            Transport::Plain(s) => {
                let mut data = out.bytes();
                while !data.is_empty() {
                    match tokio::time::timeout(stall, s.write(data)).await {
                        Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(Ok(n)) => data = &data[n..],
                        Ok(Err(e)) => return Err(e),
                        Err(_) => return Err(stalled()),
                    }
                }
                Ok(())
            }
            Transport::Tls(s) => s.write_all(out.bytes(), stall).await,
            Transport::Upgrading => Err(io::Error::new(io::ErrorKind::NotConnected, "transport is being upgraded")),
            Transport::WebSocket { socket, .. } => {
                let socket = socket.get_mut();
                for (frame, _) in out.frames() {
                    // Output is built from strings and ASCII markup only.
                    let text = String::from_utf8_lossy(frame).into_owned();
                    let fed = tokio::time::timeout(stall, socket.feed(Message::Text(text.into())));
                    fed.await.map_err(|_| stalled())?.map_err(io::Error::other)?;
                }
                tokio::time::timeout(stall, socket.flush()).await.map_err(|_| stalled())?.map_err(io::Error::other)
            }
            Transport::Bosh(link) => link.deliver(out),
        }
    }

    /// Ends the transport after the last output was sent.
    pub async fn shutdown(&mut self) {
        match self {
            Transport::Plain(s) => drop(s.shutdown().await),
            Transport::Tls(s) => drop(s.shutdown().await),
            Transport::Upgrading => {}
            // RFC 7395 §3.6: after `<close/>` the WebSocket connection is closed.
            Transport::WebSocket { socket, .. } => drop(socket.get_mut().close().await),
            Transport::Bosh(link) => link.terminate(),
        }
    }
}

/// A write that made no progress within its deadline.
pub(super) fn stalled() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the peer has not read for c2s.write_timeout_secs")
}

fn bytes(r: io::Result<Vec<u8>>) -> Received {
    match r {
        Ok(data) if !data.is_empty() => Received::Bytes(data),
        Ok(_) | Err(_) => Received::Eof,
    }
}

/// Bytes read from a socket, at most [`READ_CHUNK`]. The read buffer lives on the stack only while the read is
/// polled, and what was read is copied out at its size: an idle session (awaiting its next read) holds no buffer.
async fn read_chunk<R: AsyncRead + Unpin + ?Sized>(r: &mut R) -> io::Result<Vec<u8>> {
    std::future::poll_fn(|cx| {
        let mut chunk = [0u8; READ_CHUNK];
        let mut filled = ReadBuf::new(&mut chunk);
        match Pin::new(&mut *r).poll_read(cx, &mut filled) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(filled.filled().to_vec())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// Most bytes one read takes from a socket (TLS records carry at most 16 KiB; stanzas span reads as needed).
const READ_CHUNK: usize = 4096;

fn policy(text: &str) -> StreamError {
    StreamError::new(StreamCondition::PolicyViolation).with_text(text)
}

/// Whether a WebSocket error is the connection failing (rather than the peer breaking a rule).
fn is_io(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}
