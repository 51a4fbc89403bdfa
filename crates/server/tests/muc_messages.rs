//! XEP-0045 Multi-User Chat, first slice: groupchat, subject, private messages and history for newcomers.

mod common;

use common::muc::{is_groupchat, is_subject, occupant, room, SERVICE};
use common::{error_condition, has_body, ns, Client, Element, TestServer};

async fn groupchat(client: &mut Client, room_name: &str, body: &str) {
    client.send(format!("<message type='groupchat' to='{}'><body>{body}</body></message>", room(room_name))).await;
}

/// The `<delay/>` of a history message.
fn delay(stanza: &Element) -> Option<&Element> {
    stanza.child("delay", ns::DELAY)
}

fn bodies(stanzas: &[Element]) -> Vec<String> {
    stanzas
        .iter()
        .filter(|el| el.is("message", ns::CLIENT))
        .filter_map(|el| el.child("body", ns::CLIENT).map(Element::text))
        .collect()
}

/// The error reply to the stanza with `id`, with its condition and type.
async fn expect_error(client: &mut Client, id: &str) -> (Element, Option<String>, Option<String>) {
    let err = client.expect(|el| el.attr("id") == Some(id)).await;
    assert_eq!(err.attr("type"), Some("error"), "{}", err.to_xml());
    let kind = err.child("error", ns::CLIENT).and_then(|e| e.attr("type")).map(str::to_owned);
    let condition = error_condition(&err);
    (err, condition, kind)
}

/// alice (owner, "Alice") and bob ("Bob") in `lobby`, both past their join.
async fn two_in_lobby(server: &TestServer) -> (Client, Client) {
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.create("lobby", "Alice").await;
    bob.join("lobby", "Bob").await;
    alice.expect(|el| el.is("presence", ns::CLIENT) && el.attr("from") == Some(&occupant("lobby", "Bob"))).await;
    (alice, bob)
}

#[tokio::test]
async fn groupchat_reaches_every_occupant_including_the_sender() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = two_in_lobby(&server).await;
    let mut carol = server.login("carol").await;
    carol.join("lobby", "Carol").await;

    groupchat(&mut bob, "lobby", "hello all").await;
    for client in [&mut alice, &mut bob, &mut carol] {
        let m = client.expect(|el| is_groupchat(el, &occupant("lobby", "Bob"), "hello all")).await;
        assert_eq!(m.attr("to"), Some(client.jid.as_str()), "addressed to the real full JID: {}", m.to_xml());
        assert!(delay(&m).is_none(), "a live message has no delay: {}", m.to_xml());
    }
    groupchat(&mut alice, "lobby", "hi bob").await;
    bob.expect(|el| is_groupchat(el, &occupant("lobby", "Alice"), "hi bob")).await;

    // Order is kept for a burst.
    for i in 0..10 {
        groupchat(&mut carol, "lobby", &format!("n{i}")).await;
    }
    for i in 0..10 {
        let m =
            bob.expect(|el| el.is("message", ns::CLIENT) && el.attr("from") == Some(&occupant("lobby", "Carol"))).await;
        assert!(has_body(&m, &format!("n{i}")), "expected n{i}, got {}", m.to_xml());
    }
}

#[tokio::test]
async fn a_non_occupant_cannot_send_groupchat() {
    let server = TestServer::start().await;
    let (mut alice, _bob) = two_in_lobby(&server).await;
    let mut mallory = server.login("mallory").await;

    mallory.send(format!("<message type='groupchat' id='g1' to='{}'><body>spam</body></message>", room("lobby"))).await;
    let (err, condition, kind) = expect_error(&mut mallory, "g1").await;
    assert_eq!((condition.as_deref(), kind.as_deref()), (Some("not-acceptable"), Some("modify")), "{}", err.to_xml());
    assert_eq!(err.attr("from"), Some(room("lobby").as_str()), "{}", err.to_xml());
    alice.expect_no("mallory's message", |el| has_body(el, "spam")).await;
}

#[tokio::test]
async fn a_message_to_a_room_that_does_not_exist_is_item_not_found() {
    let server = TestServer::start().await;
    let mut mallory = server.login("mallory").await;
    // Leaving a room one is not in creates nothing.
    mallory.send(format!("<presence type='unavailable' to='{}'/>", occupant("ghost", "m"))).await;
    let id = mallory.id();
    let items =
        mallory.iq(&format!("<iq type='get' id='{id}' to='{SERVICE}'><query xmlns='{}'/></iq>", ns::DISCO_ITEMS)).await;
    assert!(!items.to_xml().contains("ghost@"), "no room made by an unavailable presence: {}", items.to_xml());

    let to = occupant("nowhere", "someone");
    mallory.send(format!("<message type='chat' id='p2' to='{to}'><body>anyone?</body></message>")).await;
    let (err, condition, _) = expect_error(&mut mallory, "p2").await;
    assert_eq!(condition.as_deref(), Some("item-not-found"), "{}", err.to_xml());

    mallory
        .send(format!("<message type='groupchat' id='g2' to='{}'><body>anyone?</body></message>", room("nowhere")))
        .await;
    let (err, condition, _) = expect_error(&mut mallory, "g2").await;
    assert_eq!(condition.as_deref(), Some("item-not-found"), "{}", err.to_xml());
}

#[tokio::test]
async fn a_subject_change_is_broadcast_and_given_to_later_joiners() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = two_in_lobby(&server).await;
    alice.send(format!("<message type='groupchat' to='{}'><subject>Plans</subject></message>", room("lobby"))).await;
    for client in [&mut alice, &mut bob] {
        let m = client.expect(is_subject).await;
        assert_eq!(m.attr("from"), Some(occupant("lobby", "Alice").as_str()), "{}", m.to_xml());
        assert_eq!(m.child("subject", ns::CLIENT).map(Element::text).as_deref(), Some("Plans"));
    }

    let mut carol = server.login("carol").await;
    let got = carol.join("lobby", "Carol").await;
    let subject = got.last().expect("a subject message ends the join");
    assert_eq!(
        subject.child("subject", ns::CLIENT).map(Element::text).as_deref(),
        Some("Plans"),
        "{}",
        subject.to_xml()
    );
}

#[tokio::test]
async fn private_messages_go_to_the_occupant_and_unknown_nicks_are_item_not_found() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = two_in_lobby(&server).await;

    let to = occupant("lobby", "Bob");
    alice.send(format!("<message type='chat' to='{to}'><body>psst</body></message>")).await;
    let m = bob.expect(|el| has_body(el, "psst")).await;
    assert_eq!(m.attr("from"), Some(occupant("lobby", "Alice").as_str()), "sender's occupant JID: {}", m.to_xml());
    assert_eq!(m.attr("to"), Some(bob.jid.as_str()), "{}", m.to_xml());
    assert_eq!(m.attr("type"), Some("chat"), "{}", m.to_xml());
    alice.expect_no("a copy of the private message", |el| has_body(el, "psst")).await;

    bob.send(format!("<message type='chat' to='{}'><body>back</body></message>", occupant("lobby", "Alice"))).await;
    let m = alice.expect(|el| has_body(el, "back")).await;
    assert_eq!(m.attr("from"), Some(to.as_str()), "{}", m.to_xml());

    let nobody = occupant("lobby", "Nobody");
    alice.send(format!("<message type='chat' id='p1' to='{nobody}'><body>hello?</body></message>")).await;
    let (err, condition, _) = expect_error(&mut alice, "p1").await;
    assert_eq!(condition.as_deref(), Some("item-not-found"), "{}", err.to_xml());
}

#[tokio::test]
async fn a_late_joiner_gets_the_last_twenty_messages_with_delay_then_the_subject() {
    let server = TestServer::start().await;
    let (mut alice, _bob) = two_in_lobby(&server).await;
    for i in 0..25 {
        groupchat(&mut alice, "lobby", &format!("m{i}")).await;
    }
    alice.expect(|el| has_body(el, "m24")).await;

    let mut carol = server.login("carol").await;
    let got = carol.join("lobby", "Carol").await;
    let expected: Vec<String> = (5..25).map(|i| format!("m{i}")).collect();
    assert_eq!(bodies(&got), expected, "the last 20 in order");
    let own_at =
        got.iter().position(|el| el.is("presence", ns::CLIENT) && el.attr("from") == Some(&occupant("lobby", "Carol")));
    let first_history = got.iter().position(|el| has_body(el, "m5"));
    assert!(own_at < first_history, "history after the self-presence");
    for m in got.iter().filter(|el| el.child("body", ns::CLIENT).is_some()) {
        assert_eq!(m.attr("type"), Some("groupchat"), "{}", m.to_xml());
        assert_eq!(m.attr("from"), Some(occupant("lobby", "Alice").as_str()), "{}", m.to_xml());
        let d = delay(m).unwrap_or_else(|| panic!("history without delay: {}", m.to_xml()));
        assert_eq!(d.attr("from"), Some(room("lobby").as_str()), "{}", m.to_xml());
        assert!(d.attr("stamp").is_some(), "{}", m.to_xml());
    }
    assert!(is_subject(got.last().expect("subject")), "subject last");
}

#[tokio::test]
async fn history_honours_maxstanzas() {
    let server = TestServer::start().await;
    let (mut alice, _bob) = two_in_lobby(&server).await;
    for i in 0..5 {
        groupchat(&mut alice, "lobby", &format!("m{i}")).await;
    }
    alice.expect(|el| has_body(el, "m4")).await;

    let mut carol = server.login("carol").await;
    let got = carol.join_with("lobby", "Carol", "<history maxstanzas='2'/>").await;
    assert_eq!(bodies(&got), ["m3", "m4"], "the last two");

    let mut dave = server.login("dave").await;
    let got = dave.join_with("lobby", "Dave", "<history maxstanzas='0'/>").await;
    assert!(bodies(&got).is_empty(), "no history asked for:\n{got:?}");
}

#[tokio::test]
async fn history_is_bounded_by_muc_history() {
    let server = TestServer::start_with(|c| c.muc.history = 3).await;
    let (mut alice, _bob) = two_in_lobby(&server).await;
    for i in 0..6 {
        groupchat(&mut alice, "lobby", &format!("m{i}")).await;
    }
    alice.expect(|el| has_body(el, "m5")).await;
    let mut carol = server.login("carol").await;
    let got = carol.join_with("lobby", "Carol", "<history maxstanzas='10'/>").await;
    assert_eq!(bodies(&got), ["m3", "m4", "m5"]);
}

#[tokio::test]
async fn history_honours_since_seconds_and_maxchars_zero() {
    let server = TestServer::start().await;
    let (mut alice, _bob) = two_in_lobby(&server).await;
    for i in 0..3 {
        groupchat(&mut alice, "lobby", &format!("m{i}")).await;
    }
    alice.expect(|el| has_body(el, "m2")).await;

    let mut carol = server.login("carol").await;
    let got = carol.join_with("lobby", "Carol", "<history seconds='3600'/>").await;
    assert_eq!(bodies(&got), ["m0", "m1", "m2"], "the last hour");
    let mut dave = server.login("dave").await;
    let got = dave.join_with("lobby", "Dave", "<history since='2100-01-01T00:00:00Z'/>").await;
    assert!(bodies(&got).is_empty(), "nothing since a future date:\n{got:?}");
    // What clients that read the room's archive instead send (XEP-0045 §7.2.15).
    let mut erin = server.login("erin").await;
    let got = erin.join_with("lobby", "Erin", "<history maxchars='0'/>").await;
    assert!(bodies(&got).is_empty(), "no history with maxchars='0':\n{got:?}");
}

/// The XEP-0421 occupant id of a stanza.
fn occupant_id(stanza: &Element) -> Option<String> {
    stanza.child("occupant-id", "urn:xmpp:occupant-id:0").and_then(|o| o.attr("id")).map(str::to_owned)
}

#[tokio::test]
async fn occupant_ids_are_stable_per_user_and_cannot_be_forged() {
    let server = TestServer::start().await;
    let (mut alice, mut bob) = two_in_lobby(&server).await;
    let forged = "<occupant-id xmlns='urn:xmpp:occupant-id:0' id='forged'/>";
    bob.send(format!("<message type='groupchat' to='{}'><body>one</body>{forged}</message>", room("lobby"))).await;
    let m = alice.expect(|el| has_body(el, "one")).await;
    let bob_id = occupant_id(&m).expect("an occupant id");
    assert_ne!(bob_id, "forged");
    assert_eq!(m.children().filter(|c| c.name() == "occupant-id").count(), 1, "{}", m.to_xml());

    // The same id under another nick (and in presence), another for someone else.
    bob.send(format!("<presence to='{}'/>", occupant("lobby", "Robert"))).await;
    let p =
        alice.expect(|el| el.is("presence", ns::CLIENT) && el.attr("from") == Some(&occupant("lobby", "Robert"))).await;
    assert_eq!(occupant_id(&p).as_deref(), Some(bob_id.as_str()), "{}", p.to_xml());
    alice.send(format!("<message type='groupchat' to='{}'><body>two</body></message>", room("lobby"))).await;
    let m = bob.expect(|el| has_body(el, "two")).await;
    assert!(occupant_id(&m).is_some_and(|id| id != bob_id), "{}", m.to_xml());
}
