//! XEP-0092 Software Version, which an operator may hide (`server.hide_version`).

use drupe_proto::error::Condition;
use drupe_proto::xml::Element;
use drupe_proto::{ns, stanza};

use crate::c2s::Session;

pub fn handle(s: &mut Session, iq: &Element) {
    if s.ctx.config.server.hide_version {
        return s.send_error(iq, Condition::ServiceUnavailable);
    }
    if iq.attr("type") != Some("get") {
        return s.send_error(iq, Condition::BadRequest);
    }
    let query = Element::new("query", ns::VERSION)
        .with_child(Element::new("name", ns::VERSION).with_text("drupe"))
        .with_child(Element::new("version", ns::VERSION).with_text(env!("CARGO_PKG_VERSION")));
    s.send(&stanza::iq_result(iq, Some(query)));
}
