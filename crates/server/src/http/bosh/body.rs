//! XEP-0124 `<body/>` wrappers: parsing a request body and writing response bodies.

use drupe_proto::error::StreamError;
use drupe_proto::ns;
use drupe_proto::xml::{Element, Limits, Node, StreamEvent, StreamReader};

use crate::c2s::framing;

pub const NS_HTTPBIND: &str = "http://jabber.org/protocol/httpbind";

/// A request `<body/>` as parsed, with the raw start tag kept: the element reader keeps only unqualified and
/// `xml:` attributes, and XEP-0206 needs `xmpp:restart`.
pub struct Body {
    pub element: Element,
    start_tag: String,
}

impl Body {
    /// Parses one `<body/>` within the stanza limits. `None`: not one well-formed httpbind body.
    pub fn parse(data: &[u8], limits: Limits) -> Result<Body, StreamError> {
        let bad = || StreamError::new(drupe_proto::error::StreamCondition::BadFormat);
        let mut reader = StreamReader::new(limits);
        framing::prepare_reader(&mut reader);
        let element = framing::parse_frame(&mut reader, data)?.ok_or_else(bad)?;
        if !element.is("body", NS_HTTPBIND) {
            return Err(bad());
        }
        let text = String::from_utf8_lossy(data);
        let start = text.find("<body").unwrap_or(0);
        let end = text[start..].find('>').map(|e| start + e).unwrap_or(text.len());
        Ok(Body { element, start_tag: text[start..end].to_owned() })
    }

    /// `xmpp:restart='true'` (XEP-0206 §5): the client restarts the stream after SASL.
    pub fn restart(&self) -> bool {
        let tag = self.start_tag.as_str();
        let mut rest = tag;
        while let Some(i) = rest.find(":restart") {
            let after = rest[i + ":restart".len()..].trim_start();
            if let Some(value) = after.strip_prefix('=') {
                let value = value.trim_start();
                return value.starts_with("'true'") || value.starts_with("\"true\"") || value.starts_with("'1'");
            }
            rest = &rest[i + 1..];
        }
        false
    }

    /// The stanzas the body carries, qualified by `jabber:client` even when a client left them in the body's
    /// namespace.
    pub fn stanzas(&self) -> Vec<StreamEvent> {
        self.element.children().map(|c| StreamEvent::Stanza(requalify(c))).collect()
    }
}

fn requalify(el: &Element) -> Element {
    if el.ns() != NS_HTTPBIND {
        return el.clone();
    }
    let mut out = Element::new(el.name(), ns::CLIENT);
    for (k, v) in el.attrs() {
        out.set_attr(k, v);
    }
    for node in el.nodes() {
        match node {
            Node::Element(c) => out.push(requalify(c)),
            Node::Text(t) => out.append_text(t.as_str()),
        }
    }
    out
}

/// A response body: `attrs` (session creation), `terminate` (with `remote-stream-error` when the payload holds
/// the `<stream:error/>` that ended the stream, XEP-0206 §7), then the pending elements (each declares its
/// namespace).
pub fn response(attrs: &str, terminate: bool, payload: &[u8]) -> String {
    let mut out = String::from("<body xmlns='http://jabber.org/protocol/httpbind'");
    out.push_str(attrs);
    if terminate {
        out.push_str(" type='terminate'");
        if payload.windows(13).any(|w| w == b"<stream:error") {
            out.push_str(" condition='remote-stream-error'");
        }
    }
    if payload.is_empty() {
        out.push_str("/>");
    } else {
        out.push('>');
        out.push_str(&String::from_utf8_lossy(payload));
        out.push_str("</body>");
    }
    out
}

/// A terminal binding condition (XEP-0124 §17.2).
pub fn terminate(condition: &str) -> String {
    format!("<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' condition='{condition}'/>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bodies_with_restart_and_stanzas() {
        let b = Body::parse(
            b"<body rid='5' sid='x' xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh' \
              xmpp:restart='true'/>",
            Limits::default(),
        )
        .unwrap();
        assert!(b.restart());
        assert_eq!(b.element.attr("rid"), Some("5"));
        let b = Body::parse(
            b"<body rid='6' xmlns='http://jabber.org/protocol/httpbind'><message to='a@b'><body>hi</body></message>\
              <iq xmlns='jabber:client' type='get' id='1'/></body>",
            Limits::default(),
        )
        .unwrap();
        assert!(!b.restart());
        let s: Vec<Element> = b
            .stanzas()
            .into_iter()
            .map(|e| match e {
                StreamEvent::Stanza(e) => e,
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(s[0].is("message", ns::CLIENT) && s[0].child("body", ns::CLIENT).is_some());
        assert!(s[1].is("iq", ns::CLIENT));
        assert!(Body::parse(b"<body xmlns='other'/>", Limits::default()).is_err());
        assert!(Body::parse(b"<body xmlns='http://jabber.org/protocol/httpbind'>", Limits::default()).is_err());
        assert_eq!(response("", false, b""), "<body xmlns='http://jabber.org/protocol/httpbind'/>");
        let ended = response("", true, b"<stream:error><conflict/></stream:error>");
        assert!(
            ended.starts_with(
                "<body xmlns='http://jabber.org/protocol/httpbind' type='terminate' \
                                   condition='remote-stream-error'>"
            ),
            "{ended}"
        );
    }
}
