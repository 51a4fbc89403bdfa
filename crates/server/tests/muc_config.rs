//! XEP-0045 room configuration (§10.1-§10.2, §10.9): a new room is locked until its owner configures it, the
//! `muc#roomconfig` form, what disco#info then says, the join errors the configuration causes, status 104, and
//! destroying a room.

mod common;

use common::muc::{
    field, has_status, is_presence, occupant, room, statuses, user_x, MUC, MUC_OWNER, MUC_USER, SERVICE,
};
use common::{error_condition, ns, Client, Element, TestServer};

const XDATA: &str = "jabber:x:data";

async fn disco_info(client: &mut Client, to: &str) -> Element {
    let id = client.id();
    let reply =
        client.iq(&format!("<iq type='get' id='{id}' to='{to}'><query xmlns='{}'/></iq>", ns::DISCO_INFO)).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    reply.child("query", ns::DISCO_INFO).expect("query").clone()
}

fn features(info: &Element) -> Vec<String> {
    info.children()
        .filter(|f| f.is("feature", ns::DISCO_INFO))
        .filter_map(|f| f.attr("var").map(str::to_owned))
        .collect()
}

/// The value of `var` in a data form.
fn form_value(x: &Element, var: &str) -> Option<String> {
    x.children()
        .find(|f| f.is("field", XDATA) && f.attr("var") == Some(var))
        .and_then(|f| f.child("value", XDATA))
        .map(Element::text)
}

/// A join presence for `room/nick` with `inner` in the muc `<x/>`; the error condition it gets.
async fn join_error(client: &mut Client, room_name: &str, nick: &str, inner: &str) -> String {
    let to = occupant(room_name, nick);
    client.send(format!("<presence to='{to}'><x xmlns='{MUC}'>{inner}</x></presence>")).await;
    let err = client.expect(|el| el.is("presence", ns::CLIENT) && el.attr("from") == Some(&to)).await;
    assert_eq!(err.attr("type"), Some("error"), "{}", err.to_xml());
    error_condition(&err).unwrap_or_default()
}

#[tokio::test]
async fn a_new_room_is_locked_until_its_owner_accepts_the_defaults() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    let got = alice.join("fresh", "Alice").await;
    let own = got.iter().find(|el| is_presence(el, &occupant("fresh", "Alice"), None)).expect("self-presence");
    assert!(has_status(own, "201"), "{}", own.to_xml());

    // Locked: for everyone else the room does not exist yet (§10.1.1), nor is it listed.
    assert_eq!(join_error(&mut bob, "fresh", "Bob", "").await, "item-not-found");
    let id = bob.id();
    let items =
        bob.iq(&format!("<iq type='get' id='{id}' to='{SERVICE}'><query xmlns='{}'/></iq>", ns::DISCO_ITEMS)).await;
    assert!(!items.to_xml().contains("fresh@"), "{}", items.to_xml());

    // The owner asks for the form, then accepts the defaults with an empty submit (an instant room, §10.1.2).
    let id = alice.id();
    let form =
        alice.iq(&format!("<iq type='get' id='{id}' to='{}'><query xmlns='{MUC_OWNER}'/></iq>", room("fresh"))).await;
    let x = form.child("query", MUC_OWNER).and_then(|q| q.child("x", XDATA)).expect("a form");
    assert_eq!(x.attr("type"), Some("form"));
    for var in [
        "muc#roomconfig_persistentroom",
        "muc#roomconfig_membersonly",
        "muc#roomconfig_moderatedroom",
        "muc#roomconfig_passwordprotectedroom",
        "muc#roomconfig_roomsecret",
        "muc#roomconfig_maxusers",
        "muc#roomconfig_publicroom",
        "muc#roomconfig_whois",
        "muc#roomconfig_allowpm",
        "muc#roomconfig_roomname",
        "muc#roomconfig_roomdesc",
        "muc#roomconfig_changesubject",
        "muc#roomconfig_enablearchiving",
    ] {
        assert!(form_value(x, var).is_some(), "{var} missing from {}", x.to_xml());
    }
    // Only the owner configures.
    let id = bob.id();
    let denied =
        bob.iq(&format!("<iq type='get' id='{id}' to='{}'><query xmlns='{MUC_OWNER}'/></iq>", room("fresh"))).await;
    assert!(matches!(error_condition(&denied).as_deref(), Some("forbidden")), "{}", denied.to_xml());

    let reply = alice.configure("fresh", "").await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    bob.join("fresh", "Bob").await;
}

#[tokio::test]
async fn the_configuration_shows_in_disco_and_changes_send_104() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.create("conf", "Alice").await;
    let info = disco_info(&mut alice, &room("conf")).await;
    let f = features(&info);
    for var in ["muc_temporary", "muc_public", "muc_open", "muc_unmoderated", "muc_semianonymous", "muc_unsecured"] {
        assert!(f.iter().any(|x| x == var), "{var}: {}", info.to_xml());
    }
    assert!(!f.iter().any(|x| x == "urn:xmpp:mam:2"), "no archive for a temporary room: {}", info.to_xml());
    bob.join("conf", "Bob").await;

    let fields = [
        field("muc#roomconfig_roomname", "Conference"),
        field("muc#roomconfig_roomdesc", "Where we meet"),
        field("muc#roomconfig_persistentroom", "1"),
        field("muc#roomconfig_publicroom", "0"),
        field("muc#roomconfig_moderatedroom", "1"),
        field("muc#roomconfig_whois", "anyone"),
    ]
    .concat();
    let reply = alice.configure("conf", &fields).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let notice = bob
        .expect(|el| el.is("message", ns::CLIENT) && el.attr("from") == Some(&room("conf")) && user_x(el).is_some())
        .await;
    let codes = statuses(&notice);
    assert!(codes.contains(&"104".to_owned()) && codes.contains(&"172".to_owned()), "{}", notice.to_xml());
    assert!(codes.contains(&"170".to_owned()), "persistent rooms are archived: {}", notice.to_xml());

    let info = disco_info(&mut bob, &room("conf")).await;
    let f = features(&info);
    for var in [
        "muc_persistent",
        "muc_hidden",
        "muc_moderated",
        "muc_nonanonymous",
        "urn:xmpp:mam:2",
        "urn:xmpp:message-moderate:1",
    ] {
        assert!(f.iter().any(|x| x == var), "{var}: {}", info.to_xml());
    }
    let identity = info.child("identity", ns::DISCO_INFO).expect("identity");
    assert_eq!(identity.attr("name"), Some("Conference"));
    let roominfo = info.child("x", XDATA).expect("muc#roominfo form");
    assert_eq!(form_value(roominfo, "muc#roominfo_description").as_deref(), Some("Where we meet"));
    assert_eq!(form_value(roominfo, "muc#roominfo_occupants").as_deref(), Some("2"));

    // Hidden: not in the room list.
    let id = bob.id();
    let items =
        bob.iq(&format!("<iq type='get' id='{id}' to='{SERVICE}'><query xmlns='{}'/></iq>", ns::DISCO_ITEMS)).await;
    assert!(!items.to_xml().contains("conf@"), "{}", items.to_xml());

    // Non-anonymous: a newcomer is told (100) and sees real JIDs.
    let mut carol = server.login("carol").await;
    let got = carol.join("conf", "Carol").await;
    let own = got.iter().find(|el| is_presence(el, &occupant("conf", "Carol"), None)).expect("self-presence");
    assert!(has_status(own, "100"), "{}", own.to_xml());
    let bob_seen = got.iter().find(|el| is_presence(el, &occupant("conf", "Bob"), None)).expect("bob");
    assert_eq!(common::muc::item(bob_seen).and_then(|i| i.attr("jid")), Some(bob.jid.as_str()));
}

#[tokio::test]
async fn passwords_membership_and_size_are_enforced_at_the_door() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    let mut carol = server.login("carol").await;
    alice.join("door", "Alice").await;
    let fields = [
        field("muc#roomconfig_passwordprotectedroom", "1"),
        field("muc#roomconfig_roomsecret", "open sesame"),
        field("muc#roomconfig_maxusers", "2"),
    ]
    .concat();
    assert_eq!(alice.configure("door", &fields).await.attr("type"), Some("result"));
    let info = disco_info(&mut bob, &room("door")).await;
    assert!(features(&info).iter().any(|f| f == "muc_passwordprotected"), "{}", info.to_xml());

    assert_eq!(join_error(&mut bob, "door", "Bob", "").await, "not-authorized");
    assert_eq!(join_error(&mut bob, "door", "Bob", "<password>wrong</password>").await, "not-authorized");
    bob.join_with("door", "Bob", "<password>open sesame</password>").await;
    assert_eq!(
        join_error(&mut carol, "door", "Carol", "<password>open sesame</password>").await,
        "service-unavailable"
    );
    assert_eq!(join_error(&mut carol, "door", "Alice", "<password>open sesame</password>").await, "conflict");

    // Members only: strangers are told to register (§7.2.6), and those present who are not members leave (322).
    let reply = alice
        .configure(
            "door",
            &[field("muc#roomconfig_membersonly", "1"), field("muc#roomconfig_passwordprotectedroom", "0")].concat(),
        )
        .await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let gone = bob.expect(|el| is_presence(el, &occupant("door", "Bob"), Some("unavailable"))).await;
    assert!(has_status(&gone, "322"), "{}", gone.to_xml());
    assert_eq!(join_error(&mut carol, "door", "Carol", "").await, "registration-required");
}

#[tokio::test]
async fn destroying_a_room_tells_everyone_where_to_go() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.create("old", "Alice").await;
    bob.join("old", "Bob").await;

    let id = bob.id();
    let destroy = format!(
        "<iq type='set' id='{id}' to='{}'><query xmlns='{MUC_OWNER}'><destroy jid='{}'><reason>Moved</reason></destroy></query></iq>",
        room("old"),
        room("new")
    );
    let denied = bob.iq(&destroy).await;
    assert_eq!(error_condition(&denied).as_deref(), Some("forbidden"), "{}", denied.to_xml());

    let reply = alice.iq(&destroy.replace(&format!("id='{id}'"), "id='d2'")).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    for c in [&mut bob, &mut alice] {
        let gone = c
            .expect(|el| {
                el.is("presence", ns::CLIENT)
                    && el.attr("type") == Some("unavailable")
                    && user_x(el).and_then(|x| x.child("destroy", MUC_USER)).is_some()
            })
            .await;
        let d = user_x(&gone).and_then(|x| x.child("destroy", MUC_USER)).expect("destroy");
        assert_eq!(d.attr("jid"), Some(room("new").as_str()), "{}", gone.to_xml());
        assert_eq!(d.child("reason", MUC_USER).map(Element::text).as_deref(), Some("Moved"));
    }
    let id = bob.id();
    let info = bob
        .iq(&format!("<iq type='get' id='{id}' to='{}'><query xmlns='{}'/></iq>", room("old"), ns::DISCO_INFO))
        .await;
    assert_eq!(error_condition(&info).as_deref(), Some("item-not-found"), "{}", info.to_xml());
}

#[tokio::test]
async fn room_creation_is_limited_per_user() {
    let server = TestServer::start_with(|c| c.muc.max_rooms_per_user = 1).await;
    let mut alice = server.login("alice").await;
    alice.create("mine", "Alice").await;
    assert_eq!(join_error(&mut alice, "another", "Alice", "").await, "resource-constraint");
}
