//! RFC 7395 XMPP over WebSocket for the client: [`WsBytes`] turns a WebSocket into the byte stream the rest of the
//! client speaks (each flush of written bytes becomes one text message; `<open/>`/`<close/>` stand in for the
//! stream header and end), so login, SASL and bind run unchanged over WebSocket; [`websocket_login_cycle`] is the
//! `login --websocket` scenario's one cycle.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::time::Duration;

use drupe_proto::xml::StreamEvent;
use futures_util::{Sink, Stream};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::client::{authenticate, bind, ClientError, Conn};
use crate::Target;

const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

pub struct WsBytes<S> {
    ws: WebSocketStream<S>,
    domain: String,
    read: Vec<u8>,
    read_pos: usize,
    write: Vec<u8>,
}

impl<S> WsBytes<S> {
    pub fn new(ws: WebSocketStream<S>, domain: &str) -> WsBytes<S> {
        WsBytes { ws, domain: domain.to_owned(), read: Vec::new(), read_pos: 0, write: Vec::new() }
    }
}

/// The frame that bytes written by the client stand for.
fn frame_out(data: &[u8], domain: &str) -> String {
    let text = String::from_utf8_lossy(data);
    let text = text.trim();
    if text.starts_with("<?xml") || text.starts_with("<stream:stream") {
        return format!("<open xmlns='{FRAMING}' to='{domain}' version='1.0'/>");
    }
    if text == "</stream:stream>" {
        return format!("<close xmlns='{FRAMING}'/>");
    }
    // Stanzas written for a stream rely on its default namespace; a frame declares it (RFC 7395 §3.4).
    for name in ["<iq", "<presence", "<message"] {
        if let Some(rest) = text.strip_prefix(name) {
            let tag_end = rest.find('>').unwrap_or(rest.len());
            if rest.starts_with([' ', '/', '>']) && !rest[..tag_end].contains("xmlns=") {
                return format!("{name} xmlns='jabber:client'{rest}");
            }
        }
    }
    text.to_owned()
}

/// The stream bytes a frame from the server stands for.
fn frame_in(frame: &str) -> Vec<u8> {
    if frame.starts_with("<open ") {
        return b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
                 version='1.0'>"
            .to_vec();
    }
    if frame.starts_with("<close ") {
        return b"</stream:stream>".to_vec();
    }
    frame.as_bytes().to_vec()
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsBytes<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.read_pos < this.read.len() {
                let n = buf.remaining().min(this.read.len() - this.read_pos);
                buf.put_slice(&this.read[this.read_pos..this.read_pos + n]);
                this.read_pos += n;
                return Poll::Ready(Ok(()));
            }
            match std::task::ready!(Pin::new(&mut this.ws).poll_next(cx)) {
                Some(Ok(Message::Text(t))) => {
                    this.read = frame_in(t.as_str());
                    this.read_pos = 0;
                }
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsBytes<S> {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().write.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.write.is_empty() {
            std::task::ready!(Pin::new(&mut this.ws).poll_ready(cx)).map_err(io::Error::other)?;
            let frame = frame_out(&this.write, &this.domain);
            this.write.clear();
            Pin::new(&mut this.ws).start_send(Message::text(frame)).map_err(io::Error::other)?;
        }
        Pin::new(&mut this.ws).poll_flush(cx).map_err(io::Error::other)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws).poll_close(cx).map_err(io::Error::other)
    }
}

/// One login cycle over RFC 7395 WebSocket at `url` (`wss://host:port/path`): TLS, the handshake with the `xmpp`
/// subprotocol, SASL, bind, presence, close. Returns the time from connect to the bind result.
pub async fn websocket_login_cycle(
    target: &Target,
    tls: &TlsConnector,
    url: &str,
    index: usize,
    resource: &str,
) -> Result<Duration, ClientError> {
    let cycle = async {
        let t0 = tokio::time::Instant::now();
        let authority = url.strip_prefix("wss://").and_then(|r| r.split('/').next()).unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| ClientError::Protocol(format!("bad port in {url}")))?),
            None => (authority, 443),
        };
        let tcp = TcpStream::connect((host, port)).await?;
        tcp.set_nodelay(true)?;
        let name = ServerName::try_from(target.domain.clone())
            .map_err(|_| ClientError::Protocol(format!("`{}` is not a TLS server name", target.domain)))?;
        let tls_stream = tls.connect(name, tcp).await?;
        let mut request = url.into_client_request().map_err(|e| ClientError::Protocol(e.to_string()))?;
        request.headers_mut().insert("Sec-WebSocket-Protocol", "xmpp".parse().expect("header value"));
        let (ws, _) = tokio_tungstenite::client_async(request, tls_stream)
            .await
            .map_err(|e| ClientError::Protocol(format!("WebSocket handshake: {e}")))?;
        let mut conn = Conn::new(WsBytes::new(ws, &target.domain));
        let features = conn.open_stream(&target.domain).await?;
        authenticate(&mut conn, target, &target.username(index), &features).await?;
        let features = conn.open_stream(&target.domain).await?;
        bind(&mut conn, &features, resource).await?;
        let latency = t0.elapsed();
        conn.send(b"<presence/>").await?;
        conn.send(b"</stream:stream>").await?;
        let closing = async {
            while !matches!(conn.next_event().await?, StreamEvent::Close) {}
            Ok::<(), ClientError>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), closing).await;
        Ok(latency)
    };
    match tokio::time::timeout(target.timeout, cycle).await {
        Ok(r) => r,
        Err(_) => Err(ClientError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_markup_becomes_framing_and_stanzas_declare_their_namespace() {
        assert_eq!(
            frame_out(b"<?xml version='1.0'?><stream:stream to='x'>", "localhost"),
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"
        );
        assert_eq!(frame_out(b"<presence/>", "d"), "<presence xmlns='jabber:client'/>");
        assert_eq!(
            frame_out(b"<iq type='set' id='b'><x/></iq>", "d"),
            "<iq xmlns='jabber:client' type='set' id='b'><x/></iq>"
        );
        let auth = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth>";
        assert_eq!(frame_out(auth.as_bytes(), "d"), auth);
        assert_eq!(frame_in("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"), b"</stream:stream>");
    }
}
