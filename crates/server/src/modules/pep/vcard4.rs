//! XEP-0292 vCard4 over PEP (`urn:xmpp:vcard4`, item `current`) kept in step with the XEP-0054 vcard-temp, as
//! XEP-0398 §6 suggests: the common text fields (name, nickname, birthday, email, phone, URL, note, title, role,
//! organisation) are converted both ways; other vcard-temp fields (and the PHOTO, which `avatar.rs` handles) are
//! kept as they were.

use drupe_proto::xml::Element;
use drupe_store::NodeConfig;

use super::avatar::VCARD;
use super::items;
use crate::context::Context;

pub const NODE: &str = "urn:xmpp:vcard4";
pub const NS: &str = "urn:ietf:params:xml:ns:vcard-4.0";

/// (vcard-temp element, its text child or "" for its own text, vCard4 property, its value element).
const FIELDS: &[(&str, &str, &str, &str)] = &[
    ("FN", "", "fn", "text"),
    ("NICKNAME", "", "nickname", "text"),
    ("BDAY", "", "bday", "date"),
    ("URL", "", "url", "uri"),
    ("DESC", "", "note", "text"),
    ("TITLE", "", "title", "text"),
    ("ROLE", "", "role", "text"),
    ("EMAIL", "USERID", "email", "text"),
    ("TEL", "NUMBER", "tel", "uri"),
    ("ORG", "ORGNAME", "org", "text"),
];

/// vcard-temp `N` parts and their vCard4 `n` counterparts.
const NAME_PARTS: &[(&str, &str)] = &[("FAMILY", "surname"), ("GIVEN", "given"), ("MIDDLE", "additional")];

fn temp_value(temp: &Element, name: &str, inner: &str) -> Option<String> {
    let el = temp.child(name, VCARD)?;
    let text = if inner.is_empty() { el.text() } else { el.child(inner, VCARD)?.text() };
    Some(text.trim().to_owned()).filter(|t| !t.is_empty())
}

/// The vCard4 form of a vcard-temp's common fields.
pub fn from_vcard_temp(temp: &Element) -> Element {
    let mut v4 = Element::new("vcard", NS);
    for (name, inner, prop, value) in FIELDS {
        if let Some(mut text) = temp_value(temp, name, inner) {
            if *prop == "tel" && !text.starts_with("tel:") {
                text = format!("tel:{text}");
            }
            v4.push(Element::new(*prop, NS).with_child(Element::new(*value, NS).with_text(text)));
        }
    }
    if let Some(n) = temp.child("N", VCARD) {
        let mut parts = Element::new("n", NS);
        for (temp_part, v4_part) in NAME_PARTS {
            if let Some(p) = n.child(temp_part, VCARD).map(|p| p.text()).filter(|p| !p.trim().is_empty()) {
                parts.push(Element::new(*v4_part, NS).with_text(p.trim()));
            }
        }
        if parts.children().next().is_some() {
            v4.push(parts);
        }
    }
    v4
}

/// `temp` with its common fields replaced by those of `v4` (the others, PHOTO included, kept).
pub fn merge_into_vcard_temp(mut temp: Element, v4: &Element) -> Element {
    temp.remove_children(|c| c.ns() == VCARD && (c.name() == "N" || FIELDS.iter().any(|f| f.0 == c.name())));
    for (name, inner, prop, value) in FIELDS {
        let Some(text) = v4.child(prop, NS).and_then(|p| p.child(value, NS)).map(|v| v.text()) else { continue };
        let text = if *prop == "tel" { text.trim_start_matches("tel:").to_owned() } else { text };
        let el = if inner.is_empty() {
            Element::new(*name, VCARD).with_text(text)
        } else {
            Element::new(*name, VCARD).with_child(Element::new(*inner, VCARD).with_text(text))
        };
        temp.push(el);
    }
    if let Some(n) = v4.child("n", NS) {
        let mut parts = Element::new("N", VCARD);
        for (temp_part, v4_part) in NAME_PARTS {
            if let Some(p) = n.child(v4_part, NS) {
                parts.push(Element::new(*temp_part, VCARD).with_text(p.text()));
            }
        }
        temp.push(parts);
    }
    temp
}

/// A client stored a vcard-temp: publish its vCard4 form, unless that is what the node already holds.
pub async fn vcard_temp_stored(ctx: &Context, owner: &str, publisher: &str, temp: &Element) {
    let v4 = from_vcard_temp(temp);
    if let Ok(Some(current)) = ctx.store.pubsub_last_item(owner, NODE).await {
        if Element::parse(&current.payload).as_ref() == Some(&v4) {
            return;
        }
    }
    let options = items::Options { create: NodeConfig::default(), preconditions: None, from_client: false };
    if let Err(e) = items::publish(ctx, owner, publisher, NODE, Some("current"), v4, options).await {
        tracing::debug!(?e, "cannot publish the vCard as vCard4");
    }
}

/// A client published its vCard4: mirror the common fields into the stored vcard-temp.
pub async fn published(ctx: &Context, owner: &str, v4: &Element, from_client: bool) {
    if !from_client || !v4.is("vcard", NS) {
        return;
    }
    let stored = ctx.store.vcard(owner).await.ok().flatten().and_then(|v| Element::parse(&v));
    let temp = stored.filter(|v| v.is("vCard", VCARD)).unwrap_or_else(|| Element::new("vCard", VCARD));
    let xml = merge_into_vcard_temp(temp, v4).to_xml();
    if xml.len() > ctx.config.pubsub.max_vcard_bytes {
        return tracing::debug!(owner, "vCard4 too large for the vCard limit: vcard-temp left as it was");
    }
    if let Err(e) = ctx.store.vcard_set(owner, &xml).await {
        tracing::warn!(error = %e, "cannot mirror the vCard4 into vcard-temp");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_fields_round_trip_and_others_are_kept() {
        let temp = Element::parse(
            "<vCard xmlns='vcard-temp'><FN>Peter</FN><N><FAMILY>Saint-Andre</FAMILY><GIVEN>Peter</GIVEN></N>\
             <NICKNAME>stpeter</NICKNAME><EMAIL><INTERNET/><USERID>p@example.com</USERID></EMAIL>\
             <TEL><VOICE/><NUMBER>+1-303</NUMBER></TEL><JABBERID>p@jabber.org</JABBERID></vCard>",
        )
        .unwrap();
        let v4 = from_vcard_temp(&temp);
        let xml = v4.to_xml();
        assert!(xml.contains("<fn><text>Peter</text></fn>"), "{xml}");
        assert!(xml.contains("<tel><uri>tel:+1-303</uri></tel>"), "{xml}");
        assert!(xml.contains("<n><surname>Saint-Andre</surname><given>Peter</given></n>"), "{xml}");
        let mut changed = v4.clone();
        changed.remove_children(|c| c.name() == "nickname");
        let back = merge_into_vcard_temp(temp, &changed);
        let xml = back.to_xml();
        assert!(xml.contains("<JABBERID>p@jabber.org</JABBERID>"), "unmapped fields kept: {xml}");
        assert!(!xml.contains("NICKNAME"), "a field removed in vCard4 is removed: {xml}");
        assert!(xml.contains("<NUMBER>+1-303</NUMBER>") && xml.contains("<USERID>p@example.com</USERID>"), "{xml}");
        assert_eq!(from_vcard_temp(&back), changed);
    }
}
