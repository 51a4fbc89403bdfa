//! XEP-0045 §7.2.3: a newcomer gets every occupant's presence as it is now. Occupants keep their presence
//! serialized for newcomers (one copy per variant: with or without the real JID); these tests change what that
//! presence shows (role, affiliation, status, nickname) and check what the next newcomer sees.

mod common;

use common::muc::{field, has_status, is_presence, item, occupant, room, MUC_ADMIN};
use common::{ns, Client, Element, TestServer};

/// What a fresh client `name` sees of `nick` when it joins `room_name` as `as_nick` (the presence from
/// `room_name/nick`); it leaves again so that the next newcomer starts from the same room.
async fn newcomer_sees(server: &TestServer, name: &str, as_nick: &str, room_name: &str, nick: &str) -> Element {
    let mut c = server.login(name).await;
    let got = c.join(room_name, as_nick).await;
    let from = occupant(room_name, nick);
    let p = got.into_iter().find(|el| is_presence(el, &from, None)).unwrap_or_else(|| panic!("{name}: no {from}"));
    assert!(!has_status(&p, "110"), "someone else's presence: {}", p.to_xml());
    c.send(format!("<presence type='unavailable' to='{}'/>", occupant(room_name, as_nick))).await;
    c.expect(|el| is_presence(el, &occupant(room_name, as_nick), Some("unavailable"))).await;
    p
}

fn shown(p: &Element) -> (Option<String>, Option<String>, Option<String>) {
    let it = item(p).expect("muc#user item");
    (it.attr("role").map(str::to_owned), it.attr("affiliation").map(str::to_owned), it.attr("jid").map(str::to_owned))
}

async fn admin_set(client: &mut Client, room_name: &str, items: &str) {
    let id = client.id();
    let to = room(room_name);
    let reply =
        client.iq(&format!("<iq type='set' id='{id}' to='{to}'><query xmlns='{MUC_ADMIN}'>{items}</query></iq>")).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

#[tokio::test]
async fn newcomers_see_the_current_role_and_affiliation() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.create("lobby", "Alice").await;
    bob.join("lobby", "Bob").await;
    let bob_bare = bob.bare();

    // A participant newcomer (no real JIDs in a semi-anonymous room) and a moderator newcomer (an admin: real
    // JIDs) both see bob as a participant; each fills one variant of bob's kept presence.
    assert_eq!(
        shown(&newcomer_sees(&server, "carol", "Carol", "lobby", "Bob").await),
        (some("participant"), some("none"), None)
    );
    admin_set(&mut alice, "lobby", &format!("<item jid='{}' affiliation='admin'/>", "dave@localhost")).await;
    let (role, aff, jid) = shown(&newcomer_sees(&server, "dave", "Dave", "lobby", "Bob").await);
    assert_eq!((role, aff), (some("participant"), some("none")));
    assert!(jid.is_some_and(|j| j.starts_with(&format!("{bob_bare}/"))), "a moderator sees the real JID");

    // An affiliation change alone (§9.3): bob becomes a member and stays a participant.
    admin_set(&mut alice, "lobby", &format!("<item jid='{bob_bare}' affiliation='member'/>")).await;
    let seen = shown(&newcomer_sees(&server, "carol", "Carol", "lobby", "Bob").await);
    assert_eq!(seen, (some("participant"), some("member"), None));
    assert_eq!(shown(&newcomer_sees(&server, "dave", "Dave", "lobby", "Bob").await).1, some("member"));

    // A role change alone (§8.4): bob loses voice.
    admin_set(&mut alice, "lobby", "<item nick='Bob' role='visitor'/>").await;
    assert_eq!(
        shown(&newcomer_sees(&server, "carol", "Carol", "lobby", "Bob").await),
        (some("visitor"), some("member"), None)
    );
    assert_eq!(shown(&newcomer_sees(&server, "dave", "Dave", "lobby", "Bob").await).0, some("visitor"));

    // An admin (§10.6 by the owner): the affiliation shows, and the moderator role with it.
    admin_set(&mut alice, "lobby", &format!("<item jid='{bob_bare}' affiliation='admin'/>")).await;
    let seen = shown(&newcomer_sees(&server, "carol", "Carol", "lobby", "Bob").await);
    assert_eq!(seen, (some("moderator"), some("admin"), None));
}

#[tokio::test]
async fn newcomers_see_the_current_status_and_nickname() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.create("lobby", "Alice").await;
    bob.join("lobby", "Bob").await;
    let first = newcomer_sees(&server, "carol", "Carol", "lobby", "Bob").await;
    assert!(first.child("show", ns::CLIENT).is_none(), "{}", first.to_xml());

    // A status change (§7.7) is what the next newcomer sees.
    bob.send(format!("<presence to='{}'><show>away</show><status>lunch</status></presence>", occupant("lobby", "Bob")))
        .await;
    alice.expect(|el| is_presence(el, &occupant("lobby", "Bob"), None)).await;
    let p = newcomer_sees(&server, "carol", "Carol", "lobby", "Bob").await;
    assert_eq!(p.child("show", ns::CLIENT).map(Element::text).as_deref(), Some("away"), "{}", p.to_xml());
    assert_eq!(p.child("status", ns::CLIENT).map(Element::text).as_deref(), Some("lunch"), "{}", p.to_xml());

    // A nickname change (§7.6): the newcomer sees Robert, and no Bob.
    bob.send(format!("<presence to='{}'><show>dnd</show></presence>", occupant("lobby", "Robert"))).await;
    alice.expect(|el| is_presence(el, &occupant("lobby", "Robert"), None)).await;
    let mut carol = server.login("carol").await;
    let got = carol.join("lobby", "Carol").await;
    assert!(!got.iter().any(|el| is_presence(el, &occupant("lobby", "Bob"), None)), "the old nickname is gone");
    let p = got.iter().find(|el| is_presence(el, &occupant("lobby", "Robert"), None)).expect("Robert's presence");
    assert_eq!(p.child("show", ns::CLIENT).map(Element::text).as_deref(), Some("dnd"), "{}", p.to_xml());
    assert_eq!(shown(p), (some("participant"), some("none"), None));
}

#[tokio::test]
async fn a_room_that_becomes_non_anonymous_shows_real_jids_to_newcomers() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.create("lobby", "Alice").await;
    bob.join("lobby", "Bob").await;
    assert_eq!(shown(&newcomer_sees(&server, "carol", "Carol", "lobby", "Bob").await).2, None);
    let reply = alice.configure("lobby", &field("muc#roomconfig_whois", "anyone")).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let jid = shown(&newcomer_sees(&server, "carol", "Carol", "lobby", "Bob").await).2;
    assert!(jid.is_some_and(|j| j.starts_with(&bob.bare())), "everyone sees real JIDs now");
}
