//! An owned XML element tree: what a stanza is between the reader and the writer.
//!
//! Deliberately small (name, namespace, attributes in document order, children). Namespaced attributes other
//! than `xml:*` are not used by any XMPP core or IM extension and are dropped by the reader.

use super::escape::{escape_attr, escape_text};
use super::Namespace;
use crate::ns::STREAMS as STREAMS_NS;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Element(Element),
    Text(String),
}

#[derive(Clone, Debug, Eq)]
pub struct Element {
    name: String,
    /// Shared with the other elements of its scope (see [`Namespace`]).
    ns: Namespace,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
}

/// Attribute order carries no meaning in XML (and rxml does not keep it): equality ignores it.
impl PartialEq for Element {
    fn eq(&self, other: &Element) -> bool {
        self.name == other.name
            && self.ns == other.ns
            && self.children == other.children
            && self.attrs.len() == other.attrs.len()
            && self.attrs.iter().all(|(k, v)| other.attr(k) == Some(v.as_str()))
    }
}

impl Element {
    pub fn new(name: impl Into<String>, ns: impl Into<Namespace>) -> Element {
        Element { name: name.into(), ns: ns.into(), attrs: Vec::new(), children: Vec::new() }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ns(&self) -> &str {
        &self.ns
    }

    /// The namespace, to give another element without copying it.
    pub fn namespace(&self) -> &Namespace {
        &self.ns
    }

    pub fn is(&self, name: &str, ns: &str) -> bool {
        self.name == name && *self.ns == *ns
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn attrs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Sets (or replaces) an attribute.
    pub fn set_attr(&mut self, name: &str, value: impl Into<String>) {
        let value = value.into();
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.attrs.push((name.to_owned(), value)),
        }
    }

    pub fn remove_attr(&mut self, name: &str) -> Option<String> {
        let i = self.attrs.iter().position(|(k, _)| k == name)?;
        Some(self.attrs.remove(i).1)
    }

    /// Builder form of [`Element::set_attr`].
    pub fn with_attr(mut self, name: &str, value: impl Into<String>) -> Element {
        self.set_attr(name, value);
        self
    }

    pub fn with_child(mut self, child: Element) -> Element {
        self.children.push(Node::Element(child));
        self
    }

    pub fn with_text(mut self, text: impl Into<String>) -> Element {
        self.append_text(text);
        self
    }

    pub fn push(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    pub fn append_text(&mut self, text: impl Into<String>) {
        let text = text.into();
        if let Some(Node::Text(last)) = self.children.last_mut() {
            last.push_str(&text);
        } else {
            self.children.push(Node::Text(text));
        }
    }

    pub fn nodes(&self) -> &[Node] {
        &self.children
    }

    /// Child elements, in order.
    pub fn children(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    pub fn child(&self, name: &str, ns: &str) -> Option<&Element> {
        self.children().find(|c| c.is(name, ns))
    }

    pub fn child_mut(&mut self, name: &str, ns: &str) -> Option<&mut Element> {
        self.children.iter_mut().find_map(|n| match n {
            Node::Element(e) if e.is(name, ns) => Some(e),
            _ => None,
        })
    }

    /// Removes every child element for which `remove` is true.
    pub fn remove_children(&mut self, mut remove: impl FnMut(&Element) -> bool) {
        self.children.retain(|n| !matches!(n, Node::Element(e) if remove(e)));
    }

    /// The first payload element (the child of an IQ).
    pub fn first_child(&self) -> Option<&Element> {
        self.children().next()
    }

    /// Concatenated character data of the direct text children.
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                s.push_str(t);
            }
        }
        s
    }

    /// Serializes the element. `xmlns` is emitted only where the namespace differs from `parent_ns`, so a stanza
    /// written with `parent_ns = "jabber:client"` carries no redundant declarations.
    ///
    /// Elements in the streams namespace (`<stream:features/>`, `<stream:error/>`) are written with the `stream:`
    /// prefix that every stream header declares, as clients expect (RFC 6120 §4.8.5).
    pub fn write_to(&self, out: &mut Vec<u8>, parent_ns: &str) {
        out.push(b'<');
        let prefixed = *self.ns == *STREAMS_NS;
        if prefixed {
            out.extend_from_slice(b"stream:");
        }
        out.extend_from_slice(self.name.as_bytes());
        if *self.ns != *parent_ns && !prefixed {
            out.extend_from_slice(b" xmlns='");
            escape_attr(out, &self.ns);
            out.push(b'\'');
        }
        for (k, v) in &self.attrs {
            out.push(b' ');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"='");
            escape_attr(out, v);
            out.push(b'\'');
        }
        if self.children.is_empty() {
            out.extend_from_slice(b"/>");
            return;
        }
        out.push(b'>');
        for n in &self.children {
            match n {
                Node::Element(e) => e.write_to(out, &self.ns),
                Node::Text(t) => escape_text(out, t),
            }
        }
        out.extend_from_slice(b"</");
        if prefixed {
            out.extend_from_slice(b"stream:");
        }
        out.extend_from_slice(self.name.as_bytes());
        out.push(b'>');
    }

    /// Serializes once for many recipients: the start tag up to (not including) its end, without any `to`
    /// attribute, and the rest. A writer sends `head`, ` to='…'` for one recipient, then `tail`.
    pub fn write_addressable(&self, parent_ns: &str) -> (Vec<u8>, Vec<u8>) {
        let mut bare = self.clone();
        bare.remove_attr("to");
        let mut all = Vec::new();
        bare.write_to(&mut all, parent_ns);
        // The start tag ends at the first `>` or `/>` outside attribute values; values are quoted with `'` and
        // cannot contain it unescaped.
        let mut in_value = false;
        let mut split = all.len();
        for (i, &b) in all.iter().enumerate() {
            match b {
                b'\'' => in_value = !in_value,
                b'>' | b'/' if !in_value => {
                    split = i;
                    break;
                }
                _ => {}
            }
        }
        let tail = all.split_off(split);
        (all, tail)
    }

    /// Serialization as a standalone document fragment (namespace always declared).
    pub fn to_xml(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out, "");
        // Only ever built from valid UTF-8 strings and ASCII markup.
        String::from_utf8(out).unwrap_or_default()
    }
}
