//! XEP-0199 XMPP Ping: the server answers pings addressed to it or to the client's own account.

use drupe_proto::stanza;
use drupe_proto::xml::Element;

use crate::c2s::Session;

pub fn handle(s: &mut Session, iq: &Element) {
    if iq.attr("type") == Some("get") {
        s.send(&stanza::iq_result(iq, None));
    } else {
        s.send_error(iq, drupe_proto::error::Condition::BadRequest);
    }
}
