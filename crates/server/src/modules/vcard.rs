//! XEP-0054 vcard-temp: an account stores its own vCard and anyone may read any account's. Storing one with a
//! PHOTO also publishes it as the XEP-0084 avatar (XEP-0398, see `pep/avatar.rs`), and its common fields as the
//! XEP-0292 vCard4 (`pep/vcard4.rs`).

use drupe_proto::error::Condition;
use drupe_proto::stanza;
use drupe_proto::xml::Element;

use super::pep::avatar::{self, VCARD};
use super::pep::vcard4;
use super::store_failure;
use crate::c2s::Session;

pub const NS: &str = VCARD;

/// A vcard-temp IQ to `owner`'s bare JID (`own`: the sender's own account).
pub async fn handle(s: &mut Session, iq: &Element, owner: &str, own: bool) {
    let Some(vcard) = iq.first_child().filter(|c| c.is("vCard", NS)) else {
        return s.send_error(iq, Condition::BadRequest);
    };
    match iq.attr("type") {
        Some("get") => {
            // Missing accounts and accounts without a vCard look the same: an empty vCard (no enumeration).
            let stored = match s.ctx.store.vcard(owner).await {
                Ok(v) => v.and_then(|v| Element::parse(&v)).filter(|v| v.is("vCard", NS)),
                Err(e) => return s.send_error(iq, store_failure(e)),
            };
            let reply = stanza::iq_result(iq, Some(stored.unwrap_or_else(|| Element::new("vCard", NS))));
            s.send(&reply);
        }
        Some("set") if own => {
            let xml = vcard.to_xml();
            if xml.len() > s.ctx.config.pubsub.max_vcard_bytes {
                return s.send_error(iq, Condition::NotAcceptable);
            }
            if let Err(e) = s.ctx.store.vcard_set(owner, &xml).await {
                return s.send_error(iq, store_failure(e));
            }
            let publisher = s.jid.as_ref().map(ToString::to_string).unwrap_or_default();
            avatar::vcard_stored(&s.ctx, owner, &publisher, vcard).await;
            vcard4::vcard_temp_stored(&s.ctx, owner, &publisher, vcard).await;
            s.send(&stanza::iq_result(iq, None));
        }
        _ => s.send_error(iq, Condition::Forbidden),
    }
}
