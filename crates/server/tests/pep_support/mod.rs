//! Shared steps for the PEP tests: XEP-0115 caps announced (and the server's disco#info query answered), publish,
//! items, and reading events and `pubsub#errors` conditions.
#![allow(dead_code)] // each test binary uses a different part

use std::time::Duration;

use base64::Engine;

use crate::common::{ns, Client, Element, TestServer};

pub const PUBSUB: &str = "http://jabber.org/protocol/pubsub";
pub const OWNER: &str = "http://jabber.org/protocol/pubsub#owner";
pub const EVENT: &str = "http://jabber.org/protocol/pubsub#event";
pub const ERRORS: &str = "http://jabber.org/protocol/pubsub#errors";
pub const CAPS: &str = "http://jabber.org/protocol/caps";
pub const CAPS_NODE: &str = "https://drupe.test/client";

/// The disco#info answer of a test client with `features` (one identity client/pc).
pub fn disco_answer(features: &[&str]) -> String {
    let mut xml = String::from("<identity category='client' type='pc'/>");
    for f in features {
        xml.push_str(&format!("<feature var='{f}'/>"));
    }
    xml
}

/// The XEP-0115 `ver` of [`disco_answer`].
pub fn caps_ver(features: &[&str]) -> String {
    let mut sorted: Vec<&str> = features.to_vec();
    sorted.sort();
    let mut s = String::from("client/pc//<");
    for f in sorted {
        s.push_str(f);
        s.push('<');
    }
    let digest = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, s.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(digest)
}

fn is_caps_query(el: &Element) -> bool {
    el.is("iq", ns::CLIENT) && el.attr("type") == Some("get") && el.child("query", ns::DISCO_INFO).is_some()
}

/// What happened after a caps announcement.
pub struct Announced {
    /// The server asked for the disco#info (the `ver` was not in its verified cache).
    pub queried: bool,
    /// Everything else received meanwhile (e.g. last items).
    pub stanzas: Vec<Element>,
}

/// Sends available presence announcing `ver`, answers the server's disco#info query (if any) with `answer`, and
/// returns what arrived.
pub async fn announce_ver(c: &mut Client, ver: &str, answer: &[&str]) -> Announced {
    c.send(format!("<presence><c xmlns='{CAPS}' hash='sha-1' node='{CAPS_NODE}' ver='{ver}'/></presence>")).await;
    c.sync().await;
    let mut stanzas = c.collect(Duration::from_millis(50)).await;
    let Some(i) = stanzas.iter().position(is_caps_query) else { return Announced { queried: false, stanzas } };
    let query = stanzas.remove(i);
    let q = query.child("query", ns::DISCO_INFO).expect("disco query");
    assert_eq!(q.attr("node"), Some(format!("{CAPS_NODE}#{ver}").as_str()), "{}", query.to_xml());
    assert_eq!(query.attr("from"), Some(c.bare().as_str()), "asked from the account: {}", query.to_xml());
    let reply = format!(
        "<iq type='result' id='{}' to='{}'><query xmlns='{}' node='{CAPS_NODE}#{ver}'>{}</query></iq>",
        query.attr("id").unwrap_or_default(),
        query.attr("from").unwrap_or_default(),
        ns::DISCO_INFO,
        disco_answer(answer)
    );
    c.send(reply).await;
    c.sync().await;
    stanzas.extend(c.collect(Duration::from_millis(50)).await);
    Announced { queried: true, stanzas }
}

/// Announces honest caps with `features`.
pub async fn announce(c: &mut Client, features: &[&str]) -> Announced {
    announce_ver(c, &caps_ver(features), features).await
}

/// Logs `name` in on `resource` without initial presence, then announces caps with `features`.
pub async fn online(server: &TestServer, name: &str, resource: &str, features: &[&str]) -> (Client, Announced) {
    let mut c = server.login_with(name, Some(resource), false).await;
    let announced = announce(&mut c, features).await;
    (c, announced)
}

/// `<x type='submit'/>` with FORM_TYPE and `fields`.
pub fn form(form_type: &str, fields: &[(&str, &str)]) -> String {
    let mut xml = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{form_type}</value></field>"
    );
    for (var, value) in fields {
        xml.push_str(&format!("<field var='{var}'><value>{value}</value></field>"));
    }
    xml.push_str("</x>");
    xml
}

/// Publishes `payload` to the client's own `node` (item `id`, optional publish-options); returns the reply.
pub async fn publish(c: &mut Client, node: &str, id: &str, payload: &str, options: &[(&str, &str)]) -> Element {
    let iq_id = c.id();
    let opts = if options.is_empty() {
        String::new()
    } else {
        format!(
            "<publish-options>{}</publish-options>",
            form("http://jabber.org/protocol/pubsub#publish-options", options)
        )
    };
    let id_attr = if id.is_empty() { String::new() } else { format!(" id='{id}'") };
    c.iq(&format!(
        "<iq type='set' id='{iq_id}'><pubsub xmlns='{PUBSUB}'><publish node='{node}'><item{id_attr}>{payload}</item></publish>{opts}</pubsub></iq>"
    ))
    .await
}

/// `<items node/>` (with `inner` attributes/children) of `to`'s PEP service.
pub async fn items(c: &mut Client, to: &str, node: &str, attrs: &str, inner: &str, rsm: &str) -> Element {
    let id = c.id();
    c.iq(&format!(
        "<iq type='get' id='{id}' to='{to}'><pubsub xmlns='{PUBSUB}'><items node='{node}'{attrs}>{inner}</items>{rsm}</pubsub></iq>"
    ))
    .await
}

/// The item ids of an items result.
pub fn item_ids(reply: &Element) -> Vec<String> {
    reply
        .child("pubsub", PUBSUB)
        .and_then(|p| p.child("items", PUBSUB))
        .map(|i| i.children().filter_map(|c| c.attr("id").map(str::to_owned)).collect())
        .unwrap_or_default()
}

/// A PEP event from `from` about `node`: its `<items/>` (or `<delete/>`/`<purge/>`) child.
pub fn event<'a>(el: &'a Element, from: &str, node: &str) -> Option<&'a Element> {
    if !el.is("message", ns::CLIENT) || el.attr("from") != Some(from) {
        return None;
    }
    el.child("event", EVENT)?.children().find(|c| c.attr("node") == Some(node))
}

/// The ids of published items in an event (not retractions).
pub fn event_item_ids(el: &Element) -> Vec<String> {
    el.children().filter(|c| c.name() == "item").filter_map(|c| c.attr("id").map(str::to_owned)).collect()
}

/// The `pubsub#errors` condition of an error reply.
pub fn app_error(reply: &Element) -> Option<String> {
    reply.child("error", ns::CLIENT)?.children().find(|c| c.ns() == ERRORS).map(|c| c.name().to_owned())
}
