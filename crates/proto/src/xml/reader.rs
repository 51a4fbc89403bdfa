//! Incremental XMPP stream reader: bytes in (split anywhere), [`StreamEvent`]s out.
//!
//! rxml's raw parser does the XML work and already refuses DTDs, entity declarations, processing instructions and
//! comments (RFC 6120 §11.1); [`super::scopes`] resolves names; this layer adds the stream structure (root
//! `<stream:stream>`, stanzas at depth 1) and the configured limits, and maps every failure to the RFC 6120 §4.9.3
//! stream error condition to send before closing.

use rxml::error::EndOrError;
use rxml::parser::Options;
use rxml::{Parse, RawEvent, RawParser, WithOptions};

use super::scopes::{Scopes, StartTag};
use super::{Element, Node};
use crate::error::{StreamCondition, StreamError};
use crate::ns;

/// Longest name, attribute value or text chunk rxml buffers at once.
pub const MAX_TOKEN_BYTES: usize = 8192;

/// Limits enforced while reading; each is a config value of the server.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest stanza: its bytes as received, plus what each element, attribute and text node costs in memory
    /// beyond them ([`ELEMENT_COST`], [`ATTRIBUTE_COST`]), so that no shape of stanza holds much more memory than
    /// this.
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
    /// The parser, while there is input to read. Between stanzas, once every byte fed has made an event, it is
    /// dropped (see [`StreamReader::release_buffers`]) and made again when input arrives, with the stream root
    /// reopened in it: an idle stream holds no parser state.
    parser: Option<Box<RawParser>>,
    /// Bytes fed to the current parser, and bytes the events it gave account for (rxml's event metrics).
    fed: usize,
    accounted: usize,
    /// The stream root's name as written (`stream:stream`), to reopen it in a new parser.
    root: String,
    scopes: Scopes,
    /// The start tag being read, until its `>`.
    tag: Option<Box<StartTag>>,
    limits: Limits,
    /// Open elements of the stanza being read; `stack[0]` is the stanza itself.
    stack: Vec<Element>,
    open: bool,
    closed: bool,
    stanza_bytes: usize,
    /// Bytes of the stream header read so far.
    header_bytes: usize,
}

/// What an element or text node costs in memory beyond its bytes on the wire, counted against
/// [`Limits::max_stanza_bytes`]: its node in the parent's list and the allocation of its name. Without it, 60,000
/// `<a/>` (240 KB) would hold 60,000 nodes of about 100 bytes each.
pub const ELEMENT_COST: usize = std::mem::size_of::<Node>() + 32;

/// What an attribute costs in memory beyond its bytes on the wire (its name and value strings).
pub const ATTRIBUTE_COST: usize = 2 * std::mem::size_of::<String>() + 32;

/// A stream header longer than this is refused (policy-violation).
const MAX_HEADER_BYTES: usize = 4096;

impl StreamReader {
    pub fn new(limits: Limits) -> StreamReader {
        StreamReader {
            parser: None,
            fed: 0,
            accounted: 0,
            root: String::new(),
            scopes: Scopes::default(),
            tag: None,
            limits,
            stack: Vec::new(),
            open: false,
            closed: false,
            stanza_bytes: 0,
            header_bytes: 0,
        }
    }

    /// Applies other limits from the next element on (e.g. the larger ones once the client has authenticated).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Starts a new XML document, as required after STARTTLS and SASL success (RFC 6120 §5.4.3.3, §6.4.6).
    pub fn reset(&mut self) {
        self.parser = None;
        self.root = String::new();
        self.scopes = Scopes::default();
        self.tag = None;
        self.stack.clear();
        self.open = false;
        self.closed = false;
        self.stanza_bytes = 0;
        self.header_bytes = 0;
    }

    /// Frees what reading left behind; call when the connection goes idle, or as soon as all input read so far has
    /// made events. Between stanzas, with no byte fed that has not made an event yet, this gives the parser up: it
    /// goes to this thread's spare parsers (see [`SPARE_PARSERS`]), for the next stanza of any stream with the same
    /// root to read. Otherwise it keeps the partial input and frees only rxml's scratch buffers.
    pub fn release_buffers(&mut self) {
        let Some(parser) = self.parser.as_mut() else { return };
        if self.open && self.stack.is_empty() && self.tag.is_none() && self.fed == self.accounted {
            // A parser that has read the root's end tag is at the end of its document: of no use to anyone.
            if let Some(parser) = self.parser.take().filter(|_| !self.closed) {
                spare::put(&self.root, token_limit(&self.limits), parser);
            }
            self.stack = Vec::new();
            self.scopes.release();
        } else {
            parser.release_temporaries();
        }
    }

    /// Whether a stanza is partially read (input is buffered).
    pub fn in_stanza(&self) -> bool {
        !self.stack.is_empty()
    }

    /// Whether parser state is held (it is not after [`StreamReader::release_buffers`] at a clean boundary).
    pub fn holds_parser(&self) -> bool {
        self.parser.is_some()
    }

    /// Reads from `data` until one [`StreamEvent`] is complete, consuming only the bytes that made it, so that the
    /// caller can stop at an element that changes the stream (STARTTLS, SASL success) with the rest still in
    /// `data`. `Ok(None)` means all of `data` was consumed without completing an event. After an error the stream
    /// must be closed with that error; after [`StreamEvent::Close`] further input is ignored.
    pub fn next(&mut self, data: &mut &[u8]) -> Result<Option<StreamEvent>, StreamError> {
        while !self.closed {
            let parser = match &mut self.parser {
                Some(parser) => parser,
                // Nothing is pending in a dropped parser: no input, no event.
                None if data.is_empty() => return Ok(None),
                None => {
                    self.fed = 0;
                    self.accounted = 0;
                    let parser = match self.open {
                        true => spare::take(&self.root, token_limit(&self.limits))
                            .unwrap_or_else(|| new_parser(&self.limits, Some(&self.root))),
                        false => new_parser(&self.limits, None),
                    };
                    self.parser.insert(parser)
                }
            };
            let before = data.len();
            let parsed = parser.parse(data, false);
            let consumed = before - data.len();
            self.fed = self.fed.wrapping_add(consumed);
            if !self.open {
                self.header_bytes += consumed;
                if self.header_bytes > MAX_HEADER_BYTES {
                    return Err(policy("stream header too large"));
                }
            }
            match parsed {
                Ok(Some(ev)) => {
                    self.accounted = self.accounted.wrapping_add(ev.metrics().len());
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

    fn handle(&mut self, ev: RawEvent) -> Result<Option<StreamEvent>, StreamError> {
        match ev {
            RawEvent::XmlDeclaration(..) => {}
            RawEvent::ElementHeadOpen(m, (prefix, local)) => {
                if self.open {
                    if self.stack.len() >= self.limits.max_depth {
                        return Err(policy("element nesting too deep"));
                    }
                    self.count(m.len())?;
                }
                if !self.open {
                    self.root = match &prefix {
                        Some(prefix) => format!("{prefix}:{local}"),
                        None => local.to_string(),
                    };
                }
                self.tag = Some(Box::new(StartTag::new(prefix, local)));
            }
            RawEvent::Attribute(m, (prefix, local), value) => {
                if self.open {
                    self.count(m.len())?;
                }
                // rxml emits attributes only between a head's open and close.
                let Some(tag) = self.tag.as_mut() else { return Err(not_well_formed("attribute outside a tag")) };
                tag.push(prefix, local, value)?;
                // The stream header is bounded by its byte limit instead.
                if self.open
                    && (tag.attribute_count() > self.limits.max_attributes
                        || tag.declaration_count() > self.limits.max_attributes)
                {
                    return Err(policy("too many attributes"));
                }
            }
            RawEvent::ElementHeadClose(m) => {
                let Some(tag) = self.tag.take() else { return Err(not_well_formed("tag end outside a tag")) };
                let resolved = self.scopes.open(*tag)?;
                if !self.open {
                    return self.stream_open(resolved).map(Some);
                }
                self.count(m.len() + ELEMENT_COST + resolved.attrs.len() * ATTRIBUTE_COST)?;
                let mut el = Element::new(resolved.local.as_str(), resolved.namespace);
                for (name, value) in &resolved.attrs {
                    el.set_attr(name, value);
                }
                self.stack.push(el);
            }
            RawEvent::ElementFoot(m) => {
                self.scopes.close();
                match self.stack.pop() {
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
                }
            }
            RawEvent::Text(m, text) => match self.stack.last_mut() {
                Some(top) => {
                    let new_node = !matches!(top.nodes().last(), Some(Node::Text(_)));
                    top.append_text(text.as_str());
                    self.count(m.len() + if new_node { ELEMENT_COST } else { 0 })?;
                }
                None if text.bytes().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n')) => {
                    return Ok(Some(StreamEvent::Whitespace))
                }
                None => return Err(not_well_formed("text between stanzas")),
            },
        }
        Ok(None)
    }

    /// The root element's start tag: the stream header (RFC 6120 §4.7).
    fn stream_open(&mut self, root: super::scopes::Resolved) -> Result<StreamEvent, StreamError> {
        if *root.namespace != *ns::STREAMS {
            return Err(StreamError::new(StreamCondition::InvalidNamespace));
        }
        if root.local.as_str() != "stream" {
            return Err(StreamError::new(StreamCondition::NotWellFormed));
        }
        let mut header =
            StreamHeader { content_ns: root.declared_default.map(|ns| ns.to_string()), ..StreamHeader::default() };
        for (name, value) in root.attrs {
            let slot = match name.as_str() {
                "to" => &mut header.to,
                "from" => &mut header.from,
                "version" => &mut header.version,
                "xml:lang" => &mut header.lang,
                _ => continue,
            };
            *slot = Some(value);
        }
        self.open = true;
        Ok(StreamEvent::Open(header))
    }

    fn count(&mut self, n: usize) -> Result<(), StreamError> {
        self.stanza_bytes = self.stanza_bytes.saturating_add(n);
        if self.stanza_bytes > self.limits.max_stanza_bytes {
            return Err(policy("stanza too large"));
        }
        Ok(())
    }
}

/// rxml reserves this much for its token scratchpad while it reads, so it is also the parser's memory floor: names
/// and attribute values longer than this are refused (policy-violation); text is split into chunks and counted.
fn token_limit(limits: &Limits) -> usize {
    limits.max_stanza_bytes.min(MAX_TOKEN_BYTES)
}

/// Most parsers a thread keeps for reuse between stanzas.
///
/// A stream gives its parser up between stanzas, so that an idle stream holds none; making one for the next stanza
/// would reserve rxml's token scratchpad again ([`MAX_TOKEN_BYTES`]). An allocation that large is slow in glibc's
/// malloc and makes it merge its lists of small free chunks each time, which then slows every small allocation after
/// it. A thread reads one stanza at a time and hands its parser back before the stanza is handled, so a few spares
/// are enough for any number of streams.
pub const SPARE_PARSERS: usize = 4;

mod spare {
    use std::cell::RefCell;

    use rxml::RawParser;

    /// A parser between stanzas, inside an open stream root: the same state as a new parser that has read `root`'s
    /// start tag, with its buffers still allocated.
    struct Spare {
        root: Box<str>,
        token_limit: usize,
        parser: Box<RawParser>,
    }

    thread_local! {
        static SPARES: RefCell<Vec<Spare>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn put(root: &str, token_limit: usize, parser: Box<RawParser>) {
        // (During thread teardown the list may be gone: the parser is then dropped.)
        let _ = SPARES.try_with(|spares| {
            let mut spares = spares.borrow_mut();
            if spares.len() < super::SPARE_PARSERS {
                spares.push(Spare { root: root.into(), token_limit, parser });
            }
        });
    }

    /// A spare parser inside a root written as `root` (its end tag must match it) with the same token limit.
    pub(super) fn take(root: &str, token_limit: usize) -> Option<Box<RawParser>> {
        SPARES
            .try_with(|spares| {
                let mut spares = spares.borrow_mut();
                let at = spares.iter().rposition(|s| &*s.root == root && s.token_limit == token_limit)?;
                Some(spares.swap_remove(at).parser)
            })
            .ok()
            .flatten()
    }
}

/// A parser; with `root`, one inside that (already open and resolved) stream root, to go on reading stanzas.
fn new_parser(limits: &Limits, root: Option<&str>) -> Box<RawParser> {
    let mut parser =
        Box::new(RawParser::with_options(Options { max_token_length: token_limit(limits), ..Default::default() }));
    // Text is reported as soon as it is read, so that a whitespace keepalive leaves no byte unaccounted for.
    parser.set_text_buffering(false);
    if let Some(root) = root {
        let tag = format!("<{root}>");
        let mut data = tag.as_bytes();
        // The name was read from this stream once already; its events (head open and close) carry nothing new.
        while let Ok(Some(_)) = parser.parse(&mut data, false) {}
        parser.release_temporaries();
    }
    parser
}

fn policy(text: &str) -> StreamError {
    StreamError::new(StreamCondition::PolicyViolation).with_text(text)
}

fn not_well_formed(text: &str) -> StreamError {
    StreamError::new(StreamCondition::NotWellFormed).with_text(text)
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
