//! XEP-0313 Message Archive Management with XEP-0059 paging, XEP-0359 stanza ids, XEP-0441 preferences and
//! XEP-0431 full-text search; retractions and corrections are archived; the archive survives a restart.

mod common;

use std::time::Duration;

use common::{bare, error_condition, has_body, ns, Client, Element, TestServer, MAM};

const RSM: &str = "http://jabber.org/protocol/rsm";
const FORWARD: &str = "urn:xmpp:forward:0";
const SID: &str = "urn:xmpp:sid:0";

/// The archived message inside a `<result/>`.
fn archived(result: &Element) -> &Element {
    result
        .child("forwarded", FORWARD)
        .and_then(|f| f.child("message", ns::CLIENT))
        .unwrap_or_else(|| panic!("no forwarded message: {}", result.to_xml()))
}

fn body(result: &Element) -> String {
    archived(result).child("body", ns::CLIENT).map(Element::text).unwrap_or_default()
}

fn bodies(results: &[Element]) -> Vec<String> {
    results.iter().map(body).collect()
}

fn stamp(result: &Element) -> String {
    let forwarded = result.child("forwarded", FORWARD).expect("forwarded");
    forwarded.child("delay", ns::DELAY).and_then(|d| d.attr("stamp")).expect("delay stamp").to_owned()
}

/// The `<fin/>` of a successful query.
fn fin(reply: &Element) -> &Element {
    assert_eq!(reply.attr("type"), Some("result"), "query failed: {}", reply.to_xml());
    reply.child("fin", MAM).unwrap_or_else(|| panic!("no <fin/>: {}", reply.to_xml()))
}

fn complete(reply: &Element) -> bool {
    matches!(fin(reply).attr("complete"), Some("true" | "1"))
}

fn rsm_text(reply: &Element, name: &str) -> String {
    fin(reply).child("set", RSM).and_then(|s| s.child(name, RSM)).map(Element::text).unwrap_or_default()
}

/// A submitted MAM form with `fields` (var, values).
fn form(fields: &[(&str, &[&str])]) -> String {
    let mut x = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>{MAM}</value></field>"
    );
    for (var, values) in fields {
        x.push_str(&format!("<field var='{var}'>"));
        for v in *values {
            x.push_str(&format!("<value>{v}</value>"));
        }
        x.push_str("</field>");
    }
    x + "</x>"
}

/// An RSM `<set/>` with `max` and one of `<after/>` / `<before/>` (empty text: the last page).
fn set(max: usize, anchor: &str) -> String {
    format!("<set xmlns='{RSM}'><max>{max}</max>{anchor}</set>")
}

/// `from` sends `count` chat messages "{prefix}NNN" to `to` and waits until they are all handled.
async fn send_many(from: &mut Client, to: &str, prefix: &str, count: usize) -> Vec<String> {
    let mut sent = Vec::with_capacity(count);
    for i in 0..count {
        let b = format!("{prefix}{i:03}");
        from.say(to, &b).await;
        sent.push(b);
    }
    from.sync().await;
    sent
}

#[tokio::test]
async fn paging_forward_and_backward_over_150_messages() {
    let server = TestServer::start().await;
    server.create_account("bob").await;
    let mut alice = server.login("alice").await;
    let sent = send_many(&mut alice, &bare("bob"), "m", 150).await;
    let mut bob = server.login_with("bob", Some("pager"), false).await;

    // Forward: three pages via <after/>, complete only on the last.
    let mut forward = Vec::new();
    let mut anchor = String::new();
    for page in 0..3 {
        let (results, reply) = bob.mam(&set(50, &anchor)).await;
        assert_eq!(results.len(), 50, "page {page}");
        assert_eq!(complete(&reply), page == 2, "complete on page {page}: {}", reply.to_xml());
        assert_eq!(rsm_text(&reply, "count"), "150", "{}", reply.to_xml());
        assert_eq!(rsm_text(&reply, "first"), results[0].attr("id").unwrap_or_default());
        assert_eq!(rsm_text(&reply, "last"), results[49].attr("id").unwrap_or_default());
        anchor = format!("<after>{}</after>", rsm_text(&reply, "last"));
        forward.extend(bodies(&results));
    }
    assert_eq!(forward, sent, "forward paging: every message once, in order");

    // Backward: the last page first, each page chronological inside.
    let mut pages = Vec::new();
    let mut anchor = "<before/>".to_owned();
    for page in 0..3 {
        let (results, reply) = bob.mam(&set(50, &anchor)).await;
        assert_eq!(complete(&reply), page == 2, "complete on backward page {page}: {}", reply.to_xml());
        anchor = format!("<before>{}</before>", rsm_text(&reply, "first"));
        pages.push(bodies(&results));
    }
    assert_eq!(pages[0], sent[100..], "the last page comes first, in chronological order");
    assert_eq!(pages[1], sent[50..100]);
    assert_eq!(pages[2], sent[..50]);
}

#[tokio::test]
async fn with_start_end_ids_flip_page_and_count() {
    let server = TestServer::start().await;
    let mut bob = server.login("bob").await;
    let mut alice = server.login("alice").await;
    let mut carol = server.login("carol").await;
    send_many(&mut alice, &bob.jid, "a", 3).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    send_many(&mut carol, &bob.jid, "c", 3).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    send_many(&mut alice, &bob.jid, "b", 3).await;
    bob.sync().await;

    let (all, reply) = bob.mam("").await;
    assert_eq!(bodies(&all), ["a000", "a001", "a002", "c000", "c001", "c002", "b000", "b001", "b002"]);
    assert!(complete(&reply));

    let (results, _) = bob.mam(&form(&[("with", &["carol@localhost"])])).await;
    assert_eq!(bodies(&results), ["c000", "c001", "c002"]);

    let (start, end) = (stamp(&all[3]), stamp(&all[5]));
    let (results, _) = bob.mam(&form(&[("start", &[start.as_str()]), ("end", &[end.as_str()])])).await;
    assert_eq!(bodies(&results), ["c000", "c001", "c002"], "between {start} and {end}");
    let (results, _) = bob.mam(&form(&[("start", &[stamp(&all[6]).as_str()])])).await;
    assert_eq!(bodies(&results), ["b000", "b001", "b002"]);

    let ids = [all[1].attr("id").expect("id"), all[7].attr("id").expect("id")];
    let (results, _) = bob.mam(&form(&[("ids", &ids)])).await;
    assert_eq!(bodies(&results), ["a001", "b001"]);

    let (results, reply) = bob.mam(&format!("{}<flip-page/>", set(3, ""))).await;
    assert_eq!(bodies(&results), ["a002", "a001", "a000"], "a flipped page is newest first");
    assert_eq!(rsm_text(&reply, "count"), "9");

    // Count only: max 0 returns no items and the total.
    let (results, reply) = bob.mam(&set(0, "")).await;
    assert!(results.is_empty());
    assert_eq!(rsm_text(&reply, "count"), "9", "{}", reply.to_xml());

    let (results, reply) = bob.mam(&set(10, "<after>no-such-id</after>")).await;
    assert!(results.is_empty());
    assert_eq!(error_condition(&reply).as_deref(), Some("item-not-found"), "{}", reply.to_xml());
}

#[tokio::test]
async fn the_delivered_stanza_id_is_the_archive_id_and_forged_ones_are_stripped() {
    let server = TestServer::start().await;
    let mut bob = server.login("bob").await;
    let mut alice = server.login("alice").await;
    let forged = format!("<stanza-id xmlns='{SID}' by='bob@localhost' id='forged'/>");
    alice.send(format!("<message type='chat' to='{}'><body>hello</body>{forged}</message>", bob.jid)).await;
    let msg = bob.expect(|el| has_body(el, "hello")).await;
    let ids: Vec<&Element> = msg.children().filter(|c| c.is("stanza-id", SID)).collect();
    assert_eq!(ids.len(), 1, "exactly one stanza-id: {}", msg.to_xml());
    assert_eq!(ids[0].attr("by"), Some("bob@localhost"), "{}", msg.to_xml());
    let id = ids[0].attr("id").expect("id");
    assert_ne!(id, "forged", "{}", msg.to_xml());

    alice.sync().await; // the sender's session has waited for the archive commit
    let (results, _) = bob.mam("").await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].attr("id"), Some(id), "archive id equals the delivered stanza-id");
    // The sender's archive has its own copy.
    let (results, _) = alice.mam("").await;
    assert_eq!(bodies(&results), ["hello"]);
}

#[tokio::test]
async fn preferences_default_never_keeps_messages_out() {
    let server = TestServer::start().await;
    let mut bob = server.login("bob").await;
    let mut alice = server.login("alice").await;
    let id = bob.id();
    let reply = bob.iq(&format!("<iq type='set' id='{id}'><prefs xmlns='{MAM}' default='never'/></iq>")).await;
    assert_eq!(reply.child("prefs", MAM).and_then(|p| p.attr("default")), Some("never"), "{}", reply.to_xml());
    alice.say(&bob.jid, "not kept").await;
    let msg = bob.expect(|el| has_body(el, "not kept")).await;
    assert!(msg.child("stanza-id", SID).is_none(), "not archived, so no stanza-id: {}", msg.to_xml());
    alice.sync().await;
    let (results, _) = bob.mam("").await;
    assert!(results.is_empty(), "{:?}", bodies(&results));

    // always for alice overrides the default.
    let id = bob.id();
    let prefs = format!("<prefs xmlns='{MAM}' default='never'><always><jid>alice@localhost</jid></always></prefs>");
    let reply = bob.iq(&format!("<iq type='set' id='{id}'>{prefs}</iq>")).await;
    assert!(reply.to_xml().contains("alice@localhost"), "prefs not taken: {}", reply.to_xml());
    alice.say(&bob.jid, "kept").await;
    bob.expect(|el| has_body(el, "kept")).await;
    alice.sync().await; // the sender's session has waited for the archive commit
    let (results, _) = bob.mam("").await;
    assert_eq!(bodies(&results), ["kept"]);
}

#[tokio::test]
async fn retractions_and_corrections_are_archived_and_routed() {
    let server = TestServer::start().await;
    let mut bob = server.login("bob").await;
    let mut alice = server.login("alice").await;
    alice.send(format!("<message type='chat' id='orig' to='{}'><body>teh</body></message>", bob.jid)).await;
    let correction = "<replace xmlns='urn:xmpp:message-correct:0' id='orig'/>";
    alice.send(format!("<message type='chat' id='fix' to='{}'><body>the</body>{correction}</message>", bob.jid)).await;
    let retraction = "<retract xmlns='urn:xmpp:message-retract:1' id='orig'/>";
    alice.send(format!("<message type='chat' id='gone' to='{}'>{retraction}</message>", bob.jid)).await;

    bob.expect(|el| has_body(el, "teh")).await;
    bob.expect(|el| el.attr("id") == Some("fix") && el.child("replace", "urn:xmpp:message-correct:0").is_some()).await;
    bob.expect(|el| el.attr("id") == Some("gone") && el.child("retract", "urn:xmpp:message-retract:1").is_some()).await;
    alice.sync().await; // the sender's session has waited for the archive commits
    let (results, _) = bob.mam("").await;
    let ids: Vec<_> = results.iter().map(|r| archived(r).attr("id").unwrap_or_default().to_owned()).collect();
    assert_eq!(ids, ["orig", "fix", "gone"]);
    assert!(archived(&results[2]).child("retract", "urn:xmpp:message-retract:1").is_some());
}

#[tokio::test]
async fn bodiless_messages_are_archived_only_with_a_store_hint() {
    let server = TestServer::start().await;
    let mut bob = server.login("bob").await;
    let mut alice = server.login("alice").await;
    // A XEP-0353 call proposal carries a store hint, so clients can show missed calls from the archive; a chat
    // state notification carries nothing worth keeping.
    let propose = "<propose xmlns='urn:xmpp:jingle-message:0' id='call1'>\
                   <description xmlns='urn:xmpp:jingle:apps:rtp:1' media='audio'/></propose>";
    alice.send(format!("<message id='p1' to='{}'>{propose}<store xmlns='urn:xmpp:hints'/></message>", bob.jid)).await;
    let typing = "<composing xmlns='http://jabber.org/protocol/chatstates'/>";
    alice.send(format!("<message type='chat' id='t1' to='{}'>{typing}</message>", bob.jid)).await;
    bob.expect(|el| el.attr("id") == Some("p1")).await;
    bob.expect(|el| el.attr("id") == Some("t1")).await;
    alice.sync().await;
    let (results, _) = bob.mam("").await;
    let ids: Vec<_> = results.iter().map(|r| archived(r).attr("id").unwrap_or_default().to_owned()).collect();
    assert_eq!(ids, ["p1"]);
    assert!(archived(&results[0]).child("propose", "urn:xmpp:jingle-message:0").is_some());
}

#[tokio::test]
async fn the_archive_survives_a_restart() {
    let server = TestServer::start().await;
    server.create_account("bob").await;
    let mut alice = server.login("alice").await;
    let sent = send_many(&mut alice, &bare("bob"), "r", 5).await;
    drop(alice);
    let server = server.restart().await;
    let mut bob = server.login_with("bob", Some("after"), false).await;
    let (results, reply) = bob.mam("").await;
    assert_eq!(bodies(&results), sent);
    assert!(complete(&reply));
}

#[tokio::test]
async fn full_text_search() {
    let server = TestServer::start().await;
    let mut bob = server.login("bob").await;
    let mut alice = server.login("alice").await;
    for text in ["the quick brown fox", "a lazy dog", "foxes are quick"] {
        alice.say(&bob.jid, text).await;
    }
    alice.sync().await;
    let id = bob.id();
    let reply = bob.iq(&format!("<iq type='get' id='{id}'><query xmlns='{MAM}'/></iq>")).await;
    let advertised = reply.to_xml();
    assert!(advertised.contains("{urn:xmpp:fulltext:0}fulltext"), "search field not offered: {advertised}");

    let (results, _) = bob.mam(&form(&[("{urn:xmpp:fulltext:0}fulltext", &["quick"])])).await;
    assert_eq!(bodies(&results), ["the quick brown fox", "foxes are quick"]);
    let (results, _) = bob.mam(&form(&[("{urn:xmpp:fulltext:0}fulltext", &["dog"])])).await;
    assert_eq!(bodies(&results), ["a lazy dog"]);
    let (results, _) = bob.mam(&form(&[("{urn:xmpp:fulltext:0}fulltext", &["cat"])])).await;
    assert!(results.is_empty());
}
