//! drupe-proto: the XMPP protocol without I/O.
//!
//! Bytes go in, events come out; stanzas are built and serialized here. Nothing in this crate opens a socket,
//! reads a clock or spawns a task, which is what makes it testable byte by byte and fuzzable.

pub mod dataform;
pub mod delay;
pub mod error;
pub mod ns;
pub mod rsm;
pub mod sasl;
pub mod stanza;
pub mod xml;

pub use jid::{BareJid, FullJid, Jid};
