//! Presence subscriptions and presence broadcast (RFC 6121 §3-4), every account local to one server.

mod common;

use common::{bare, ns, roster_item, Client, Element, TestServer};

/// `(subscription, ask)` of `contact` in `c`'s roster, as the server reports it now.
async fn state(c: &mut Client, contact: &str) -> (String, Option<String>) {
    let roster = c.roster().await;
    let item = roster_item(&roster, &bare(contact)).unwrap_or_else(|| panic!("{contact} not in {}", roster.to_xml()));
    (item.attr("subscription").unwrap_or("none").to_owned(), item.attr("ask").map(str::to_owned))
}

fn sub(s: &str, ask: Option<&str>) -> (String, Option<String>) {
    (s.to_owned(), ask.map(str::to_owned))
}

/// Presence of `kind` from `from`'s bare JID (subscription stanzas carry bare JIDs).
fn subscription_from(from: &str, kind: &'static str) -> impl Fn(&Element) -> bool {
    let from = bare(from);
    move |el| el.is("presence", ns::CLIENT) && el.attr("type") == Some(kind) && el.attr("from") == Some(&from)
}

/// `user` subscribes to `contact`'s presence and `contact` approves; both are online.
async fn subscribe(user: &mut Client, contact: &mut Client) {
    user.send(format!("<presence type='subscribe' to='{}'/>", contact.bare())).await;
    contact.expect(subscription_from(&user.user, "subscribe")).await;
    contact.send(format!("<presence type='subscribed' to='{}'/>", user.bare())).await;
    user.expect(subscription_from(&contact.user, "subscribed")).await;
    user.expect_presence_from(contact, None).await;
}

#[tokio::test]
async fn a_subscription_request_is_approved() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.roster().await;
    bob.roster().await;

    alice.send("<presence type='subscribe' to='bob@localhost'/>").await;
    let push = alice.expect_roster_push().await;
    let item = roster_item(&push, "bob@localhost").expect("bob pushed");
    assert_eq!((item.attr("subscription"), item.attr("ask")), (Some("none"), Some("subscribe")), "{}", push.to_xml());
    let request = bob.expect(subscription_from("alice", "subscribe")).await;
    assert_eq!(request.attr("to"), Some("bob@localhost"), "{}", request.to_xml());
    assert_eq!(state(&mut alice, "bob").await, sub("none", Some("subscribe")));

    bob.send("<presence type='subscribed' to='alice@localhost'/>").await;
    alice.expect(subscription_from("bob", "subscribed")).await;
    alice.expect_presence_from(&bob, None).await;
    assert_eq!(state(&mut alice, "bob").await, sub("to", None));
    assert_eq!(state(&mut bob, "alice").await, sub("from", None));
    // Only alice subscribed: bob does not get alice's presence.
    bob.expect_no("presence from alice", |el| {
        el.is("presence", ns::CLIENT)
            && el.attr("type").is_none()
            && el.attr("from").is_some_and(|f| f.starts_with("alice@"))
    })
    .await;
}

#[tokio::test]
async fn mutual_subscription_is_both_and_presence_flows_both_ways() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    subscribe(&mut alice, &mut bob).await;
    subscribe(&mut bob, &mut alice).await;
    assert_eq!(state(&mut alice, "bob").await, sub("both", None));
    assert_eq!(state(&mut bob, "alice").await, sub("both", None));

    alice.send("<presence><show>away</show><status>lunch</status></presence>").await;
    let p = bob.expect_presence_from(&alice, None).await;
    assert_eq!(p.child("show", ns::CLIENT).map(|s| s.text()).as_deref(), Some("away"), "{}", p.to_xml());
    bob.send("<presence><show>dnd</show></presence>").await;
    let p = alice.expect_presence_from(&bob, None).await;
    assert_eq!(p.child("show", ns::CLIENT).map(|s| s.text()).as_deref(), Some("dnd"), "{}", p.to_xml());

    // A contact logging in later sees the other's current presence (probe answered by the server).
    let mut bob2 = server.login_with("bob", Some("second"), true).await;
    let p = bob2.expect_presence_from(&alice, None).await;
    assert_eq!(p.child("show", ns::CLIENT).map(|s| s.text()).as_deref(), Some("away"), "{}", p.to_xml());
    alice.expect_presence_from(&bob2, None).await;
}

#[tokio::test]
async fn a_contact_going_away_is_announced_unavailable() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    subscribe(&mut alice, &mut bob).await;

    bob.send("<presence type='unavailable'/>").await;
    alice.expect_presence_from(&bob, Some("unavailable")).await;
    bob.send("<presence/>").await;
    alice.expect_presence_from(&bob, None).await;

    let bob_jid_holder = server.login_with("bob", Some("closing"), true).await;
    alice.expect_presence_from(&bob_jid_holder, None).await;
    let closing = bob_jid_holder.jid.clone();
    bob_jid_holder.close().await;
    alice.expect(|el| el.attr("from") == Some(&closing) && el.attr("type") == Some("unavailable")).await;

    // A socket dropped without </stream:stream> ends the same way.
    let dropped = bob.jid.clone();
    bob.drop_connection();
    alice.expect(|el| el.attr("from") == Some(&dropped) && el.attr("type") == Some("unavailable")).await;
}

#[tokio::test]
async fn a_pre_approved_subscription_is_approved_automatically() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    bob.roster().await;
    bob.send("<presence type='subscribed' to='alice@localhost'/>").await;
    let push = bob.expect_roster_push().await;
    let item = roster_item(&push, "alice@localhost").expect("pre-approved item pushed");
    assert_eq!(item.attr("approved"), Some("true"), "{}", push.to_xml());

    alice.send("<presence type='subscribe' to='bob@localhost'/>").await;
    alice.expect(subscription_from("bob", "subscribed")).await;
    alice.expect_presence_from(&bob, None).await;
    bob.expect_no("subscription request", subscription_from("alice", "subscribe")).await;
    assert_eq!(state(&mut alice, "bob").await, sub("to", None));
    assert_eq!(state(&mut bob, "alice").await, sub("from", None));
}

#[tokio::test]
async fn unsubscribe_and_unsubscribed_update_both_sides() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    subscribe(&mut alice, &mut bob).await;
    subscribe(&mut bob, &mut alice).await;

    // alice stops watching bob: she keeps sharing her presence with him.
    alice.send("<presence type='unsubscribe' to='bob@localhost'/>").await;
    bob.expect(subscription_from("alice", "unsubscribe")).await;
    alice.expect_presence_from(&bob, Some("unavailable")).await;
    assert_eq!(state(&mut alice, "bob").await, sub("from", None));
    assert_eq!(state(&mut bob, "alice").await, sub("to", None));

    // alice cancels bob's subscription to her.
    alice.send("<presence type='unsubscribed' to='bob@localhost'/>").await;
    bob.expect(subscription_from("alice", "unsubscribed")).await;
    bob.expect_presence_from(&alice, Some("unavailable")).await;
    assert_eq!(state(&mut alice, "bob").await, sub("none", None));
    assert_eq!(state(&mut bob, "alice").await, sub("none", None));

    // No presence flows any more.
    alice.send("<presence><show>chat</show></presence>").await;
    bob.expect_no("presence from alice", |el| el.attr("from") == Some(alice.jid.as_str())).await;
}

#[tokio::test]
async fn a_request_to_an_offline_contact_is_delivered_when_it_comes_online() {
    let server = TestServer::start().await;
    server.create_account("bob").await;
    let mut alice = server.login("alice").await;
    alice.send("<presence type='subscribe' to='bob@localhost'/>").await;
    alice.sync().await;

    let mut bob = server.login("bob").await;
    let request = bob.expect(subscription_from("alice", "subscribe")).await;
    assert_eq!(request.attr("to"), Some("bob@localhost"), "{}", request.to_xml());
    bob.send("<presence type='subscribed' to='alice@localhost'/>").await;
    alice.expect(subscription_from("bob", "subscribed")).await;
    alice.expect_presence_from(&bob, None).await;
    assert_eq!(state(&mut alice, "bob").await, sub("to", None));
}

#[tokio::test]
async fn a_denied_request_clears_the_pending_ask() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.send("<presence type='subscribe' to='bob@localhost'/>").await;
    bob.expect(subscription_from("alice", "subscribe")).await;
    bob.send("<presence type='unsubscribed' to='alice@localhost'/>").await;
    alice.expect(subscription_from("bob", "unsubscribed")).await;
    assert_eq!(state(&mut alice, "bob").await, sub("none", None));
    // bob's request bookkeeping is gone too: his next login is not asked again.
    bob.close().await;
    let mut bob = server.login("bob").await;
    bob.expect_no("a re-sent request", subscription_from("alice", "subscribe")).await;
}

#[tokio::test]
async fn removing_a_roster_item_cancels_both_subscriptions() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    subscribe(&mut alice, &mut bob).await;
    subscribe(&mut bob, &mut alice).await;

    let reply = alice
        .iq("<iq type='set' id='rm1'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query></iq>")
        .await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    // RFC 6121 §2.5.2: the contact gets unsubscribe and unsubscribed, and alice's unavailable presence.
    bob.expect(subscription_from("alice", "unsubscribe")).await;
    bob.expect(subscription_from("alice", "unsubscribed")).await;
    bob.expect_presence_from(&alice, Some("unavailable")).await;
    assert_eq!(state(&mut bob, "alice").await, sub("none", None));
    let roster = alice.roster().await;
    assert!(roster_item(&roster, "bob@localhost").is_none(), "{}", roster.to_xml());
}

#[tokio::test]
async fn initial_presence_is_broadcast_to_all_own_resources_including_the_sender() {
    // RFC 6121 §4.2.2: "The user's server MUST also broadcast initial presence from the user's newly available
    // resource to all of the user's available resources, including the resource that generated the presence
    // notification in the first place."
    let server = TestServer::start().await;
    let mut phone = server.login_with("alice", Some("phone"), true).await;
    let mut laptop = server.login_with("alice", Some("laptop"), false).await;
    laptop.send("<presence><status>here</status></presence>").await;
    let laptop_jid = laptop.jid.clone();
    phone.expect(|el| el.is("presence", ns::CLIENT) && el.attr("from") == Some(&laptop_jid)).await;
    laptop.expect(|el| el.is("presence", ns::CLIENT) && el.attr("from") == Some(&laptop_jid)).await;
}
