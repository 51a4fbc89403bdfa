//! Getting people into rooms and keeping them there: XEP-0249 direct invitations, XEP-0045 §7.8.2 mediated
//! invitations and declines, XEP-0410 self-ping, and offline delivery of room messages to absent members.

mod common;

use std::time::Duration;

use common::muc::{field, occupant, room, MUC_USER};
use common::{error_condition, has_body, ns, Element, TestServer};

#[tokio::test]
async fn a_direct_invitation_is_routed_to_the_invitee() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.create("party", "Alice").await;
    let to = bob.bare();
    alice
        .send(format!(
            "<message to='{to}'><x xmlns='jabber:x:conference' jid='{}' reason='Come along'/></message>",
            room("party")
        ))
        .await;
    let m = bob.expect(|el| el.child("x", "jabber:x:conference").is_some()).await;
    assert_eq!(m.attr("from"), Some(alice.jid.as_str()));
    assert_eq!(m.child("x", "jabber:x:conference").and_then(|x| x.attr("jid")), Some(room("party").as_str()));
}

#[tokio::test]
async fn a_mediated_invitation_makes_a_member_and_a_decline_goes_back() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.join("club", "Alice").await;
    let fields = [field("muc#roomconfig_membersonly", "1"), field("muc#roomconfig_persistentroom", "1")].concat();
    assert_eq!(alice.configure("club", &fields).await.attr("type"), Some("result"));

    let invite = format!(
        "<message to='{}'><x xmlns='{MUC_USER}'><invite to='{}'><reason>Join us</reason></invite></x></message>",
        room("club"),
        bob.bare()
    );
    alice.send(&invite).await;
    let m = bob.expect(|el| el.child("x", MUC_USER).is_some_and(|x| x.child("invite", MUC_USER).is_some())).await;
    assert_eq!(m.attr("from"), Some(room("club").as_str()), "{}", m.to_xml());
    let inv = m.child("x", MUC_USER).and_then(|x| x.child("invite", MUC_USER)).unwrap();
    assert_eq!(inv.attr("from"), Some(alice.jid.as_str()), "{}", m.to_xml());
    assert_eq!(inv.child("reason", MUC_USER).map(Element::text).as_deref(), Some("Join us"));
    // Invited into a members-only room: bob is a member now and may enter.
    bob.join("club", "Bob").await;
    assert_eq!(server.store().muc_rooms().await.unwrap()[0].affiliations.len(), 2);

    // Someone who is not in the room cannot invite; a decline reaches the inviter.
    let mut carol = server.login("carol").await;
    carol.send(invite.replace("<message ", "<message id='i2' ")).await;
    let err = carol.expect(|el| el.attr("id") == Some("i2")).await;
    assert_eq!(error_condition(&err).as_deref(), Some("not-acceptable"), "{}", err.to_xml());
    carol
        .send(format!(
            "<message to='{}'><x xmlns='{MUC_USER}'><decline to='{}'><reason>Busy</reason></decline></x></message>",
            room("club"),
            alice.bare()
        ))
        .await;
    let d = alice.expect(|el| el.child("x", MUC_USER).is_some_and(|x| x.child("decline", MUC_USER).is_some())).await;
    let decline = d.child("x", MUC_USER).and_then(|x| x.child("decline", MUC_USER)).unwrap();
    assert_eq!(decline.attr("from"), Some(carol.bare().as_str()), "{}", d.to_xml());
    assert_eq!(d.attr("from"), Some(room("club").as_str()));
}

#[tokio::test]
async fn self_ping_answers_whether_one_is_still_joined() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    alice.create("ping", "Alice").await;
    let ping = |id: &str, nick: &str| {
        format!("<iq type='get' id='{id}' to='{}'><ping xmlns='urn:xmpp:ping'/></iq>", occupant("ping", nick))
    };
    let reply = alice.iq(&ping("p1", "Alice")).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    assert_eq!(reply.attr("from"), Some(occupant("ping", "Alice").as_str()));

    let mut bob = server.login("bob").await;
    let reply = bob.iq(&ping("p2", "Bob")).await;
    assert_eq!(error_condition(&reply).as_deref(), Some("not-acceptable"), "{}", reply.to_xml());
}

#[tokio::test]
async fn absent_members_get_room_messages_offline() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    alice.join("team", "Alice").await;
    let fields = [field("muc#roomconfig_membersonly", "1"), field("muc#roomconfig_persistentroom", "1")].concat();
    assert_eq!(alice.configure("team", &fields).await.attr("type"), Some("result"));
    server.create_account("bob").await;
    server.create_account("carol").await;
    let id = alice.id();
    let reply = alice
        .iq(&format!(
            "<iq type='set' id='{id}' to='{}'><query xmlns='http://jabber.org/protocol/muc#admin'><item jid='{}' affiliation='member'/><item jid='{}' affiliation='member'/></query></iq>",
            room("team"),
            common::bare("bob"),
            common::bare("carol")
        ))
        .await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    // carol is in the room; bob (a member) is away.
    let mut carol = server.login("carol").await;
    carol.join("team", "Carol").await;
    alice
        .send(format!("<message type='groupchat' to='{}'><body>while you were out</body></message>", room("team")))
        .await;
    let live = carol.expect(|el| has_body(el, "while you were out")).await;
    alice.expect(|el| has_body(el, "while you were out")).await;
    assert_eq!(server.store().offline_count("bob").await.unwrap(), 1);
    assert_eq!(server.store().offline_count("carol").await.unwrap(), 0, "occupants get it live only");

    let mut bob = server.login("bob").await;
    let m = bob.expect(|el| has_body(el, "while you were out")).await;
    assert_eq!(m.attr("type"), Some("groupchat"));
    assert_eq!(m.attr("from"), Some(occupant("team", "Alice").as_str()), "{}", m.to_xml());
    assert!(m.child("delay", ns::DELAY).is_some(), "{}", m.to_xml());
    let sid = |el: &Element| {
        el.children().find(|c| c.is("stanza-id", "urn:xmpp:sid:0")).and_then(|c| c.attr("id").map(str::to_owned))
    };
    assert_eq!(sid(&m), sid(&live), "the same stanza-id as occupants saw");

    // Online but not in the room: nothing more is stored.
    alice.send(format!("<message type='groupchat' to='{}'><body>second</body></message>", room("team"))).await;
    carol.expect(|el| has_body(el, "second")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.store().offline_count("bob").await.unwrap(), 0);
}
