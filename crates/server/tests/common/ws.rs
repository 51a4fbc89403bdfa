//! The client side of RFC 7395 for the harness: a WebSocket over TLS, and the translation between the XML stream
//! the rest of the harness speaks and WebSocket frames, so that every [`super::Conn`] and [`super::Client`] step
//! (SASL, bind, SM, expect) runs unchanged over WebSocket. Outgoing frames are made standalone the way RFC 7395
//! wants (each declares its namespace); incoming frames are logged raw so tests can check the server did the same.

use std::net::SocketAddr;

use drupe_proto::xml::{Element, Limits, StreamEvent, StreamReader};
use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::{ns, DOMAIN, WAIT};

pub type Ws = WebSocketStream<TlsStream<TcpStream>>;

pub const FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";

/// TLS to `addr`, then the WebSocket handshake on `path` offering `protocol` (`None`: no subprotocol).
/// `Err` is the handshake failure (e.g. the HTTP status the server refused with).
pub async fn connect(addr: SocketAddr, path: &str, protocol: Option<&str>) -> Result<Ws, String> {
    let tcp = timeout(WAIT, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let name = ServerName::try_from(DOMAIN).expect("server name");
    let tls = timeout(WAIT, super::conn::tls_connector().connect(name, tcp))
        .await
        .expect("TLS handshake in time")
        .expect("TLS handshake");
    let mut request = format!("wss://{DOMAIN}:{}{path}", addr.port()).into_client_request().expect("request");
    if let Some(p) = protocol {
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p).expect("header"));
    }
    let (ws, response) = timeout(WAIT, tokio_tungstenite::client_async(request, tls))
        .await
        .expect("WebSocket handshake in time")
        .map_err(|e| e.to_string())?;
    let selected = response.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok());
    assert_eq!(selected, Some("xmpp"), "the server must select the xmpp subprotocol");
    Ok(ws)
}

/// The frames that XML-stream output from the harness stands for.
pub fn to_frames(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    let text = text.trim();
    if text.starts_with("<?xml") || text.starts_with("<stream:stream") {
        let to = attr(text, "to").unwrap_or(DOMAIN.to_owned());
        return vec![format!("<open xmlns='{FRAMING}' to='{to}' version='1.0'/>")];
    }
    if text == "</stream:stream>" {
        return vec![format!("<close xmlns='{FRAMING}'/>")];
    }
    let mut reader = StreamReader::new(Limits::default());
    let mut events = Vec::new();
    reader
        .feed(b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>", &mut events)
        .expect("root");
    reader.feed(text.as_bytes(), &mut events).unwrap_or_else(|e| panic!("harness sent bad XML {text}: {e}"));
    events
        .into_iter()
        .filter_map(|e| match e {
            // Standalone: every element declares its namespace (`xmlns='jabber:client'` on stanzas).
            StreamEvent::Stanza(el) => Some(el.to_xml()),
            _ => None,
        })
        .collect()
}

/// The XML-stream bytes one frame from the server stands for.
pub fn from_frame(frame: &str) -> Vec<u8> {
    let Some(el) = Element::parse(frame) else { return frame.as_bytes().to_vec() };
    if el.is("open", FRAMING) {
        let from = el.attr("from").unwrap_or_default();
        let id = el.attr("id").unwrap_or_default();
        return format!(
            "<stream:stream xmlns='{}' xmlns:stream='{}' from='{from}' id='{id}' version='1.0'>",
            ns::CLIENT,
            ns::STREAMS
        )
        .into_bytes();
    }
    if el.is("close", FRAMING) {
        return b"</stream:stream>".to_vec();
    }
    frame.as_bytes().to_vec()
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}='"))? + name.len() + 3;
    let end = tag[start..].find('\'')?;
    Some(tag[start..start + end].to_owned())
}

/// Sends each frame as its own text message.
pub async fn send_frames(ws: &mut Ws, frames: Vec<String>) -> bool {
    for f in frames {
        if ws.feed(Message::text(f)).await.is_err() {
            return false;
        }
    }
    ws.flush().await.is_ok()
}

/// The next text message (`None`: the WebSocket closed). Pings are answered by tungstenite.
pub async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Some(t.as_str().to_owned()),
            Some(Ok(Message::Binary(b))) => panic!("server sent a binary message: {b:?}"),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => {}
        }
    }
}

/// A WebSocket to the plain HTTP listener (as a reverse proxy would open it), `xmpp` offered; `forwarded_for`
/// becomes an `X-Forwarded-For` header.
pub async fn connect_plain(addr: SocketAddr, forwarded_for: &str) -> WebSocketStream<TcpStream> {
    let tcp = timeout(WAIT, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
    let mut request = format!("ws://{DOMAIN}:{}/xmpp-websocket", addr.port()).into_client_request().expect("request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("xmpp"));
    request.headers_mut().insert("X-Forwarded-For", HeaderValue::from_str(forwarded_for).expect("header"));
    let (ws, _) = timeout(WAIT, tokio_tungstenite::client_async(request, tcp))
        .await
        .expect("WebSocket handshake in time")
        .expect("WebSocket handshake");
    ws
}

/// Opens the stream on a raw WebSocket and returns the features the server offers.
pub async fn open_raw<S>(ws: &mut WebSocketStream<S>) -> Element
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.send(Message::text(format!("<open xmlns='{FRAMING}' to='{DOMAIN}' version='1.0'/>"))).await.expect("send");
    let mut frames = Vec::new();
    while frames.len() < 2 {
        match timeout(WAIT, ws.next()).await.expect("frame in time") {
            Some(Ok(Message::Text(t))) => frames.push(t.as_str().to_owned()),
            Some(Ok(_)) => {}
            other => panic!("stream ended: {other:?} after {frames:?}"),
        }
    }
    assert!(frames[0].starts_with("<open "), "{frames:?}");
    Element::parse(&frames[1]).unwrap_or_else(|| panic!("features: {}", frames[1]))
}
