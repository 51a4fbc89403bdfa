//! Stanza-level helpers: kind, addressing, replies and the stream header (RFC 6120 §4.7, §8).

use crate::error::StanzaError;
use crate::ns;
use crate::xml::{escape_attr, Element};
use jid::Jid;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Message,
    Presence,
    Iq,
}

/// The stanza kind of a first-level element in the `jabber:client` namespace.
pub fn kind(el: &Element) -> Option<Kind> {
    if el.ns() != ns::CLIENT {
        return None;
    }
    match el.name() {
        "message" => Some(Kind::Message),
        "presence" => Some(Kind::Presence),
        "iq" => Some(Kind::Iq),
        _ => None,
    }
}

/// Parses an addressing attribute. `Ok(None)` when absent, `Err(())` when malformed.
#[allow(clippy::result_unit_err)]
pub fn jid_attr(el: &Element, name: &str) -> Result<Option<Jid>, ()> {
    match el.attr(name) {
        None => Ok(None),
        Some(s) => Jid::new(s).map(Some).map_err(|_| ()),
    }
}

/// An empty reply of `kind` with `to`/`from` swapped and the same `id`.
fn reply(stanza: &Element, kind: &str) -> Element {
    let mut r = Element::new(stanza.name(), ns::CLIENT);
    if let Some(id) = stanza.attr("id") {
        r.set_attr("id", id);
    }
    if let Some(from) = stanza.attr("from") {
        r.set_attr("to", from);
    }
    if let Some(to) = stanza.attr("to") {
        r.set_attr("from", to);
    }
    r.set_attr("type", kind);
    r
}

/// `<iq type='result'/>` answering `iq`, optionally with a payload.
pub fn iq_result(iq: &Element, payload: Option<Element>) -> Element {
    let mut r = reply(iq, "result");
    if let Some(p) = payload {
        r.push(p);
    }
    r
}

/// The error reply to any stanza (RFC 6120 §8.3.1): same kind and id, addresses swapped, type `error`.
pub fn error_reply(stanza: &Element, error: &StanzaError) -> Element {
    let mut r = reply(stanza, "error");
    r.push(error.to_element());
    r
}

/// Whether this stanza is itself an error (never answer an error with an error, RFC 6120 §8.3.1).
pub fn is_error(stanza: &Element) -> bool {
    stanza.attr("type") == Some("error")
}

/// The response stream header sent by a server (RFC 6120 §4.7).
pub fn stream_header(from_domain: &str, id: &str, to: Option<&str>) -> Vec<u8> {
    let mut out = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en' from='"
        .to_vec();
    escape_attr(&mut out, from_domain);
    out.extend_from_slice(b"' id='");
    escape_attr(&mut out, id);
    if let Some(to) = to {
        out.extend_from_slice(b"' to='");
        escape_attr(&mut out, to);
    }
    out.extend_from_slice(b"'>");
    out
}

pub const STREAM_CLOSE: &[u8] = b"</stream:stream>";
