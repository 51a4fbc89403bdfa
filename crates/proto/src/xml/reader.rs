//! Incremental XMPP stream reader: bytes in (split anywhere), [`StreamEvent`]s out.
//!
//! rxml does the XML work and already refuses DTDs, entity declarations, processing instructions and comments
//! (RFC 6120 §11.1); this layer adds the stream structure (root `<stream:stream>`, stanzas at depth 1) and the
//! configured limits, and maps every failure to the RFC 6120 §4.9.3 stream error condition to send before closing.

use rxml::error::EndOrError;
use rxml::parser::Options;
use rxml::{Event, Parse, Parser, WithOptions};

use super::Element;
use crate::error::{StreamCondition, StreamError};
use crate::ns;

/// Longest name, attribute value or text chunk rxml buffers at once.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// Limits enforced while reading; each is a config value of the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest stanza, in bytes of its serialized form as received.
    pub max_stanza_bytes: usize,
    /// Deepest element nesting inside a stanza (the stanza element itself is depth 1).
    pub max_depth: usize,
    /// Most attributes on one element.
    pub max_attributes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { max_stanza_bytes: 256 * 1024, max_depth: 32, max_attributes: 64 }
    }
}

/// The attributes of a stream header (RFC 6120 §4.7).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamHeader {
    pub to: Option<String>,
    pub from: Option<String>,
    pub version: Option<String>,
    pub lang: Option<String>,
    /// The default (content) namespace the header declares, e.g. `jabber:client` (RFC 6120 §4.8.2).
    pub content_ns: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamEvent {
    /// The peer opened (or, after STARTTLS/SASL, re-opened) the stream.
    Open(StreamHeader),
    /// A complete first-level element: a stanza or a negotiation element.
    Stanza(Element),
    /// Whitespace between stanzas (RFC 6120 §4.6.1 keepalive).
    Whitespace,
    /// The peer sent `</stream:stream>`.
    Close,
}

pub struct StreamReader {
    parser: Parser,
    limits: Limits,
    /// Open elements of the stanza being read; `stack[0]` is the stanza itself.
    stack: Vec<Element>,
    open: bool,
    closed: bool,
    stanza_bytes: usize,
    /// Raw bytes of the stream header while it is being read: rxml resolves namespaces but does not report which
    /// default namespace was declared, which the stream header must be checked for.
    header_raw: Vec<u8>,
}

/// A stream header longer than this is refused (policy-violation).
const MAX_HEADER_BYTES: usize = 4096;

impl StreamReader {
    pub fn new(limits: Limits) -> StreamReader {
        StreamReader {
            parser: new_parser(&limits),
            limits,
            stack: Vec::new(),
            open: false,
            closed: false,
            stanza_bytes: 0,
            header_raw: Vec::new(),
        }
    }

    /// Starts a new XML document, as required after STARTTLS and SASL success (RFC 6120 §5.4.3.3, §6.4.6).
    pub fn reset(&mut self) {
        self.parser = new_parser(&self.limits);
        self.stack.clear();
        self.open = false;
        self.closed = false;
        self.stanza_bytes = 0;
        self.header_raw = Vec::new();
    }

    /// Frees buffers held for partial input; call when the connection goes idle.
    pub fn release_buffers(&mut self) {
        self.parser.release_temporaries();
        if self.stack.is_empty() {
            self.stack = Vec::new();
        }
    }

    /// Whether a stanza is partially read (input is buffered).
    pub fn in_stanza(&self) -> bool {
        !self.stack.is_empty()
    }

    /// Reads from `data` until one [`StreamEvent`] is complete, consuming only the bytes that made it, so that the
    /// caller can stop at an element that changes the stream (STARTTLS, SASL success) with the rest still in
    /// `data`. `Ok(None)` means all of `data` was consumed without completing an event. After an error the stream
    /// must be closed with that error; after [`StreamEvent::Close`] further input is ignored.
    pub fn next(&mut self, data: &mut &[u8]) -> Result<Option<StreamEvent>, StreamError> {
        while !self.closed {
            let before = *data;
            let parsed = self.parser.parse(data, false);
            if !self.open {
                let consumed = &before[..before.len() - data.len()];
                if self.header_raw.len() + consumed.len() > MAX_HEADER_BYTES {
                    return Err(policy("stream header too large"));
                }
                self.header_raw.extend_from_slice(consumed);
            }
            match parsed {
                Ok(Some(ev)) => {
                    if let Some(out) = self.handle(ev)? {
                        return Ok(Some(out));
                    }
                }
                Ok(None) | Err(EndOrError::NeedMoreData) => break,
                Err(EndOrError::Error(e)) => return Err(map_xml_error(e)),
            }
        }
        Ok(None)
    }

    /// Feeds all of `data` and appends the resulting events to `out`.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), StreamError> {
        while let Some(ev) = self.next(&mut data)? {
            out.push(ev);
        }
        Ok(())
    }

    fn handle(&mut self, ev: Event) -> Result<Option<StreamEvent>, StreamError> {
        match ev {
            Event::XmlDeclaration(..) => {}
            Event::StartElement(m, (namespace, name), attrs) => {
                if !self.open {
                    if namespace.as_str() != ns::STREAMS {
                        return Err(StreamError::new(StreamCondition::InvalidNamespace));
                    }
                    if name.as_str() != "stream" {
                        return Err(StreamError::new(StreamCondition::NotWellFormed));
                    }
                    let mut header = StreamHeader::default();
                    for ((ans, aname), value) in attrs.iter() {
                        let slot = match (ans.is_none(), aname.as_str()) {
                            (true, "to") => &mut header.to,
                            (true, "from") => &mut header.from,
                            (true, "version") => &mut header.version,
                            (false, "lang") if ans.as_str() == ns::XML => &mut header.lang,
                            _ => continue,
                        };
                        *slot = Some(value.to_string());
                    }
                    header.content_ns = default_namespace(&self.header_raw);
                    self.header_raw = Vec::new();
                    self.open = true;
                    return Ok(Some(StreamEvent::Open(header)));
                }
                if self.stack.len() >= self.limits.max_depth {
                    return Err(policy("element nesting too deep"));
                }
                if attrs.len() > self.limits.max_attributes {
                    return Err(policy("too many attributes"));
                }
                self.count(m.len())?;
                let mut el = Element::new(name.as_str(), namespace.as_str());
                for ((ans, aname), value) in attrs.iter() {
                    if ans.is_none() {
                        el.set_attr(aname.as_str(), value.as_str());
                    } else if ans.as_str() == ns::XML {
                        el.set_attr(&format!("xml:{}", aname.as_str()), value.as_str());
                    }
                }
                self.stack.push(el);
            }
            Event::EndElement(m) => match self.stack.pop() {
                None => {
                    self.closed = true;
                    return Ok(Some(StreamEvent::Close));
                }
                Some(el) => {
                    self.count(m.len())?;
                    match self.stack.last_mut() {
                        Some(parent) => parent.push(el),
                        None => {
                            self.stanza_bytes = 0;
                            return Ok(Some(StreamEvent::Stanza(el)));
                        }
                    }
                }
            },
            Event::Text(m, text) => match self.stack.last_mut() {
                Some(top) => {
                    top.append_text(text.as_str());
                    self.count(m.len())?;
                }
                None if text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) => {
                    return Ok(Some(StreamEvent::Whitespace))
                }
                None => return Err(StreamError::new(StreamCondition::NotWellFormed).with_text("text between stanzas")),
            },
        }
        Ok(None)
    }

    fn count(&mut self, n: usize) -> Result<(), StreamError> {
        self.stanza_bytes = self.stanza_bytes.saturating_add(n);
        if self.stanza_bytes > self.limits.max_stanza_bytes {
            return Err(policy("stanza too large"));
        }
        Ok(())
    }
}

fn new_parser(limits: &Limits) -> Parser {
    // rxml reserves this much for its token scratchpad up front, so it is also the parser's memory floor: names and
    // attribute values longer than this are refused (policy-violation); text is split into chunks and counted.
    Parser::with_options(Options {
        max_token_length: limits.max_stanza_bytes.min(MAX_TOKEN_BYTES),
        ..Default::default()
    })
}

/// The value of the first `xmlns='…'` (not `xmlns:prefix`) attribute in the raw root start tag.
fn default_namespace(raw: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(raw).ok()?;
    // Skip the XML declaration; the root start tag is the first `<` not followed by `?`.
    let start = text.match_indices('<').map(|(i, _)| i).find(|&i| !text[i + 1..].starts_with('?'))?;
    let tag = &text[start..];
    let mut rest = tag;
    while let Some(i) = rest.find("xmlns") {
        let before = rest[..i].chars().last();
        let after = &rest[i + 5..];
        let after_trim = after.trim_start();
        if before.is_some_and(char::is_whitespace) && after_trim.starts_with('=') {
            let value = after_trim[1..].trim_start();
            let quote = value.chars().next()?;
            if quote == '\'' || quote == '"' {
                let end = value[1..].find(quote)?;
                return Some(unescape(&value[1..1 + end]));
            }
            return None;
        }
        rest = after;
    }
    None
}

/// Predefined-entity and character-reference decoding for an attribute value read from raw bytes.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

fn policy(text: &str) -> StreamError {
    StreamError::new(StreamCondition::PolicyViolation).with_text(text)
}

fn map_xml_error(e: rxml::Error) -> StreamError {
    use rxml::Error as E;
    match e {
        E::RestrictedXml("event too long" | "long name or reference") => policy("token too large"),
        E::RestrictedXml(what) => StreamError::new(StreamCondition::RestrictedXml).with_text(what),
        // rxml reports any `<!` that opens neither a comment nor CDATA this way: that is a markup declaration
        // (DOCTYPE, ENTITY, ...), i.e. a DTD, which XMPP forbids (RFC 6120 §11.1).
        E::InvalidSyntax("malformed cdata or comment section start") => {
            StreamError::new(StreamCondition::RestrictedXml).with_text("DTD")
        }
        E::UndeclaredEntity => StreamError::new(StreamCondition::RestrictedXml).with_text("entity reference"),
        E::InvalidUtf8Byte(_) => StreamError::new(StreamCondition::NotWellFormed).with_text("invalid UTF-8"),
        other => StreamError::new(StreamCondition::NotWellFormed).with_text(&other.to_string()),
    }
}

impl Element {
    /// Parses one serialized element (e.g. a stanza we stored), with `jabber:client` as the default namespace.
    /// Storage round trips only: limits are generous, and anything but exactly one element is `None`.
    pub fn parse(xml: &str) -> Option<Element> {
        let mut reader = StreamReader::new(Limits {
            max_stanza_bytes: usize::MAX,
            max_depth: usize::MAX,
            max_attributes: usize::MAX,
        });
        let mut events = Vec::new();
        reader.feed(STORAGE_WRAPPER.as_bytes(), &mut events).ok()?;
        reader.feed(xml.as_bytes(), &mut events).ok()?;
        reader.feed(b"</stream:stream>", &mut events).ok()?;
        let mut stanzas = events.into_iter().filter_map(|e| match e {
            StreamEvent::Stanza(el) => Some(el),
            _ => None,
        });
        let el = stanzas.next()?;
        stanzas.next().is_none().then_some(el)
    }
}

const STORAGE_WRAPPER: &str = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
