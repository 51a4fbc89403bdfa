//! Client-to-server streams: one task per connection owns the socket, reads bytes into the proto stream reader,
//! negotiates (STARTTLS, SASL, bind) and then hands stanzas to the modules.

mod csi;
mod durable;
pub mod fast;
pub mod framing;
mod negotiation;
pub mod output;
mod sasl;
mod session;
mod sm;
pub mod tls;
pub mod transport;

pub use negotiation::normalize_username;
pub use session::{run, run_framed, Session};
pub use sm::Takeover;
