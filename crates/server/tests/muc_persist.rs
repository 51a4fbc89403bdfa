//! Persistent rooms (XEP-0045 §10.2 `persistentroom`) survive a restart with their configuration, subject,
//! affiliations and archive; temporary rooms do not.

mod common;

use common::muc::{field, has_status, is_presence, is_subject, occupant, room, MUC, MUC_ADMIN};
use common::{error_condition, has_body, ns, Element, TestServer, MAM};

#[tokio::test]
async fn a_persistent_room_survives_a_restart_and_a_temporary_one_does_not() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let bob = server.login("bob").await;
    alice.join("keep", "Alice").await;
    let fields = [
        field("muc#roomconfig_persistentroom", "1"),
        field("muc#roomconfig_membersonly", "1"),
        field("muc#roomconfig_roomname", "Kept"),
    ]
    .concat();
    assert_eq!(alice.configure("keep", &fields).await.attr("type"), Some("result"));
    let id = alice.id();
    let reply = alice
        .iq(&format!(
            "<iq type='set' id='{id}' to='{}'><query xmlns='{MUC_ADMIN}'><item jid='{}' affiliation='member'/></query></iq>",
            room("keep"),
            bob.bare()
        ))
        .await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    alice
        .send(format!("<message type='groupchat' to='{}'><subject>Long-lived</subject></message>", room("keep")))
        .await;
    alice.expect(is_subject).await;
    for i in 0..3 {
        alice.send(format!("<message type='groupchat' to='{}'><body>kept {i}</body></message>", room("keep"))).await;
    }
    alice.expect(|el| has_body(el, "kept 2")).await;
    alice.create("gone", "Alice").await;
    drop(alice);
    drop(bob);

    let server = server.restart().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    let mut carol = server.login("carol").await;

    // The room exists with nobody in it; its configuration held.
    let id = carol.id();
    let info = carol
        .iq(&format!("<iq type='get' id='{id}' to='{}'><query xmlns='{}'/></iq>", room("keep"), ns::DISCO_INFO))
        .await;
    assert_eq!(info.attr("type"), Some("result"), "{}", info.to_xml());
    let q = info.child("query", ns::DISCO_INFO).expect("query");
    let has = |var: &str| q.children().any(|f| f.attr("var") == Some(var));
    assert!(has("muc_persistent") && has("muc_membersonly"), "{}", info.to_xml());
    assert_eq!(q.child("identity", ns::DISCO_INFO).and_then(|i| i.attr("name")), Some("Kept"), "{}", info.to_xml());

    // Affiliations held: carol is no member, bob is, alice still owns it (and entering does not create it: no 201).
    let to = occupant("keep", "Carol");
    carol.send(format!("<presence to='{to}'><x xmlns='{MUC}'/></presence>")).await;
    let err = carol.expect(|el| el.is("presence", ns::CLIENT) && el.attr("from") == Some(&to)).await;
    assert_eq!(error_condition(&err).as_deref(), Some("registration-required"), "{}", err.to_xml());
    let got = bob.join("keep", "Bob").await;
    let bodies: Vec<String> = got.iter().filter_map(|m| m.child("body", ns::CLIENT).map(Element::text)).collect();
    assert_eq!(bodies, ["kept 0", "kept 1", "kept 2"], "history from the archive");
    let subject = got.last().expect("subject");
    assert_eq!(subject.child("subject", ns::CLIENT).map(Element::text).as_deref(), Some("Long-lived"));
    let got = alice.join("keep", "Alice").await;
    let own = got.iter().find(|el| is_presence(el, &occupant("keep", "Alice"), None)).expect("self-presence");
    assert!(!has_status(own, "201"), "{}", own.to_xml());
    assert_eq!(common::muc::item(own).and_then(|i| i.attr("affiliation")), Some("owner"), "{}", own.to_xml());

    // The archive survived too.
    let id = bob.id();
    let reply = bob
        .iq(&format!("<iq type='set' id='{id}' to='{}'><query xmlns='{MAM}' queryid='q'/></iq>", room("keep")))
        .await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let results = bob.collect(std::time::Duration::from_millis(200)).await;
    let archived = results.iter().filter(|m| m.to_xml().contains("kept ")).count();
    assert_eq!(archived, 3, "{results:?}");

    // The temporary room is gone: entering it creates it anew.
    let got = carol.join("gone", "Carol").await;
    let own = got.iter().find(|el| is_presence(el, &occupant("gone", "Carol"), None)).expect("self-presence");
    assert!(has_status(own, "201"), "{}", own.to_xml());
}

#[tokio::test]
async fn making_a_room_temporary_again_removes_it_from_the_store_when_empty() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    alice.join("flip", "Alice").await;
    alice.configure("flip", &field("muc#roomconfig_persistentroom", "1")).await;
    assert_eq!(server.store().muc_rooms().await.unwrap().len(), 1);
    alice.configure("flip", &field("muc#roomconfig_persistentroom", "0")).await;
    assert!(server.store().muc_rooms().await.unwrap().is_empty());
}
