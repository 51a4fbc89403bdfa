//! A room's archive: every groupchat message carries the room's XEP-0359 stanza-id, XEP-0313 queries on the room
//! JID page through it, and XEP-0425 moderation retracts a message for everyone and leaves a tombstone.

mod common;

use common::muc::{field, occupant, room};
use common::{error_condition, has_body, ns, Client, Element, TestServer, MAM};

const SID: &str = "urn:xmpp:sid:0";
const RETRACT: &str = "urn:xmpp:message-retract:1";
const MODERATE: &str = "urn:xmpp:message-moderate:1";

/// alice owns the persistent (so archived) room `log`; bob is in it.
async fn archived_room(server: &TestServer) -> (Client, Client) {
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.join("log", "Alice").await;
    let reply = alice.configure("log", &field("muc#roomconfig_persistentroom", "1")).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    bob.join("log", "Bob").await;
    (alice, bob)
}

fn stanza_id(el: &Element) -> Option<String> {
    el.children()
        .find(|c| c.is("stanza-id", SID) && c.attr("by") == Some(room("log").as_str()))
        .and_then(|c| c.attr("id").map(str::to_owned))
}

/// A MAM query on the room; the forwarded messages and the `<fin/>`.
async fn room_mam(client: &mut Client, inner: &str) -> (Vec<Element>, Element) {
    let id = client.id();
    let to = room("log");
    let reply = client
        .iq(&format!("<iq type='set' id='{id}' to='{to}'><query xmlns='{MAM}' queryid='{id}'>{inner}</query></iq>"))
        .await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let all = client.collect(std::time::Duration::from_millis(100)).await;
    let results = all
        .iter()
        .filter_map(|m| m.child("result", MAM).filter(|r| r.attr("queryid") == Some(&id)))
        .map(|r| {
            r.child("forwarded", "urn:xmpp:forward:0")
                .and_then(|f| f.child("message", ns::CLIENT))
                .expect("forwarded")
                .clone()
        })
        .collect();
    (results, reply.child("fin", MAM).expect("fin").clone())
}

fn body(m: &Element) -> Option<String> {
    m.child("body", ns::CLIENT).map(Element::text)
}

#[tokio::test]
async fn room_messages_carry_the_rooms_stanza_id_and_are_archived_in_order() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = archived_room(&server).await;
    // A stanza-id claimed by the sender in the room's name is dropped.
    let forged = format!("<stanza-id xmlns='{SID}' id='forged' by='{}'/>", room("log"));
    bob.send(format!("<message type='groupchat' to='{}'><body>m0</body>{forged}</message>", room("log"))).await;
    let seen = alice.expect(|el| has_body(el, "m0")).await;
    let own = bob.expect(|el| has_body(el, "m0")).await;
    let id = stanza_id(&seen).expect("a stanza-id by the room");
    assert_ne!(id, "forged");
    assert_eq!(stanza_id(&own), Some(id.clone()), "everyone sees the same id");
    for i in 1..5 {
        bob.send(format!("<message type='groupchat' to='{}'><body>m{i}</body></message>", room("log"))).await;
    }
    bob.expect(|el| has_body(el, "m4")).await;
    assert_eq!(server.store().muc_archive_count("log").await.unwrap(), 5);

    let (all, fin) = room_mam(&mut alice, "").await;
    assert_eq!(all.iter().filter_map(body).collect::<Vec<_>>(), ["m0", "m1", "m2", "m3", "m4"]);
    assert_eq!(all[0].attr("from"), Some(occupant("log", "Bob").as_str()));
    assert_eq!(fin.attr("complete"), Some("true"));

    // Paging: two at a time from the end (RSM before), then after an id.
    let (last, _) =
        room_mam(&mut alice, "<set xmlns='http://jabber.org/protocol/rsm'><max>2</max><before/></set>").await;
    assert_eq!(last.iter().filter_map(body).collect::<Vec<_>>(), ["m3", "m4"]);
    let (after, _) = room_mam(
        &mut alice,
        &format!("<set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>{id}</after></set>"),
    )
    .await;
    assert_eq!(after.iter().filter_map(body).collect::<Vec<_>>(), ["m1", "m2"]);
    // By occupant.
    alice.send(format!("<message type='groupchat' to='{}'><body>from alice</body></message>", room("log"))).await;
    alice.expect(|el| has_body(el, "from alice")).await;
    let with = format!(
        "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>{MAM}</value></field><field var='with'><value>{}</value></field></x>",
        occupant("log", "Alice")
    );
    let (mine, _) = room_mam(&mut bob, &with).await;
    assert_eq!(mine.iter().filter_map(body).collect::<Vec<_>>(), ["from alice"]);
}

#[tokio::test]
async fn a_moderator_retracts_a_message_and_the_archive_keeps_a_tombstone() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = archived_room(&server).await;
    bob.send(format!("<message type='groupchat' to='{}'><body>rude words</body></message>", room("log"))).await;
    let m = alice.expect(|el| has_body(el, "rude words")).await;
    let id = stanza_id(&m).expect("stanza-id");
    bob.expect(|el| has_body(el, "rude words")).await;

    // Not a moderator: refused.
    let iq = |n: &str| {
        format!(
            "<iq type='set' id='{n}' to='{}'><moderate xmlns='{MODERATE}' id='{id}'><retract xmlns='{RETRACT}'/><reason>Rude</reason></moderate></iq>",
            room("log")
        )
    };
    let denied = bob.iq(&iq("m1")).await;
    assert_eq!(error_condition(&denied).as_deref(), Some("forbidden"), "{}", denied.to_xml());

    let reply = alice.iq(&iq("m2")).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    for c in [&mut bob, &mut alice] {
        let r = c.expect(|el| el.child("retract", RETRACT).is_some()).await;
        assert_eq!(r.attr("from"), Some(room("log").as_str()), "{}", r.to_xml());
        let retract = r.child("retract", RETRACT).unwrap();
        assert_eq!(retract.attr("id"), Some(id.as_str()), "{}", r.to_xml());
        let by = retract.child("moderated", MODERATE).and_then(|m| m.attr("by"));
        assert_eq!(by, Some(occupant("log", "Alice").as_str()), "{}", r.to_xml());
        assert_eq!(retract.child("reason", RETRACT).map(Element::text).as_deref(), Some("Rude"));
    }

    let (all, _) = room_mam(&mut bob, "").await;
    let tomb = all.iter().find(|m| stanza_id(m).as_deref() == Some(id.as_str())).expect("the tombstone keeps its id");
    assert!(tomb.child("body", ns::CLIENT).is_none(), "the body is gone: {}", tomb.to_xml());
    let retracted = tomb.child("retracted", RETRACT).expect("retracted marker");
    assert!(retracted.child("moderated", MODERATE).is_some(), "{}", tomb.to_xml());
    assert!(all.iter().any(|m| m.child("retract", RETRACT).is_some()), "the retraction itself is archived");
    assert!(!all.iter().any(|m| m.to_xml().contains("rude words")));

    // A newcomer's history shows the tombstone, not the words.
    let mut carol = server.login("carol").await;
    let got = carol.join("log", "Carol").await;
    assert!(!got.iter().any(|m| m.to_xml().contains("rude words")), "{got:?}");

    // Unknown ids are item-not-found; the older fasten form works as well.
    let unknown = alice.iq(&iq("m3").replace(&id, "nope")).await;
    assert_eq!(error_condition(&unknown).as_deref(), Some("item-not-found"), "{}", unknown.to_xml());
    bob.send(format!("<message type='groupchat' to='{}'><body>again</body></message>", room("log"))).await;
    let m = alice.expect(|el| has_body(el, "again")).await;
    let id2 = stanza_id(&m).unwrap();
    let v0 = format!(
        "<iq type='set' id='m4' to='{}'><apply-to xmlns='urn:xmpp:fasten:0' id='{id2}'><moderate xmlns='urn:xmpp:message-moderate:0'><retract xmlns='urn:xmpp:message-retract:0'/></moderate></apply-to></iq>",
        room("log")
    );
    assert_eq!(alice.iq(&v0).await.attr("type"), Some("result"));
    bob.expect(|el| el.child("apply-to", "urn:xmpp:fasten:0").is_some_and(|a| a.attr("id") == Some(id2.as_str())))
        .await;
}

#[tokio::test]
async fn the_archive_is_closed_to_outsiders_of_a_members_only_room() {
    let server = TestServer::start().await;
    let (mut alice, _bob) = archived_room(&server).await;
    alice.configure("log", &field("muc#roomconfig_membersonly", "1")).await;
    let mut mallory = server.login("mallory").await;
    let id = mallory.id();
    let reply = mallory.iq(&format!("<iq type='set' id='{id}' to='{}'><query xmlns='{MAM}'/></iq>", room("log"))).await;
    assert_eq!(error_condition(&reply).as_deref(), Some("forbidden"), "{}", reply.to_xml());
}
