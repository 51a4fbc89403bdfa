//! XML for XMPP streams: a small owned element tree, an incremental stream reader on top of rxml with the
//! RFC 6120 limits, and escaping for the writer side.

mod element;
mod escape;
mod namespace;
mod reader;
mod scopes;

pub use element::{Element, Node};
pub use escape::{escape_attr, escape_text};
pub use namespace::Namespace;
pub use reader::{Limits, StreamEvent, StreamHeader, StreamReader, ATTRIBUTE_COST, ELEMENT_COST};
