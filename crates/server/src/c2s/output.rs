//! What a session writes, framed for its transport. On TCP the output is one XML stream (RFC 6120): a stream
//! header, stanzas whose `jabber:client` namespace the header declared, `</stream:stream>`. On WebSocket
//! (RFC 7395 §3.3) and BOSH (XEP-0206) each element is a document of its own: it declares its namespace, the
//! header is the framing `<open/>`, the end is `<close/>`, and frame boundaries are kept so that the transport can
//! send one element per WebSocket message (or pick the elements for a BOSH `<body/>`).

use drupe_proto::error::StreamError;
use drupe_proto::ns;
use drupe_proto::stanza;
use drupe_proto::xml::{escape_attr, Element};

use crate::router::Prepared;

/// RFC 7395 §3.3.2: the framing namespace of `<open/>` and `<close/>`.
pub const NS_FRAMING: &str = "urn:ietf:params:xml:ns:xmpp-framing";
const STREAM_PREFIX_DECL: &[u8] = b" xmlns:stream='http://etherx.jabber.org/streams'";
const CLIENT_DECL: &[u8] = b" xmlns='jabber:client'";

/// What kind of element a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frame {
    /// The stream header (`<open/>`).
    Open,
    /// A stanza, a negotiation element or a stream error.
    Element,
    /// The end of the stream (`<close/>`).
    Close,
}

/// A session's pending output.
#[derive(Default)]
pub struct Output {
    buf: Vec<u8>,
    /// Framed transports: where each frame ends in `buf`, and what it holds. `None`: one XML stream.
    frames: Option<Vec<(usize, Frame)>>,
}

impl Output {
    /// Output for a transport that carries one element per frame.
    pub fn framed() -> Output {
        Output { buf: Vec::new(), frames: Some(Vec::new()) }
    }

    pub fn is_framed(&self) -> bool {
        self.frames.is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The whole output (stream transports).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The frames, in order (framed transports).
    pub fn frames(&self) -> impl Iterator<Item = (&[u8], Frame)> {
        let mut start = 0;
        self.frames.iter().flatten().map(move |&(end, kind)| {
            let frame = &self.buf[start..end];
            start = end;
            (frame, kind)
        })
    }

    /// Empties the output after it was written. The buffer is released, not kept: an idle session holds no write
    /// buffer, and one allocation per flush costs far less than the write it follows.
    pub fn clear(&mut self) {
        self.buf = Vec::new();
        if let Some(frames) = self.frames.as_mut() {
            *frames = Vec::new();
        }
    }

    fn end_frame(&mut self, kind: Frame) {
        if let Some(frames) = self.frames.as_mut() {
            frames.push((self.buf.len(), kind));
        }
    }

    /// The response stream header (RFC 6120 §4.7), or RFC 7395 §3.3.2 `<open/>`.
    pub fn header(&mut self, domain: &str, id: &str, to: Option<&str>) {
        if !self.is_framed() {
            self.buf.extend_from_slice(&stanza::stream_header(domain, id, to));
            return;
        }
        self.buf.extend_from_slice(b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='");
        escape_attr(&mut self.buf, domain);
        self.buf.extend_from_slice(b"' id='");
        escape_attr(&mut self.buf, id);
        if let Some(to) = to {
            self.buf.extend_from_slice(b"' to='");
            escape_attr(&mut self.buf, to);
        }
        self.buf.extend_from_slice(b"' version='1.0' xml:lang='en'/>");
        self.end_frame(Frame::Open);
    }

    /// A stanza or negotiation element.
    pub fn element(&mut self, el: &Element) {
        if !self.is_framed() {
            return el.write_to(&mut self.buf, ns::CLIENT);
        }
        let start = self.buf.len();
        // An empty parent namespace makes the element declare its own (`xmlns='jabber:client'` on stanzas).
        el.write_to(&mut self.buf, "");
        if el.ns() == ns::STREAMS {
            // `<stream:features/>` keeps its prefix, which a standalone document must declare (RFC 7395 §3.4).
            let at = start + 1 + "stream:".len() + el.name().len();
            self.buf.splice(at..at, STREAM_PREFIX_DECL.iter().copied());
        }
        self.end_frame(Frame::Element);
    }

    /// A stanza serialized once for many recipients, with `to` spliced in.
    pub fn addressed(&mut self, p: &Prepared, to: &str) {
        let name_end = 1 + p.element.name().len();
        if self.is_framed() && p.element.ns() == ns::CLIENT && p.head.len() >= name_end {
            // The shared serialization relies on the stream's default namespace; a frame must declare it.
            self.buf.extend_from_slice(&p.head[..name_end]);
            self.buf.extend_from_slice(CLIENT_DECL);
            self.buf.extend_from_slice(&p.head[name_end..]);
        } else {
            self.buf.extend_from_slice(&p.head);
        }
        self.buf.extend_from_slice(b" to='");
        escape_attr(&mut self.buf, to);
        self.buf.push(b'\'');
        self.buf.extend_from_slice(&p.tail);
        self.end_frame(Frame::Element);
    }

    /// A complete element that declares its own namespace (e.g. `<r xmlns='urn:xmpp:sm:3'/>`).
    pub fn raw_element(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.end_frame(Frame::Element);
    }

    /// `<stream:error/>` (RFC 6120 §4.9).
    pub fn stream_error(&mut self, e: &StreamError) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&e.to_bytes());
        if self.is_framed() {
            let at = start + "<stream:error".len();
            self.buf.splice(at..at, STREAM_PREFIX_DECL.iter().copied());
        }
        self.end_frame(Frame::Element);
    }

    /// `</stream:stream>`, or RFC 7395 §3.6 `<close/>`.
    pub fn close(&mut self) {
        if self.is_framed() {
            self.buf.extend_from_slice(b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
        } else {
            self.buf.extend_from_slice(stanza::STREAM_CLOSE);
        }
        self.end_frame(Frame::Close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(out: &Output) -> Vec<(String, Frame)> {
        out.frames().map(|(b, k)| (String::from_utf8(b.to_vec()).unwrap(), k)).collect()
    }

    #[test]
    fn stream_output_relies_on_the_header_and_framed_output_declares_namespaces() {
        let features = Element::new("features", ns::STREAMS).with_child(Element::new("bind", ns::BIND));
        let msg = Element::new("message", ns::CLIENT)
            .with_attr("to", "a@b")
            .with_child(Element::new("body", ns::CLIENT).with_text("hi"));
        let mut tcp = Output::default();
        tcp.element(&msg);
        assert_eq!(tcp.bytes(), b"<message to='a@b'><body>hi</body></message>");

        let mut ws = Output::framed();
        ws.header("localhost", "abc", None);
        ws.element(&features);
        ws.element(&msg);
        ws.addressed(&Prepared::new(msg.clone()), "c@d");
        ws.raw_element(b"<r xmlns='urn:xmpp:sm:3'/>");
        ws.stream_error(&StreamError::new(drupe_proto::error::StreamCondition::PolicyViolation));
        ws.close();
        let f = frames(&ws);
        assert_eq!(f.len(), 7);
        assert_eq!(
            f[0].0,
            "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='localhost' id='abc' version='1.0' xml:lang='en'/>"
        );
        assert_eq!(f[0].1, Frame::Open);
        assert_eq!(
            f[1].0,
            "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind \
             xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
        );
        assert_eq!(f[2].0, "<message xmlns='jabber:client' to='a@b'><body>hi</body></message>");
        assert_eq!(f[3].0, "<message xmlns='jabber:client' to='c@d'><body>hi</body></message>");
        assert_eq!(f[4].0, "<r xmlns='urn:xmpp:sm:3'/>");
        assert!(f[5].0.starts_with("<stream:error xmlns:stream='http://etherx.jabber.org/streams'><policy-violation"));
        assert_eq!(f[6], ("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>".into(), Frame::Close));
        ws.clear();
        assert_eq!(frames(&ws).len(), 0);
    }
}
