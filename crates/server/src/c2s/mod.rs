//! Client-to-server streams: one task per connection owns the socket, reads bytes into the proto stream reader,
//! negotiates (STARTTLS, SASL, bind) and then hands stanzas to the modules.

mod csi;
pub mod fast;
mod negotiation;
mod sasl;
mod session;
mod sm;
mod transport;

pub use negotiation::normalize_username;
pub use session::{run, Session};
pub use sm::Takeover;
