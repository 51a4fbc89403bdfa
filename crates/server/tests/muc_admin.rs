//! XEP-0045 roles and affiliations: the creator owns the room; moderators kick and manage voice (§8); admins ban
//! and manage members (§9); owners manage admins and owners (§10); the lists, the status codes and who may do what.

mod common;

use common::muc::{field, has_status, is_presence, item, occupant, room, MUC, MUC_ADMIN};
use common::{error_condition, has_body, ns, Client, Element, TestServer};

/// A muc#admin set with `items` to `room_name`; the IQ reply.
async fn admin_set(client: &mut Client, room_name: &str, items: &str) -> Element {
    let id = client.id();
    let to = room(room_name);
    client.iq(&format!("<iq type='set' id='{id}' to='{to}'><query xmlns='{MUC_ADMIN}'>{items}</query></iq>")).await
}

/// The JIDs (or nicks, for roles) listed for `attr`=`value`; panics on an error reply.
async fn admin_list(client: &mut Client, room_name: &str, attr: &str, value: &str) -> Result<Vec<String>, String> {
    let id = client.id();
    let to = room(room_name);
    let reply = client
        .iq(&format!(
            "<iq type='get' id='{id}' to='{to}'><query xmlns='{MUC_ADMIN}'><item {attr}='{value}'/></query></iq>"
        ))
        .await;
    if reply.attr("type") != Some("result") {
        return Err(error_condition(&reply).unwrap_or_default());
    }
    let q = reply.child("query", MUC_ADMIN).expect("a query");
    let key = if attr == "role" { "nick" } else { "jid" };
    Ok(q.children().filter_map(|i| i.attr(key).map(str::to_owned)).collect())
}

fn ok(reply: &Element) {
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
}

fn refused(reply: &Element, condition: &str) {
    assert_eq!(reply.attr("type"), Some("error"), "{}", reply.to_xml());
    assert_eq!(error_condition(reply).as_deref(), Some(condition), "{}", reply.to_xml());
}

/// alice owns `lobby`; bob and carol are in it.
async fn three(server: &TestServer) -> (Client, Client, Client) {
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    let mut carol = server.login("carol").await;
    alice.create("lobby", "Alice").await;
    bob.join("lobby", "Bob").await;
    carol.join("lobby", "Carol").await;
    for c in [&mut alice, &mut bob] {
        c.expect(|el| is_presence(el, &occupant("lobby", "Carol"), None)).await;
        c.discard_unmatched();
    }
    (alice, bob, carol)
}

#[tokio::test]
async fn a_moderator_kicks_with_307_and_a_participant_may_not() {
    let server = TestServer::start().await;
    let (mut alice, mut bob, mut carol) = three(&server).await;

    // bob is a participant: no kicking.
    refused(&admin_set(&mut bob, "lobby", "<item nick='Carol' role='none'/>").await, "forbidden");

    ok(&admin_set(&mut alice, "lobby", "<item nick='Carol' role='none'><reason>Be nice</reason></item>").await);
    for (c, own) in [(&mut carol, true), (&mut bob, false), (&mut alice, false)] {
        let gone = c.expect(|el| is_presence(el, &occupant("lobby", "Carol"), Some("unavailable"))).await;
        assert!(has_status(&gone, "307"), "kick status: {}", gone.to_xml());
        assert_eq!(has_status(&gone, "110"), own, "{}", gone.to_xml());
        let it = item(&gone).expect("item");
        assert_eq!(it.attr("role"), Some("none"), "{}", gone.to_xml());
        assert_eq!(it.child("reason", common::muc::MUC_USER).map(Element::text).as_deref(), Some("Be nice"));
        assert_eq!(it.child("actor", common::muc::MUC_USER).and_then(|a| a.attr("nick")), Some("Alice"));
    }
    // Kicked is not banned: carol may come back.
    carol.join("lobby", "Carol").await;
    // The owner cannot be kicked by an admin... nor by anyone below: bob cannot touch alice.
    refused(&admin_set(&mut bob, "lobby", "<item nick='Alice' role='none'/>").await, "forbidden");
}

#[tokio::test]
async fn voice_in_a_moderated_room_is_granted_and_revoked() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.join("quiet", "Alice").await;
    ok(&alice.configure("quiet", &field("muc#roomconfig_moderatedroom", "1")).await);
    let got = bob.join("quiet", "Bob").await;
    let own = got.iter().find(|el| is_presence(el, &occupant("quiet", "Bob"), None)).expect("self-presence");
    assert_eq!(item(own).and_then(|i| i.attr("role")), Some("visitor"), "{}", own.to_xml());

    // Visitors do not speak (§7.4).
    bob.send(format!("<message type='groupchat' id='v1' to='{}'><body>can I?</body></message>", room("quiet"))).await;
    let err = bob.expect(|el| el.attr("id") == Some("v1")).await;
    assert_eq!(error_condition(&err).as_deref(), Some("forbidden"), "{}", err.to_xml());

    ok(&admin_set(&mut alice, "quiet", "<item nick='Bob' role='participant'/>").await);
    let p = bob
        .expect(|el| {
            is_presence(el, &occupant("quiet", "Bob"), None)
                && item(el).and_then(|i| i.attr("role")) == Some("participant")
        })
        .await;
    assert!(has_status(&p, "110"), "{}", p.to_xml());
    bob.send(format!("<message type='groupchat' to='{}'><body>now I can</body></message>", room("quiet"))).await;
    alice.expect(|el| has_body(el, "now I can")).await;

    // The voice list (§8.5) is for moderators.
    assert_eq!(admin_list(&mut alice, "quiet", "role", "participant").await, Ok(vec!["Bob".to_owned()]));
    assert_eq!(admin_list(&mut bob, "quiet", "role", "participant").await, Err("forbidden".into()));

    ok(&admin_set(&mut alice, "quiet", "<item nick='Bob' role='visitor'/>").await);
    bob.expect(|el| {
        is_presence(el, &occupant("quiet", "Bob"), None) && item(el).and_then(|i| i.attr("role")) == Some("visitor")
    })
    .await;
}

#[tokio::test]
async fn a_ban_removes_with_301_and_keeps_the_outcast_out() {
    let server = TestServer::start().await;
    let (mut alice, mut bob, mut carol) = three(&server).await;
    let carol_bare = carol.bare();
    ok(&admin_set(
        &mut alice,
        "lobby",
        &format!("<item jid='{carol_bare}' affiliation='outcast'><reason>spam</reason></item>"),
    )
    .await);
    for c in [&mut carol, &mut bob] {
        let gone = c.expect(|el| is_presence(el, &occupant("lobby", "Carol"), Some("unavailable"))).await;
        assert!(has_status(&gone, "301"), "ban status: {}", gone.to_xml());
        assert_eq!(item(&gone).and_then(|i| i.attr("affiliation")), Some("outcast"), "{}", gone.to_xml());
    }
    assert_eq!(admin_list(&mut alice, "lobby", "affiliation", "outcast").await, Ok(vec![carol_bare.clone()]));

    let to = occupant("lobby", "Carol2");
    carol.send(format!("<presence to='{to}'><x xmlns='{MUC}'/></presence>")).await;
    let err = carol.expect(|el| el.is("presence", ns::CLIENT) && el.attr("type") == Some("error")).await;
    assert_eq!(error_condition(&err).as_deref(), Some("forbidden"), "{}", err.to_xml());

    // Unbanning (affiliation none) lets her in again.
    ok(&admin_set(&mut alice, "lobby", &format!("<item jid='{carol_bare}' affiliation='none'/>")).await);
    carol.join("lobby", "Carol").await;
}

#[tokio::test]
async fn admins_manage_members_but_not_owners_and_the_last_owner_stays() {
    let server = TestServer::start().await;
    let (mut alice, mut bob, carol) = three(&server).await;
    let (alice_bare, bob_bare, carol_bare) = (alice.bare(), bob.bare(), carol.bare());

    // Only owners grant admin (§10.6).
    ok(&admin_set(&mut alice, "lobby", &format!("<item jid='{bob_bare}' affiliation='admin'/>")).await);
    let p = bob
        .expect(|el| {
            is_presence(el, &occupant("lobby", "Bob"), None)
                && item(el).and_then(|i| i.attr("affiliation")) == Some("admin")
        })
        .await;
    assert_eq!(item(&p).and_then(|i| i.attr("role")), Some("moderator"), "admins are moderators: {}", p.to_xml());

    // The admin makes carol a member, but may not touch the owner nor make admins.
    ok(&admin_set(&mut bob, "lobby", &format!("<item jid='{carol_bare}' affiliation='member'/>")).await);
    refused(
        &admin_set(&mut bob, "lobby", &format!("<item jid='{alice_bare}' affiliation='outcast'/>")).await,
        "not-allowed",
    );
    refused(
        &admin_set(&mut bob, "lobby", &format!("<item jid='{carol_bare}' affiliation='admin'/>")).await,
        "not-allowed",
    );
    refused(&admin_set(&mut bob, "lobby", "<item nick='Alice' role='none'/>").await, "not-allowed");

    assert_eq!(admin_list(&mut bob, "lobby", "affiliation", "member").await, Ok(vec![carol_bare.clone()]));
    assert_eq!(admin_list(&mut alice, "lobby", "affiliation", "admin").await, Ok(vec![bob_bare.clone()]));
    assert_eq!(admin_list(&mut alice, "lobby", "affiliation", "owner").await, Ok(vec![alice_bare.clone()]));

    // The only owner cannot step down; with a second owner she can.
    refused(
        &admin_set(&mut alice, "lobby", &format!("<item jid='{alice_bare}' affiliation='admin'/>")).await,
        "conflict",
    );
    ok(&admin_set(&mut alice, "lobby", &format!("<item jid='{bob_bare}' affiliation='owner'/>")).await);
    ok(&admin_set(&mut alice, "lobby", &format!("<item jid='{alice_bare}' affiliation='member'/>")).await);
    assert_eq!(admin_list(&mut bob, "lobby", "affiliation", "owner").await, Ok(vec![bob_bare.clone()]));
    // A member sees no outcast list.
    assert_eq!(admin_list(&mut alice, "lobby", "affiliation", "outcast").await, Err("forbidden".into()));
}

#[tokio::test]
async fn revoking_membership_of_a_members_only_room_removes_with_321() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.join("club", "Alice").await;
    ok(&alice.configure("club", &field("muc#roomconfig_membersonly", "1")).await);
    let bob_bare = bob.bare();
    ok(&admin_set(&mut alice, "club", &format!("<item jid='{bob_bare}' affiliation='member'/>")).await);
    bob.join("club", "Bob").await;

    ok(&admin_set(&mut alice, "club", &format!("<item jid='{bob_bare}' affiliation='none'/>")).await);
    let gone = bob.expect(|el| is_presence(el, &occupant("club", "Bob"), Some("unavailable"))).await;
    assert!(has_status(&gone, "321"), "{}", gone.to_xml());
}

#[tokio::test]
async fn in_a_non_anonymous_room_occupants_learn_of_absent_members() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.join("open", "Alice").await;
    ok(&alice.configure("open", &field("muc#roomconfig_whois", "anyone")).await);
    bob.join("open", "Bob").await;
    let dave = common::bare("dave");
    ok(&admin_set(&mut alice, "open", &format!("<item jid='{dave}' affiliation='member'/>")).await);
    let m = bob
        .expect(|el| el.is("message", ns::CLIENT) && item(el).is_some_and(|i| i.attr("jid") == Some(dave.as_str())))
        .await;
    assert_eq!(m.attr("from"), Some(room("open").as_str()), "{}", m.to_xml());
    assert_eq!(item(&m).and_then(|i| i.attr("affiliation")), Some("member"), "{}", m.to_xml());
}

#[tokio::test]
async fn a_visitor_requests_voice_and_a_moderator_grants_it() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.join("stage", "Alice").await;
    ok(&alice.configure("stage", &field("muc#roomconfig_moderatedroom", "1")).await);
    bob.join("stage", "Bob").await;
    const REQUEST: &str = "http://jabber.org/protocol/muc#request";
    const XDATA: &str = "jabber:x:data";
    bob.send(format!(
        "<message to='{}'><x xmlns='{XDATA}' type='submit'><field var='FORM_TYPE'><value>{REQUEST}</value></field>\
         <field var='muc#role'><value>participant</value></field></x></message>",
        room("stage")
    ))
    .await;
    let form = alice.expect(|el| el.is("message", ns::CLIENT) && el.child("x", XDATA).is_some()).await;
    assert_eq!(form.attr("from"), Some(room("stage").as_str()), "{}", form.to_xml());
    let value = |var: &str| {
        form.child("x", XDATA)
            .and_then(|x| x.children().find(|f| f.attr("var") == Some(var)))
            .and_then(|f| f.child("value", XDATA))
            .map(Element::text)
    };
    assert_eq!(value("muc#roomnick").as_deref(), Some("Bob"));
    assert_eq!(value("muc#jid").as_deref(), Some(bob.jid.as_str()));

    alice
        .send(format!(
            "<message to='{}'><x xmlns='{XDATA}' type='submit'><field var='FORM_TYPE'><value>{REQUEST}</value></field>\
             <field var='muc#role'><value>participant</value></field><field var='muc#roomnick'><value>Bob</value></field>\
             <field var='muc#request_allow'><value>true</value></field></x></message>",
            room("stage")
        ))
        .await;
    bob.expect(|el| {
        is_presence(el, &occupant("stage", "Bob"), None) && item(el).and_then(|i| i.attr("role")) == Some("participant")
    })
    .await;
}
