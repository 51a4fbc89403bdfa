//! RFC 7395 XMPP over WebSocket for the client: [`WsBytes`] turns a WebSocket into the byte stream the rest of the
//! client speaks (each flush of written bytes becomes one text message; `<open/>`/`<close/>` stand in for the
//! stream header and end), so login, SASL and bind run unchanged over WebSocket.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

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
