//! XEP-0049 Private XML Storage: an account keeps one element per namespace, readable only by itself. XEP-0048
//! bookmarks (`storage:bookmarks`) are not stored here but converted to and from XEP-0402 (`pep/bookmarks.rs`).

use drupe_proto::error::Condition;
use drupe_proto::stanza;
use drupe_proto::xml::Element;

use super::pep::bookmarks;
use super::store_failure;
use crate::c2s::Session;

pub const NS: &str = "jabber:iq:private";

/// A `jabber:iq:private` IQ to the sender's own account (others' get `service-unavailable` from the dispatch).
pub async fn handle(s: &mut Session, iq: &Element, owner: &str) {
    let Some(query) = iq.first_child().filter(|c| c.is("query", NS)) else {
        return s.send_error(iq, Condition::BadRequest);
    };
    let children: Vec<&Element> = query.children().collect();
    // §3: exactly one child to get; `jabber:*` namespaces are reserved.
    if children.is_empty() || children.iter().any(|c| c.ns().starts_with("jabber:") || c.ns().is_empty()) {
        return s.send_error(iq, Condition::NotAcceptable);
    }
    let ctx = s.ctx.clone();
    match iq.attr("type") {
        Some("get") => {
            let [wanted] = children.as_slice() else { return s.send_error(iq, Condition::NotAcceptable) };
            let found = if wanted.is("storage", bookmarks::NS_LEGACY) {
                match bookmarks::legacy_storage(&ctx, owner).await {
                    Ok(storage) => storage,
                    Err(fail) => return s.send(&fail.reply(iq)),
                }
            } else {
                match ctx.store.private_xml(owner, wanted.ns()).await {
                    Ok(xml) => xml.and_then(|x| Element::parse(&x)).unwrap_or_else(|| (*wanted).clone()),
                    Err(e) => return s.send_error(iq, store_failure(e)),
                }
            };
            s.send(&stanza::iq_result(iq, Some(Element::new("query", NS).with_child(found))));
        }
        Some("set") => {
            let publisher = s.jid.as_ref().map(ToString::to_string).unwrap_or_default();
            for child in children {
                if child.is("storage", bookmarks::NS_LEGACY) {
                    if let Err(fail) = bookmarks::store_legacy(&ctx, owner, &publisher, child).await {
                        return s.send(&fail.reply(iq));
                    }
                    continue;
                }
                let limit = ctx.config.pubsub.max_private_bytes;
                match ctx.store.private_xml_set(owner, child.ns(), Some(&child.to_xml()), limit).await {
                    Ok(true) => {}
                    Ok(false) => return s.send_error(iq, Condition::NotAcceptable),
                    Err(e) => return s.send_error(iq, store_failure(e)),
                }
            }
            s.send(&stanza::iq_result(iq, None));
        }
        _ => s.send_error(iq, Condition::BadRequest),
    }
}
