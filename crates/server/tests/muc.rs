//! XEP-0045 Multi-User Chat, first slice: discovery, joining, occupant presence, nick changes and leaving.

mod common;

use common::muc::{has_status, is_presence, item, occupant, room, statuses, user_x, MUC, SERVICE};
use common::{error_condition, has_body, ns, Client, Element, TestServer, DOMAIN};

/// disco#items or disco#info (`what`) on `to`; the result IQ's `<query/>`.
async fn disco(client: &mut Client, to: &str, what: &str) -> Element {
    let id = client.id();
    let ns = if what == "items" { ns::DISCO_ITEMS } else { ns::DISCO_INFO };
    let reply = client.iq(&format!("<iq type='get' id='{id}' to='{to}'><query xmlns='{ns}'/></iq>")).await;
    assert_eq!(reply.attr("type"), Some("result"), "disco#{what} on {to}: {}", reply.to_xml());
    reply.child("query", ns).unwrap_or_else(|| panic!("no query in {}", reply.to_xml())).clone()
}

fn item_jids(query: &Element) -> Vec<String> {
    query
        .children()
        .filter(|i| i.is("item", ns::DISCO_ITEMS))
        .filter_map(|i| i.attr("jid").map(str::to_owned))
        .collect()
}

fn has_feature(query: &Element, var: &str) -> bool {
    query.children().any(|f| f.is("feature", ns::DISCO_INFO) && f.attr("var") == Some(var))
}

fn has_identity(query: &Element, category: &str, kind: &str) -> bool {
    query.children().any(|i| {
        i.is("identity", ns::DISCO_INFO) && i.attr("category") == Some(category) && i.attr("type") == Some(kind)
    })
}

fn describe(stanzas: &[Element]) -> String {
    stanzas.iter().map(Element::to_xml).collect::<Vec<_>>().join("\n")
}

/// The single presence from `from` among `stanzas`, and its position.
fn presence_in(stanzas: &[Element], from: &str) -> (usize, Element) {
    let found: Vec<_> = stanzas.iter().enumerate().filter(|(_, el)| is_presence(el, from, None)).collect();
    assert_eq!(found.len(), 1, "one available presence from {from} expected in:\n{}", describe(stanzas));
    (found[0].0, found[0].1.clone())
}

fn affiliation_role(presence: &Element) -> (Option<&str>, Option<&str>) {
    let item = item(presence).unwrap_or_else(|| panic!("no muc#user item in {}", presence.to_xml()));
    (item.attr("affiliation"), item.attr("role"))
}

#[tokio::test]
async fn the_service_and_its_rooms_are_discoverable() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;

    let items = disco(&mut alice, DOMAIN, "items").await;
    assert!(item_jids(&items).contains(&SERVICE.to_owned()), "service not listed: {}", items.to_xml());
    let info = disco(&mut alice, SERVICE, "info").await;
    assert!(has_identity(&info, "conference", "text"), "service identity: {}", info.to_xml());
    assert!(has_feature(&info, MUC), "service features: {}", info.to_xml());
    assert!(item_jids(&disco(&mut alice, SERVICE, "items").await).is_empty(), "no rooms yet");

    alice.create("lobby", "Alice").await;
    let rooms = disco(&mut alice, SERVICE, "items").await;
    let listed: Vec<_> = rooms.children().filter(|i| i.attr("jid") == Some(&room("lobby"))).collect();
    assert_eq!(listed.len(), 1, "room listed once: {}", rooms.to_xml());
    assert!(listed[0].attr("name").is_some_and(|n| !n.is_empty()), "room has a name: {}", rooms.to_xml());

    let info = disco(&mut alice, &room("lobby"), "info").await;
    assert!(has_identity(&info, "conference", "text"), "room identity: {}", info.to_xml());
    for feature in [MUC, "muc_temporary", "muc_open", "muc_unmoderated", "muc_semianonymous", "muc_unsecured"] {
        assert!(has_feature(&info, feature), "room feature {feature} missing: {}", info.to_xml());
    }
}

#[tokio::test]
async fn the_first_joiner_creates_the_room_and_owns_it() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let got = alice.join("lobby", "Alice").await;

    let (at, own) = presence_in(&got, &occupant("lobby", "Alice"));
    assert_eq!(affiliation_role(&own), (Some("owner"), Some("moderator")), "{}", own.to_xml());
    assert!(has_status(&own, "110") && has_status(&own, "201"), "self-presence of a new room: {}", own.to_xml());
    assert_eq!(at, got.len() - 2, "self-presence, then the subject:\n{}", describe(&got));
    let subject = got.last().expect("subject");
    assert_eq!(subject.attr("type"), Some("groupchat"));
    assert!(subject.child("subject", ns::CLIENT).is_some_and(|s| s.text().is_empty()), "{}", subject.to_xml());
}

#[tokio::test]
async fn a_joiner_sees_the_occupants_then_itself_and_they_see_it() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    let mut carol = server.login("carol").await;
    alice.create("lobby", "Alice").await;

    let got = bob.join("lobby", "Bob").await;
    let (alice_at, alice_seen) = presence_in(&got, &occupant("lobby", "Alice"));
    let (own_at, own) = presence_in(&got, &occupant("lobby", "Bob"));
    assert!(alice_at < own_at, "occupants come before the self-presence:\n{}", describe(&got));
    assert_eq!(affiliation_role(&alice_seen), (Some("owner"), Some("moderator")), "{}", alice_seen.to_xml());
    // Semi-anonymous: only moderators see real JIDs.
    assert_eq!(item(&alice_seen).and_then(|i| i.attr("jid")), None, "bob is no moderator: {}", alice_seen.to_xml());
    assert_eq!(affiliation_role(&own), (Some("none"), Some("participant")), "{}", own.to_xml());
    assert!(has_status(&own, "110"), "self-presence has 110: {}", own.to_xml());
    assert!(!has_status(&own, "201"), "the room existed: {}", own.to_xml());

    let seen = alice.expect(|el| is_presence(el, &occupant("lobby", "Bob"), None)).await;
    assert_eq!(item(&seen).and_then(|i| i.attr("jid")), Some(bob.jid.as_str()), "owner sees the real JID");
    assert!(!has_status(&seen, "110"), "110 is only for the occupant itself: {}", seen.to_xml());

    let got = carol.join("lobby", "Carol").await;
    let (a, _) = presence_in(&got, &occupant("lobby", "Alice"));
    let (b, bob_seen) = presence_in(&got, &occupant("lobby", "Bob"));
    let (c, _) = presence_in(&got, &occupant("lobby", "Carol"));
    assert!(a < c && b < c, "both occupants before the self-presence:\n{}", describe(&got));
    assert_eq!(item(&bob_seen).and_then(|i| i.attr("jid")), None, "{}", bob_seen.to_xml());
    alice.expect(|el| is_presence(el, &occupant("lobby", "Carol"), None)).await;
    bob.expect(|el| is_presence(el, &occupant("lobby", "Carol"), None)).await;
}

#[tokio::test]
async fn a_nick_in_use_is_a_conflict() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.create("lobby", "Alice").await;

    let to = occupant("lobby", "Alice");
    bob.send(format!("<presence to='{to}'><x xmlns='{MUC}'/></presence>")).await;
    let err = bob.expect(|el| el.is("presence", ns::CLIENT) && el.attr("type") == Some("error")).await;
    assert_eq!(err.attr("from"), Some(to.as_str()), "{}", err.to_xml());
    assert_eq!(error_condition(&err).as_deref(), Some("conflict"), "{}", err.to_xml());
    assert_eq!(err.child("error", ns::CLIENT).and_then(|e| e.attr("type")), Some("cancel"), "{}", err.to_xml());
    alice.expect_no("a second Alice", |el| el.is("presence", ns::CLIENT) && el.attr("from") == Some(&to)).await;

    // Bob is no occupant: his groupchat message is refused.
    bob.send(format!("<message type='groupchat' id='g1' to='{}'><body>hi</body></message>", room("lobby"))).await;
    let refused = bob.expect(|el| el.attr("id") == Some("g1")).await;
    assert_eq!(error_condition(&refused).as_deref(), Some("not-acceptable"), "{}", refused.to_xml());

    // XEP-0045 §7.2.9 (and RFC 6120 §8.3.1: the original payload comes back): the error echoes the muc `<x/>`,
    // which is how clients (slixmpp's join_muc_wait) tell a failed join from other presence errors.
    assert!(err.child("x", MUC).is_some(), "the conflict error carries <x xmlns='{MUC}'/>: {}", err.to_xml());
}

#[tokio::test]
async fn a_nick_change_is_an_unavailable_303_then_the_new_nick() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.create("lobby", "Alice").await;
    bob.join("lobby", "Bob").await;
    alice.discard_unmatched();

    bob.send(format!("<presence to='{}'/>", occupant("lobby", "Robert"))).await;
    for (client, own) in [(&mut bob, true), (&mut alice, false)] {
        let gone = client.expect(|el| is_presence(el, &occupant("lobby", "Bob"), Some("unavailable"))).await;
        assert!(has_status(&gone, "303"), "nick change status: {}", gone.to_xml());
        assert_eq!(item(&gone).and_then(|i| i.attr("nick")), Some("Robert"), "{}", gone.to_xml());
        assert_eq!(has_status(&gone, "110"), own, "110 only for the occupant itself: {}", gone.to_xml());
        let new = client.expect(|el| is_presence(el, &occupant("lobby", "Robert"), None)).await;
        assert_eq!(has_status(&new, "110"), own, "{}", new.to_xml());
        assert!(!has_status(&new, "303"), "{}", new.to_xml());
    }

    // The old nick is free again; messages now come from the new one.
    let room_jid = room("lobby");
    bob.send(format!("<message type='groupchat' to='{room_jid}'><body>renamed</body></message>")).await;
    let m = alice.expect(|el| has_body(el, "renamed")).await;
    assert_eq!(m.attr("from"), Some(occupant("lobby", "Robert").as_str()), "{}", m.to_xml());
    let mut carol = server.login("carol").await;
    let got = carol.join("lobby", "Bob").await;
    presence_in(&got, &occupant("lobby", "Robert"));
    presence_in(&got, &occupant("lobby", "Bob"));
}

#[tokio::test]
async fn leaving_tells_everyone_and_the_last_one_out_ends_the_room() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.create("lobby", "Alice").await;
    bob.join("lobby", "Bob").await;

    bob.send(format!("<presence type='unavailable' to='{}'/>", occupant("lobby", "Bob"))).await;
    let own = bob.expect(|el| is_presence(el, &occupant("lobby", "Bob"), Some("unavailable"))).await;
    assert!(has_status(&own, "110"), "{}", own.to_xml());
    let seen = alice.expect(|el| is_presence(el, &occupant("lobby", "Bob"), Some("unavailable"))).await;
    assert!(!has_status(&seen, "110"), "{}", seen.to_xml());
    assert!(user_x(&seen).is_some(), "unavailable presence carries muc#user: {}", seen.to_xml());
    assert!(item_jids(&disco(&mut alice, SERVICE, "items").await).contains(&room("lobby")));

    alice.send(format!("<presence type='unavailable' to='{}'/>", occupant("lobby", "Alice"))).await;
    alice.expect(|el| is_presence(el, &occupant("lobby", "Alice"), Some("unavailable"))).await;
    bob.expect_no("anything from the room", |el| el.attr("from").is_some_and(|f| f.contains(SERVICE))).await;
    let rooms = disco(&mut alice, SERVICE, "items").await;
    assert!(!item_jids(&rooms).contains(&room("lobby")), "the empty room is gone: {}", rooms.to_xml());

    // Joining it again creates it anew.
    let got = bob.join("lobby", "Bob").await;
    let (_, own) = presence_in(&got, &occupant("lobby", "Bob"));
    assert!(has_status(&own, "201"), "a new room: {}", own.to_xml());
    assert_eq!(affiliation_role(&own), (Some("owner"), Some("moderator")), "{}", own.to_xml());
}

#[tokio::test]
async fn a_disconnected_client_leaves_all_its_rooms() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    for name in ["one", "two"] {
        alice.create(name, "Alice").await;
        bob.join(name, "Bob").await;
    }
    bob.drop_connection();
    for name in ["one", "two"] {
        alice.expect(|el| is_presence(el, &occupant(name, "Bob"), Some("unavailable"))).await;
    }
    let mut carol = server.login("carol").await;
    let got = carol.join("one", "Bob").await;
    let others: Vec<_> = got
        .iter()
        .filter(|el| el.is("presence", ns::CLIENT) && el.attr("from").is_some_and(|f| f.contains(SERVICE)))
        .collect();
    assert_eq!(others.len(), 2, "Alice and carol herself only:\n{}", describe(&got));
}

#[tokio::test]
async fn a_full_room_refuses_the_next_joiner() {
    let server = TestServer::start_with(|c| c.muc.max_occupants = 3).await;
    let mut clients = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let mut c = server.login(name).await;
        if name == "alice" {
            c.create("small", name).await;
        } else {
            c.join("small", name).await;
        }
        clients.push(c);
    }
    let mut dave = server.login("dave").await;
    let to = occupant("small", "dave");
    dave.send(format!("<presence to='{to}'><x xmlns='{MUC}'/></presence>")).await;
    let err = dave.expect(|el| el.is("presence", ns::CLIENT) && el.attr("from") == Some(&to)).await;
    assert_eq!(err.attr("type"), Some("error"), "{}", err.to_xml());
    assert_eq!(error_condition(&err).as_deref(), Some("service-unavailable"), "{}", err.to_xml());
    let echoes_x = err.child("x", MUC).is_some();
    for c in &mut clients {
        c.expect_no("dave's presence", |el| el.attr("from") == Some(&to)).await;
    }

    // Once someone leaves there is room again.
    let alice = &mut clients[0];
    alice.send(format!("<presence type='unavailable' to='{}'/>", occupant("small", "alice"))).await;
    alice.expect(|el| is_presence(el, &occupant("small", "alice"), Some("unavailable"))).await;
    let got = dave.join("small", "dave").await;
    let (_, own) = presence_in(&got, &to);
    assert!(statuses(&own).contains(&"110".to_owned()), "{}", own.to_xml());
    // XEP-0045 §7.2.10: like every join error, it echoes the muc `<x/>`.
    assert!(echoes_x, "the service-unavailable error carries <x xmlns='{MUC}'/>: {}", err.to_xml());
}
