//! First-level elements of an XML stream as bytes: where one ends, without parsing it, and the few looks the
//! scenarios take at one (its name, an attribute of its start tag, a substring).
//!
//! A room of 1,000 occupants sends the tool 100,000 stanzas a second, and building an element tree of each one
//! (rxml) made the tool, not the server, the bottleneck. The tool needs almost nothing of most stanzas (a
//! message body's send time, whether a presence is its own), so it splits the stream by counting tags and
//! parses a stanza only when it needs more ([`parse`]).

use drupe_proto::ns;
use drupe_proto::xml::Element;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::client::ClientError;

/// Splits what a connection reads into first-level elements ([`split`]). Bytes read and not yet returned start
/// at `pending[pos..]`; `taken` bytes from there were returned by the last [`Splitter::next`].
pub struct Splitter {
    pending: Vec<u8>,
    pos: usize,
    taken: usize,
}

impl Splitter {
    /// Starts with bytes already read (what a tree reader left at an element boundary).
    pub fn new(read: &[u8]) -> Splitter {
        Splitter { pending: read.to_vec(), pos: 0, taken: 0 }
    }

    /// The next element, reading from `io` through `buf` when more bytes are needed; a close is an error.
    /// Cancel-safe: the only await is the read, and what was read is kept.
    pub async fn next<R: AsyncRead + Unpin>(&mut self, io: &mut R, buf: &mut [u8]) -> Result<&[u8], ClientError> {
        self.pos += std::mem::take(&mut self.taken);
        loop {
            match split(&self.pending[self.pos..]) {
                Split::Element { start, end } => {
                    let (from, to) = (self.pos + start, self.pos + end);
                    self.taken = end;
                    return Ok(&self.pending[from..to]);
                }
                Split::Close => return Err(ClientError::Closed),
                Split::Invalid => return Err(ClientError::Protocol("text outside a stanza".into())),
                Split::Incomplete => {}
            }
            // Keep only the unread bytes; an idle connection holds no buffer.
            self.pending.drain(..self.pos);
            self.pos = 0;
            if self.pending.is_empty() {
                self.pending = Vec::new();
            }
            let n = io.read(buf).await?;
            if n == 0 {
                return Err(ClientError::Closed);
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

/// What [`split`] found at the start of the unread bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Split {
    /// A complete element at `start..end` (whitespace before it skipped).
    Element { start: usize, end: usize },
    /// The stream's closing tag (`</stream:stream>`).
    Close,
    /// Only whitespace or the beginning of an element: more bytes are needed.
    Incomplete,
    /// Text at the top level, or a tag that cannot be read.
    Invalid,
}

/// Finds the first complete first-level element of `b`. Attribute values are skipped as quoted strings (they may
/// hold `>`), CDATA sections, comments and processing instructions as wholes.
pub fn split(b: &[u8]) -> Split {
    let Some(first) = b.iter().position(|c| !c.is_ascii_whitespace()) else { return Split::Incomplete };
    if b[first] != b'<' {
        return Split::Invalid;
    }
    let mut depth = 0usize;
    let mut at = first;
    loop {
        let Some(lt) = find_byte(b, at, b'<') else { return Split::Incomplete };
        let Some(&next) = b.get(lt + 1) else { return Split::Incomplete };
        let end = match next {
            b'/' => {
                let Some(gt) = find_byte(b, lt, b'>') else { return Split::Incomplete };
                if depth == 0 {
                    return Split::Close;
                }
                depth -= 1;
                gt + 1
            }
            b'!' | b'?' => {
                let close: &[u8] = if b[lt..].starts_with(b"<![CDATA[") {
                    b"]]>"
                } else if b[lt..].starts_with(b"<!--") {
                    b"-->"
                } else if next == b'?' {
                    b"?>"
                } else if b.len() < lt + 9 {
                    return Split::Incomplete;
                } else {
                    return Split::Invalid;
                };
                match find(&b[lt + 2..], close) {
                    Some(i) => lt + 2 + i + close.len(),
                    None => return Split::Incomplete,
                }
            }
            _ => {
                let Some(gt) = tag_end(b, lt) else { return Split::Incomplete };
                if b[gt - 1] != b'/' {
                    depth += 1;
                }
                gt + 1
            }
        };
        if depth == 0 {
            return Split::Element { start: first, end };
        }
        at = end;
    }
}

fn find_byte(b: &[u8], from: usize, byte: u8) -> Option<usize> {
    b.get(from..)?.iter().position(|c| *c == byte).map(|i| from + i)
}

/// The `>` that ends the tag opened at `lt`, outside quoted attribute values.
fn tag_end(b: &[u8], lt: usize) -> Option<usize> {
    let mut quote = None;
    for (i, &c) in b.iter().enumerate().skip(lt + 1) {
        match (quote, c) {
            (None, b'\'' | b'"') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

/// The first position of `needle` in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = find_byte(haystack, from, first) {
        if haystack[i + 1..].starts_with(rest) {
            return Some(i);
        }
        from = i + 1;
    }
    None
}

/// The element's name as written (with its prefix, if any).
pub fn name(el: &[u8]) -> &[u8] {
    let rest = el.get(1..).unwrap_or_default();
    let end = rest.iter().position(|c| c.is_ascii_whitespace() || *c == b'/' || *c == b'>').unwrap_or(rest.len());
    &rest[..end]
}

/// The raw (still escaped) value of attribute `attr` of the element's start tag.
pub fn attr<'a>(el: &'a [u8], attr: &[u8]) -> Option<&'a [u8]> {
    let tag = &el[..tag_end(el, 0).unwrap_or(el.len())];
    let mut at = 1 + name(el).len();
    loop {
        while tag.get(at).is_some_and(|c| c.is_ascii_whitespace()) {
            at += 1;
        }
        let eq = at + tag.get(at..)?.iter().position(|c| *c == b'=')?;
        let key = tag[at..eq].trim_ascii();
        let open = eq + 1 + tag.get(eq + 1..)?.iter().position(|c| !c.is_ascii_whitespace())?;
        let quote = tag[open];
        let value_end = open + 1 + tag.get(open + 1..)?.iter().position(|c| *c == quote)?;
        if key == attr {
            return Some(&tag[open + 1..value_end]);
        }
        at = value_end + 1;
    }
}

/// The element as a tree, read as a stanza of a `jabber:client` stream.
pub fn parse(el: &[u8]) -> Option<Element> {
    Element::parse(std::str::from_utf8(el).ok()?)
}

/// A raw element from [`crate::client::Incoming::next_raw`] as a tree; a stream error is an error, as from
/// [`crate::client::Incoming::next_stanza`].
pub fn tree(raw: &[u8]) -> Result<Element, ClientError> {
    let el = parse(raw).ok_or_else(|| ClientError::Protocol("unreadable stanza".into()))?;
    if el.is("error", ns::STREAMS) {
        let cond = el.first_child().map(|c| c.name().to_owned()).unwrap_or_default();
        return Err(ClientError::Stream(cond));
    }
    Ok(el)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(b: &[u8]) -> &[u8] {
        match split(b) {
            Split::Element { start, end } => &b[start..end],
            other => panic!("{other:?} for {}", String::from_utf8_lossy(b)),
        }
    }

    #[test]
    fn splits_first_level_elements() {
        assert_eq!(element(b" <presence/><iq/>"), b"<presence/>");
        assert_eq!(element(b"<message a='>' b=\"/>\"><body>1 &lt; 2</body></message>rest"), {
            let m: &[u8] = b"<message a='>' b=\"/>\"><body>1 &lt; 2</body></message>";
            m
        });
        assert_eq!(element(b"<m><b><![CDATA[</m><x>]]></b></m>"), b"<m><b><![CDATA[</m><x>]]></b></m>");
        assert_eq!(
            element(b"<stream:error><conflict xmlns='x'/></stream:error>"),
            b"<stream:error><conflict xmlns='x'/></stream:error>"
        );
        for partial in
            [&b""[..], b"  ", b"<", b"<message", b"<message to='a>", b"<m><b/>", b"<m><b></b></m", b"<m><![CDA"]
        {
            assert_eq!(split(partial), Split::Incomplete, "{}", String::from_utf8_lossy(partial));
        }
        assert_eq!(split(b"\n</stream:stream>"), Split::Close);
        assert_eq!(split(b"text<a/>"), Split::Invalid);
    }

    #[tokio::test]
    async fn the_splitter_reads_elements_split_across_reads() {
        let stream = b"<iq id='a'/>  <message><body>x &gt; y</body></message>\n<presence/></stream:stream>";
        let mut io = &stream[4..];
        // A 7-byte read buffer splits every element, the first part having been read before.
        let mut buf = [0u8; 7];
        let mut s = Splitter::new(&stream[..4]);
        assert_eq!(s.next(&mut io, &mut buf).await.unwrap(), b"<iq id='a'/>");
        assert_eq!(s.next(&mut io, &mut buf).await.unwrap(), b"<message><body>x &gt; y</body></message>");
        assert_eq!(s.next(&mut io, &mut buf).await.unwrap(), b"<presence/>");
        assert!(matches!(s.next(&mut io, &mut buf).await, Err(ClientError::Closed)));
    }

    #[test]
    fn looks_at_names_and_attributes() {
        let m = b"<message type='groupchat' from=\"r@c/n\" id = 'x'><body type='no'>hi</body></message>";
        assert_eq!(name(m), b"message");
        assert_eq!(attr(m, b"type"), Some(&b"groupchat"[..]));
        assert_eq!(attr(m, b"from"), Some(&b"r@c/n"[..]));
        assert_eq!(attr(m, b"id"), Some(&b"x"[..]));
        assert_eq!(attr(m, b"to"), None);
        assert_eq!(name(b"<iq/>"), b"iq");
        assert_eq!(attr(b"<iq/>", b"type"), None);
        assert!(contains(m, b"<body") && !contains(m, b"<delay"));
        assert_eq!(find(b"aab", b"ab"), Some(1));
        let el = parse(m).expect("parses");
        assert_eq!((el.name(), el.attr("id")), ("message", Some("x")));
    }
}
