//! XML for XMPP streams: a small owned element tree, an incremental stream reader on top of rxml with the
//! RFC 6120 limits, and escaping for the writer side.

mod element;
mod escape;
mod namespaces;
mod reader;

pub use element::{Element, Node};
pub use escape::{escape_attr, escape_text};
pub use reader::{Limits, StreamEvent, StreamHeader, StreamReader};
