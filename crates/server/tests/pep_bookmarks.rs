//! XEP-0402 bookmarks kept in sync with XEP-0048 bookmarks through XEP-0049 private storage and the legacy PEP
//! node (XEP-0411), and XEP-0049 private XML storage for other namespaces.

mod common;
mod pep_support;

use common::{bare, error_condition, Client, TestServer};
use pep_support::*;

const BOOKMARKS: &str = "urn:xmpp:bookmarks:1";
const LEGACY: &str = "storage:bookmarks";
const PRIVATE: &str = "jabber:iq:private";

async fn private_get(c: &mut Client, inner: &str) -> common::Element {
    let id = c.id();
    c.iq(&format!("<iq type='get' id='{id}'><query xmlns='{PRIVATE}'>{inner}</query></iq>")).await
}

async fn private_set(c: &mut Client, inner: &str) -> common::Element {
    let id = c.id();
    c.iq(&format!("<iq type='set' id='{id}'><query xmlns='{PRIVATE}'>{inner}</query></iq>")).await
}

fn conferences(reply: &common::Element) -> Vec<(String, Option<String>, Option<String>)> {
    let xml = reply.to_xml();
    let storage = reply
        .child("query", PRIVATE)
        .and_then(|q| q.child("storage", LEGACY))
        .unwrap_or_else(|| panic!("no storage: {xml}"));
    storage
        .children()
        .map(|c| {
            (
                c.attr("jid").unwrap_or_default().to_owned(),
                c.attr("autojoin").map(str::to_owned),
                c.child("nick", LEGACY).map(|n| n.text()),
            )
        })
        .collect()
}

#[tokio::test]
async fn legacy_private_bookmarks_become_pep_bookmarks_and_back() {
    let server = TestServer::start().await;
    let (mut alice, _) = online(&server, "alice", "phone", &[&format!("{BOOKMARKS}+notify")]).await;
    let legacy = format!(
        "<storage xmlns='{LEGACY}'>\
         <conference jid='room1@conference.localhost' name='One' autojoin='true'><nick>al</nick></conference>\
         <conference jid='room2@conference.localhost' autojoin='0'/></storage>"
    );
    let reply = private_set(&mut alice, &legacy).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    // XEP-0402 items, one per room, and notifications to the owner's resources that want them.
    let a = bare("alice");
    alice
        .expect(|el| {
            event(el, &a, BOOKMARKS).is_some_and(|i| event_item_ids(i).iter().any(|id| id.starts_with("room1")))
        })
        .await;
    let pep = items(&mut alice, &a, BOOKMARKS, "", "", "").await;
    assert_eq!(item_ids(&pep), ["room1@conference.localhost", "room2@conference.localhost"], "{}", pep.to_xml());
    let xml = pep.to_xml();
    assert!(xml.contains("name='One'") && xml.contains("autojoin='true'") && xml.contains("<nick>al</nick>"), "{xml}");
    // The node is private (whitelist) and keeps every bookmark.
    let id = alice.id();
    let config = alice
        .iq(&format!("<iq type='get' id='{id}'><pubsub xmlns='{OWNER}'><configure node='{BOOKMARKS}'/></pubsub></iq>"))
        .await;
    assert!(config.to_xml().contains("<value>whitelist</value>"), "{}", config.to_xml());

    // A XEP-0402 client adds a room: the legacy view shows it.
    let conf = format!("<conference xmlns='{BOOKMARKS}' autojoin='true'><nick>A</nick></conference>");
    let options = [
        ("pubsub#persist_items", "true"),
        ("pubsub#access_model", "whitelist"),
        ("pubsub#max_items", "max"),
        ("pubsub#send_last_published_item", "never"),
    ];
    let reply = publish(&mut alice, BOOKMARKS, "room3@conference.localhost", &conf, &options).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let got = private_get(&mut alice, &format!("<storage xmlns='{LEGACY}'/>")).await;
    assert_eq!(
        conferences(&got),
        [
            ("room1@conference.localhost".into(), Some("true".into()), Some("al".into())),
            ("room2@conference.localhost".into(), None, None),
            ("room3@conference.localhost".into(), Some("true".into()), Some("A".into())),
        ]
    );

    // Setting legacy bookmarks again replaces the set: room2 and room3 are retracted.
    let fewer =
        format!("<storage xmlns='{LEGACY}'><conference jid='room1@conference.localhost' autojoin='1'/></storage>");
    private_set(&mut alice, &fewer).await;
    assert_eq!(item_ids(&items(&mut alice, &a, BOOKMARKS, "", "", "").await), ["room1@conference.localhost"]);

    // The legacy PEP node reads and writes the same bookmarks.
    let legacy_pep = items(&mut alice, &a, LEGACY, "", "", "").await;
    assert_eq!(item_ids(&legacy_pep), ["current"]);
    assert!(legacy_pep.to_xml().contains("room1@conference.localhost"), "{}", legacy_pep.to_xml());
    let via_pep = format!("<storage xmlns='{LEGACY}'><conference jid='room9@conference.localhost'/></storage>");
    let reply = publish(&mut alice, LEGACY, "current", &via_pep, &[]).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    assert_eq!(item_ids(&items(&mut alice, &a, BOOKMARKS, "", "", "").await), ["room9@conference.localhost"]);

    // Bookmarks are not readable by contacts.
    server.befriend("alice", "bob").await;
    let mut bob = server.login("bob").await;
    let denied = items(&mut bob, &a, BOOKMARKS, "", "", "").await;
    assert_eq!(error_condition(&denied).as_deref(), Some("not-allowed"), "{}", denied.to_xml());
}

#[tokio::test]
async fn private_xml_storage_keeps_other_namespaces_per_account() {
    let server = TestServer::start_with(|c| c.pubsub.max_private_bytes = 200).await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    // Nothing stored: the empty element comes back.
    let empty = private_get(&mut alice, "<prefs xmlns='urn:test:prefs'/>").await;
    assert!(empty.to_xml().contains("<prefs xmlns='urn:test:prefs'/>"), "{}", empty.to_xml());
    let reply = private_set(&mut alice, "<prefs xmlns='urn:test:prefs'><color>blue</color></prefs>").await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let got = private_get(&mut alice, "<prefs xmlns='urn:test:prefs'/>").await;
    assert!(got.to_xml().contains("<color>blue</color>"), "{}", got.to_xml());
    let others = private_get(&mut bob, "<prefs xmlns='urn:test:prefs'/>").await;
    assert!(!others.to_xml().contains("blue"), "per account: {}", others.to_xml());

    // Reserved namespaces, other accounts and the size limit are refused.
    let reserved = private_get(&mut alice, "<query xmlns='jabber:iq:roster'/>").await;
    assert_eq!(error_condition(&reserved).as_deref(), Some("not-acceptable"), "{}", reserved.to_xml());
    let id = bob.id();
    let foreign = bob
        .iq(&format!(
            "<iq type='get' id='{id}' to='{}'><query xmlns='{PRIVATE}'><prefs xmlns='urn:test:prefs'/></query></iq>",
            bare("alice")
        ))
        .await;
    assert_eq!(error_condition(&foreign).as_deref(), Some("service-unavailable"), "{}", foreign.to_xml());
    let big = private_set(&mut alice, &format!("<big xmlns='urn:test:big'>{}</big>", "x".repeat(300))).await;
    assert_eq!(error_condition(&big).as_deref(), Some("not-acceptable"), "{}", big.to_xml());
}
