//! Input on framed transports: RFC 7395 XMPP over WebSocket (one complete element per message) and XEP-0206 BOSH
//! (elements parsed from request bodies). Each frame becomes the same [`StreamEvent`] a TCP stream would give, so
//! the session logic after this point does not know which transport it runs on.
//!
//! A WebSocket session's [`StreamReader`] reads one endless document: a synthetic root (declaring `jabber:client` as
//! the default namespace, which a frame's own `xmlns` overrides) and then every frame as one first-level element.
//! Frames are checked to hold exactly one complete element, so nothing can leak from one frame into the next.

use drupe_proto::error::{StreamCondition, StreamError};
use drupe_proto::ns;
use drupe_proto::xml::{Element, StreamEvent, StreamHeader, StreamReader};

use super::output::NS_FRAMING;
use super::session::Session;

const ROOT: &[u8] = b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

/// Opens the synthetic root of a framed session's reader.
pub fn prepare_reader(reader: &mut StreamReader) {
    let mut data = ROOT;
    // The root is well-formed and within every limit: it yields exactly the Open event.
    let _ = reader.next(&mut data);
}

fn not_well_formed(text: &str) -> StreamError {
    StreamError::new(StreamCondition::NotWellFormed).with_text(text)
}

/// Parses one frame into its one element.
pub fn parse_frame(reader: &mut StreamReader, mut data: &[u8]) -> Result<Option<Element>, StreamError> {
    // The parser holds back text until markup follows: text around the element is refused here instead.
    let trimmed = data.trim_ascii();
    let markup_only = trimmed.starts_with(b"<") && trimmed.ends_with(b">");
    if !trimmed.is_empty() && !markup_only {
        return Err(not_well_formed("text outside the element of a frame"));
    }
    let mut element = None;
    while let Some(event) = reader.next(&mut data)? {
        match event {
            StreamEvent::Whitespace => {}
            StreamEvent::Stanza(el) if element.is_none() => element = Some(el),
            StreamEvent::Stanza(_) => return Err(not_well_formed("more than one element in a frame")),
            StreamEvent::Open(_) | StreamEvent::Close => return Err(not_well_formed("stream markup in a frame")),
        }
    }
    if reader.in_stanza() {
        return Err(not_well_formed("incomplete element in a frame"));
    }
    Ok(element)
}

/// The stream event an RFC 7395 frame stands for: `<open/>` is the stream header, `<close/>` its end.
pub fn frame_event(el: Element) -> StreamEvent {
    if el.ns() != NS_FRAMING {
        return StreamEvent::Stanza(el);
    }
    match el.name() {
        "open" => StreamEvent::Open(StreamHeader {
            to: el.attr("to").map(str::to_owned),
            from: el.attr("from").map(str::to_owned),
            version: el.attr("version").map(str::to_owned),
            lang: el.attr("xml:lang").map(str::to_owned),
            // The framing carries stanzas qualified by `jabber:client` (RFC 7395 §3.4).
            content_ns: Some(ns::CLIENT.to_owned()),
        }),
        "close" => StreamEvent::Close,
        _ => StreamEvent::Stanza(el),
    }
}

impl Session {
    /// One WebSocket text message.
    pub(super) async fn input_frame(&mut self, data: &[u8]) -> Result<(), StreamError> {
        // Whitespace-only messages are tolerated as keepalives.
        let Some(el) = parse_frame(&mut self.reader, data)? else { return Ok(()) };
        self.framed_event(frame_event(el)).await
    }

    /// Events from one BOSH request, in order.
    pub(super) async fn input_events(&mut self, events: Vec<StreamEvent>) -> Result<(), StreamError> {
        for event in events {
            self.framed_event(event).await?;
            if self.closing {
                break;
            }
        }
        Ok(())
    }

    async fn framed_event(&mut self, event: StreamEvent) -> Result<(), StreamError> {
        // RFC 7395 §3.3: the stream starts (and restarts after SASL) with `<open/>`, and only then.
        match (&event, self.header_sent) {
            (StreamEvent::Open(_), true) => {
                Err(StreamError::new(StreamCondition::PolicyViolation).with_text("stream already open"))
            }
            (StreamEvent::Stanza(_), false) => Err(not_well_formed("expected <open/>")),
            _ => self.event(event).await.map(|_| ()),
        }
    }
}

#[cfg(test)]
mod tests {
    use drupe_proto::xml::Limits;

    use super::*;

    fn reader() -> StreamReader {
        let mut r = StreamReader::new(Limits { max_stanza_bytes: 2048, ..Limits::default() });
        prepare_reader(&mut r);
        r
    }

    #[test]
    fn each_frame_is_one_element_with_its_own_namespaces() {
        let mut r = reader();
        let open =
            parse_frame(&mut r, b"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>");
        match frame_event(open.unwrap().unwrap()) {
            StreamEvent::Open(h) => {
                assert_eq!((h.to.as_deref(), h.version.as_deref()), (Some("localhost"), Some("1.0")));
                assert_eq!(h.content_ns.as_deref(), Some(ns::CLIENT));
            }
            other => panic!("{other:?}"),
        }
        let msg = parse_frame(&mut r, b" <message xmlns='jabber:client' to='a@b'><body>x</body></message>\n");
        let msg = msg.unwrap().unwrap();
        assert!(msg.is("message", ns::CLIENT) && msg.attr("to") == Some("a@b"));
        let sasl = parse_frame(&mut r, b"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AA==</auth>");
        assert!(sasl.unwrap().unwrap().is("auth", ns::SASL));
        assert_eq!(parse_frame(&mut r, b"  ").unwrap(), None);
        let close = parse_frame(&mut r, b"<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>").unwrap().unwrap();
        assert_eq!(frame_event(close), StreamEvent::Close);
    }

    #[test]
    fn malformed_frames_are_stream_errors() {
        let cases: [&[u8]; 7] = [
            b"<message xmlns='jabber:client'/> trailing",
            b"<message xmlns='jabber:client'/>text<message xmlns='jabber:client'/>",
            b"<message xmlns='jabber:client'/><presence xmlns='jabber:client'/>",
            b"<message xmlns='jabber:client'>",
            b"not xml",
            b"</stream:stream>",
            b"<message xmlns='jabber:client'><body>&undefined;</body></message>",
        ];
        for case in cases {
            let err = parse_frame(&mut reader(), case).expect_err(&String::from_utf8_lossy(case));
            assert!(
                matches!(err.condition, StreamCondition::NotWellFormed | StreamCondition::RestrictedXml),
                "{}: {err}",
                String::from_utf8_lossy(case)
            );
        }
        let big = format!("<message xmlns='jabber:client'><body>{}</body></message>", "a".repeat(4096));
        let err = parse_frame(&mut reader(), big.as_bytes()).unwrap_err();
        assert_eq!(err.condition, StreamCondition::PolicyViolation);
    }
}
