//! XEP-0352 Client State Indication: while the client says it is inactive, presence updates and chat-state-only
//! messages are held back (only the newest presence per sender is kept) and sent when the client becomes active,
//! when something urgent is sent (keeping order), or when the buffer reaches `csi.max_buffered`.

use std::sync::Arc;

use drupe_proto::stanza::{self, Kind};
use drupe_proto::xml::Element;

use super::session::Session;

pub const NS: &str = "urn:xmpp:csi:0";
const CHATSTATES: &str = "http://jabber.org/protocol/chatstates";

/// Stanzas held back while the client is inactive, oldest first.
#[derive(Debug, Default)]
pub struct Held(Vec<Arc<Element>>);

/// Whether a stanza must reach an inactive client at once.
fn urgent(el: &Element) -> bool {
    match stanza::kind(el) {
        Some(Kind::Presence) => {
            matches!(el.attr("type"), Some("subscribe" | "subscribed" | "unsubscribe" | "unsubscribed" | "error"))
        }
        Some(Kind::Message) => el.children().any(|c| c.ns() != CHATSTATES),
        _ => true,
    }
}

impl Session {
    pub(super) fn csi_element(&mut self, el: &Element) {
        match el.name() {
            "inactive" if self.csi.is_none() => self.csi = Some(Held::default()),
            "active" => self.csi_flush(),
            _ => {}
        }
    }

    /// Sends `el` now, or holds it back if the client is inactive and it can wait.
    pub(super) fn csi_send(&mut self, el: Arc<Element>) {
        let max = self.ctx.config.limits.csi_max_buffered;
        let Some(held) = self.csi.as_mut() else { return self.send_shared(el) };
        if urgent(&el) {
            self.csi_release();
            return self.send_shared(el);
        }
        if el.name() == "presence" {
            // A newer presence from the same sender supersedes the held one.
            let from = el.attr("from");
            held.0.retain(|h| !(h.name() == "presence" && h.attr("from") == from));
        }
        held.0.push(el);
        if held.0.len() >= max {
            self.csi_release();
        }
    }

    /// Sends everything held, staying inactive.
    fn csi_release(&mut self) {
        if let Some(held) = self.csi.as_mut() {
            let held = std::mem::take(&mut held.0);
            for el in held {
                self.send_shared(el);
            }
        }
    }

    fn csi_flush(&mut self) {
        self.csi_release();
        self.csi = None;
    }
}
