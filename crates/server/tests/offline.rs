//! Offline storage (XEP-0160) with delay stamps (XEP-0203): kept in order, across restarts, delivered once, bounded.

mod common;

use common::{bare, error_condition, ns, Client, Element, TestServer, DOMAIN, QUIET};

fn is_message(el: &Element) -> bool {
    el.is("message", ns::CLIENT)
}

/// Expects the stored chat messages `bodies`, in this order, each from `sender` and stamped with a delay.
async fn expect_stored(alice: &mut Client, sender: &str, bodies: &[&str]) {
    for body in bodies {
        let msg = alice.expect(is_message).await;
        let got = msg.child("body", ns::CLIENT).map(|b| b.text()).unwrap_or_default();
        assert_eq!(&got, body, "out of order or unexpected: {}", msg.to_xml());
        assert_eq!(msg.attr("from"), Some(sender), "{}", msg.to_xml());
        let delay = msg.child("delay", ns::DELAY).unwrap_or_else(|| panic!("no <delay/>: {}", msg.to_xml()));
        assert_eq!(delay.attr("from"), Some(DOMAIN), "{}", msg.to_xml());
        let stamp = delay.attr("stamp").expect("stamp");
        assert!(stamp.len() >= 20 && stamp.ends_with('Z') && stamp.contains('T'), "XEP-0082 stamp: {stamp}");
    }
}

#[tokio::test]
async fn stored_messages_arrive_in_order_with_delay_on_initial_presence() {
    let server = TestServer::start().await;
    server.create_account("alice").await;
    let mut bob = server.login("bob").await;
    for body in ["one", "two", "three"] {
        bob.say(&bare("alice"), body).await;
    }
    bob.sync().await;
    bob.expect_no("error", |el| el.attr("type") == Some("error")).await;

    // Bound but not yet available: nothing yet (XEP-0160 §3: delivery on available presence).
    let mut alice = server.login_with("alice", Some("home"), false).await;
    alice.expect_nothing(QUIET).await;
    alice.send("<presence/>").await;
    expect_stored(&mut alice, &bob.jid, &["one", "two", "three"]).await;
}

#[tokio::test]
async fn stored_messages_survive_a_restart() {
    let server = TestServer::start().await;
    server.create_account("alice").await;
    let mut bob = server.login("bob").await;
    let sender = bob.jid.clone();
    bob.say(&bare("alice"), "before restart 1").await;
    bob.say(&bare("alice"), "before restart 2").await;
    bob.sync().await;
    drop(bob);

    let server = server.restart().await;
    let mut alice = server.login("alice").await;
    expect_stored(&mut alice, &sender, &["before restart 1", "before restart 2"]).await;
}

#[tokio::test]
async fn stored_messages_are_delivered_once() {
    let server = TestServer::start().await;
    server.create_account("alice").await;
    let mut bob = server.login("bob").await;
    bob.say(&bare("alice"), "only once").await;
    bob.sync().await;

    let mut alice = server.login("alice").await;
    expect_stored(&mut alice, &bob.jid, &["only once"]).await;
    alice.close().await;

    let mut alice = server.login("alice").await;
    alice.expect_no("stored message", is_message).await;
    // Also not after a restart.
    let server = server.restart().await;
    let mut alice = server.login("alice").await;
    alice.expect_no("stored message", is_message).await;
}

#[tokio::test]
async fn a_full_offline_store_bounces_with_service_unavailable() {
    let server = TestServer::start_with(|c| c.limits.max_offline_messages = 2).await;
    server.create_account("alice").await;
    let mut bob = server.login("bob").await;
    bob.say(&bare("alice"), "kept 1").await;
    bob.say(&bare("alice"), "kept 2").await;
    bob.send("<message id='over' type='chat' to='alice@localhost'><body>too many</body></message>").await;
    let error = bob.expect(|el| el.attr("id") == Some("over")).await;
    assert_eq!(error.attr("type"), Some("error"), "{}", error.to_xml());
    assert_eq!(error_condition(&error).as_deref(), Some("service-unavailable"), "{}", error.to_xml());

    let mut alice = server.login("alice").await;
    expect_stored(&mut alice, &bob.jid, &["kept 1", "kept 2"]).await;
    alice.expect_no("the refused message", |el| common::has_body(el, "too many")).await;
}

#[tokio::test]
async fn messages_queued_for_a_session_that_ends_are_stored() {
    let server = TestServer::start().await;
    let mut bob = server.login("bob").await;
    let alice = server.login("alice").await;
    alice.close().await;
    bob.say(&bare("alice"), "after you left").await;
    bob.sync().await;
    let mut alice = server.login("alice").await;
    expect_stored(&mut alice, &bob.jid, &["after you left"]).await;
}

#[tokio::test]
async fn stored_messages_wait_for_non_negative_presence() {
    let server = TestServer::start().await;
    server.create_account("alice").await;
    let mut bob = server.login("bob").await;
    bob.say(&bare("alice"), "for a real resource").await;
    bob.sync().await;

    // XEP-0160 §3: stored messages go to the resource that next sends *non-negative* available presence.
    let mut alice = server.login_with("alice", Some("bot"), false).await;
    alice.send("<presence><priority>-1</priority></presence>").await;
    alice.sync().await;
    alice.expect_no("stored message at negative priority", is_message).await;
    alice.send("<presence><priority>1</priority></presence>").await;
    expect_stored(&mut alice, &bob.jid, &["for a real resource"]).await;
}
