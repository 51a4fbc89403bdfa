//! Namespaces in XML 1.0 over rxml's raw events: the declarations in scope for the open elements of a stream.
//!
//! rxml's own resolver keeps a map per open element and interns every namespace name behind shared pointers. On an
//! XMPP stream the root element stays open for the whole connection, so whatever the resolver holds for it is memory
//! every idle session carries; here the root's declarations are a couple of strings.

use rxml::NcName;

use super::Namespace;
use crate::error::{StreamCondition, StreamError};
use crate::ns;

/// The namespace declarations of one open element.
#[derive(Debug, Default)]
struct Frame {
    /// `xmlns='…'` on this element; `Some("")` undeclares the default namespace (Namespaces in XML 1.0 §6.2).
    default: Option<Namespace>,
    /// `xmlns:prefix='…'` on this element, in document order.
    prefixes: Vec<(NcName, Namespace)>,
}

/// An element's start tag as written, collected attribute by attribute until its `>`.
#[derive(Debug)]
pub(super) struct StartTag {
    prefix: Option<NcName>,
    local: NcName,
    frame: Frame,
    attrs: Vec<(Option<NcName>, NcName, String)>,
}

/// A start tag with its names resolved.
pub(super) struct Resolved {
    /// Shared with the declaration it resolved to: the elements in its scope hold one copy between them.
    pub namespace: Namespace,
    pub local: NcName,
    /// Attributes in no namespace by local name; `xml:`-namespaced ones as `xml:name`; others are dropped.
    pub attrs: Vec<(String, String)>,
    /// The default namespace this element declared itself, if any.
    pub declared_default: Option<Namespace>,
}

impl StartTag {
    pub fn new(prefix: Option<NcName>, local: NcName) -> StartTag {
        StartTag { prefix, local, frame: Frame::default(), attrs: Vec::new() }
    }

    /// Attributes other than namespace declarations so far.
    pub fn attribute_count(&self) -> usize {
        self.attrs.len()
    }

    /// Namespace declarations so far.
    pub fn declaration_count(&self) -> usize {
        self.frame.prefixes.len() + usize::from(self.frame.default.is_some())
    }

    /// Adds one attribute as written; namespace declarations are kept apart.
    pub fn push(&mut self, prefix: Option<NcName>, local: NcName, value: String) -> Result<(), StreamError> {
        match prefix {
            // rxml has already refused binding `xmlns` and rebinding `xml` (Namespaces in XML 1.0 §3).
            Some(p) if p.as_str() == "xmlns" => {
                if self.frame.prefixes.iter().any(|(declared, _)| *declared == local) {
                    return Err(duplicate());
                }
                self.frame.prefixes.push((local, Namespace::intern(value)));
            }
            None if local.as_str() == "xmlns" => {
                if self.frame.default.replace(Namespace::intern(value)).is_some() {
                    return Err(duplicate());
                }
            }
            prefix => self.attrs.push((prefix, local, value)),
        }
        Ok(())
    }
}

/// The declarations in scope, one frame per open element (the stream root first).
#[derive(Debug, Default)]
pub(super) struct Scopes {
    frames: Vec<Frame>,
}

impl Scopes {
    /// Opens the element of `tag`: its declarations come into scope and its names are resolved against them.
    pub fn open(&mut self, tag: StartTag) -> Result<Resolved, StreamError> {
        let StartTag { prefix, local, frame, attrs } = tag;
        let declared_default = frame.default.clone();
        self.frames.push(frame);
        let namespace = self.lookup(prefix.as_ref())?.clone();
        let mut resolved: Vec<(Option<&str>, &str, &str)> = Vec::with_capacity(attrs.len());
        for (prefix, local, value) in &attrs {
            // Unprefixed attributes are in no namespace, whatever the default (Namespaces in XML 1.0 §6.2).
            let ns = match prefix {
                None => None,
                Some(p) => Some(self.lookup(Some(p))?.as_str()),
            };
            // Unique Att Spec (XML 1.0 §3.1) and Attributes Unique (Namespaces in XML 1.0 §6.3).
            if resolved.iter().any(|(n, l, _)| *n == ns && *l == local.as_str()) {
                return Err(duplicate());
            }
            resolved.push((ns, local.as_str(), value));
        }
        let attrs = resolved
            .into_iter()
            .filter_map(|(ns, local, value)| match ns {
                None => Some((local.to_owned(), value.to_owned())),
                Some(ns::XML) => Some((format!("xml:{local}"), value.to_owned())),
                Some(_) => None,
            })
            .collect();
        Ok(Resolved { namespace, local, attrs, declared_default })
    }

    /// Closes the innermost open element: its declarations go out of scope.
    pub fn close(&mut self) {
        self.frames.pop();
    }

    /// Frees what the frames of closed elements left behind, and the spare room of those still open (the root's).
    pub fn release(&mut self) {
        self.frames.shrink_to_fit();
        for frame in &mut self.frames {
            frame.prefixes.shrink_to_fit();
        }
    }

    fn lookup(&self, prefix: Option<&NcName>) -> Result<&Namespace, StreamError> {
        static NONE: Namespace = Namespace::EMPTY;
        static XML: Namespace = Namespace::XML;
        match prefix {
            None => Ok(self.frames.iter().rev().find_map(|f| f.default.as_ref()).unwrap_or(&NONE)),
            Some(p) if p.as_str() == "xml" => Ok(&XML),
            Some(p) => self
                .frames
                .iter()
                .rev()
                .find_map(|f| f.prefixes.iter().find(|(declared, _)| declared == p).map(|(_, uri)| uri))
                // Namespace constraint: Prefix Declared (Namespaces in XML 1.0 §5).
                .ok_or_else(|| {
                    StreamError::new(StreamCondition::NotWellFormed).with_text("undeclared namespace prefix")
                }),
        }
    }
}

fn duplicate() -> StreamError {
    StreamError::new(StreamCondition::NotWellFormed).with_text("duplicate attribute")
}
