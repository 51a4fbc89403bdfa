//! A namespace name as elements hold it: shared, not copied.
//!
//! Every element of a stanza is in some namespace, and most inherit it from their parent (Namespaces in XML 1.0
//! §6.2). Were each element to own a copy, a stanza of many small children under one long declaration would hold
//! that declaration once per child: 60,000 `<a/>` under an 8,000-byte `xmlns` made 480 MB of 248 KB. So an element
//! holds a [`Namespace`]: the names the server knows are static strings, any other is one shared allocation per
//! declaration as written, which every element in its scope points to.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

use crate::ns;

#[derive(Clone)]
pub struct Namespace(Repr);

#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<str>),
}

impl Namespace {
    /// No namespace (an undeclared default, Namespaces in XML 1.0 §6.2).
    pub const EMPTY: Namespace = Namespace(Repr::Static(""));
    /// The `xml:` prefix's namespace, bound by definition (Namespaces in XML 1.0 §3).
    pub const XML: Namespace = Namespace(Repr::Static(ns::XML));

    /// The namespace named `name` as read from the wire: a known name costs no allocation, any other one.
    pub fn intern(name: String) -> Namespace {
        match known(&name) {
            Some(name) => Namespace(Repr::Static(name)),
            None => Namespace(Repr::Shared(name.into())),
        }
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(s) => s,
            Repr::Shared(s) => s,
        }
    }
}

/// The namespaces of the stream and of what clients send most: a declaration of one of these allocates nothing.
fn known(name: &str) -> Option<&'static str> {
    const KNOWN: &[&str] = &[
        ns::CLIENT,
        ns::STREAMS,
        ns::SASL,
        ns::TLS,
        ns::BIND,
        ns::SESSION,
        ns::STANZA_ERRORS,
        ns::ROSTER,
        ns::DISCO_INFO,
        ns::DISCO_ITEMS,
        ns::PING,
        ns::DELAY,
        "urn:xmpp:sm:3",
        "urn:xmpp:csi:0",
        "urn:xmpp:sasl:2",
        "urn:xmpp:bind:0",
        "urn:xmpp:fast:0",
        "urn:xmpp:carbons:2",
        "urn:xmpp:mam:2",
        "urn:xmpp:receipts",
        "urn:xmpp:chat-markers:0",
        "urn:xmpp:sid:0",
        "urn:xmpp:hints",
        "http://jabber.org/protocol/chatstates",
        "http://jabber.org/protocol/caps",
        "http://jabber.org/protocol/muc",
        "http://jabber.org/protocol/muc#user",
        "http://jabber.org/protocol/pubsub",
        "jabber:x:data",
        "jabber:x:oob",
    ];
    KNOWN.iter().copied().find(|known| *known == name)
}

impl From<&'static str> for Namespace {
    fn from(name: &'static str) -> Namespace {
        Namespace(Repr::Static(name))
    }
}

impl From<String> for Namespace {
    fn from(name: String) -> Namespace {
        Namespace::intern(name)
    }
}

impl Deref for Namespace {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Namespace {
    fn eq(&self, other: &Namespace) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Namespace {}

impl PartialEq<str> for Namespace {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl Hash for Namespace {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_static_and_others_shared() {
        let client = Namespace::intern(ns::CLIENT.to_owned());
        assert!(matches!(client.0, Repr::Static(_)));
        let other = Namespace::intern("urn:example:x".to_owned());
        let copy = other.clone();
        match (&other.0, &copy.0) {
            (Repr::Shared(a), Repr::Shared(b)) => assert!(Arc::ptr_eq(a, b)),
            _ => panic!("not shared"),
        }
        assert_eq!(other, copy);
        assert_eq!(client, Namespace::from(ns::CLIENT));
        assert_eq!(&*other, "urn:example:x");
    }
}
