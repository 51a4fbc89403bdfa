//! Message routing between live sessions (RFC 6121 §8.5) and sender stamping (RFC 6120 §8.1.2.1).

mod common;

use common::{bare, error_condition, has_body, ns, Client, Element, TestServer};

/// A session of `name` with `resource` and, if `priority` is given, available presence with that priority.
async fn resource(server: &TestServer, name: &str, res: &str, priority: Option<i8>) -> Client {
    let mut c = server.login_with(name, Some(res), false).await;
    if let Some(p) = priority {
        c.send(format!("<presence><priority>{p}</priority></presence>")).await;
        c.sync().await;
    }
    c
}

fn is_message(el: &Element) -> bool {
    el.is("message", ns::CLIENT)
}

#[tokio::test]
async fn the_sender_is_stamped_whatever_from_the_client_claims() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    bob.send("<message from='mallory@localhost/evil' to='alice@localhost' type='chat'><body>trust me</body></message>")
        .await;
    let msg = alice.expect(|el| has_body(el, "trust me")).await;
    assert_eq!(msg.attr("from"), Some(bob.jid.as_str()), "{}", msg.to_xml());
    // The same with a from naming the recipient itself.
    bob.send(format!("<message from='{}' to='{}'><body>me</body></message>", alice.jid, alice.jid)).await;
    let msg = alice.expect(|el| has_body(el, "me")).await;
    assert_eq!(msg.attr("from"), Some(bob.jid.as_str()), "{}", msg.to_xml());
}

#[tokio::test]
async fn a_message_to_the_bare_jid_reaches_every_non_negative_available_resource() {
    let server = TestServer::start().await;
    let mut high = resource(&server, "alice", "high", Some(5)).await;
    let mut zero = resource(&server, "alice", "zero", Some(0)).await;
    let mut negative = resource(&server, "alice", "negative", Some(-1)).await;
    let mut silent = resource(&server, "alice", "silent", None).await;
    let mut bob = server.login("bob").await;
    bob.say(&bare("alice"), "to all").await;
    for c in [&mut high, &mut zero] {
        let msg = c.expect(|el| has_body(el, "to all")).await;
        assert_eq!(msg.attr("from"), Some(bob.jid.as_str()));
        assert_eq!(msg.attr("to"), Some("alice@localhost"), "the bare JID is kept: {}", msg.to_xml());
    }
    negative.expect_no("message", is_message).await;
    silent.expect_no("message", is_message).await;
    bob.expect_no("error", |el| el.attr("type") == Some("error")).await;
}

#[tokio::test]
async fn a_message_to_a_full_jid_reaches_only_that_resource() {
    let server = TestServer::start().await;
    let mut phone = resource(&server, "alice", "phone", Some(1)).await;
    let mut laptop = resource(&server, "alice", "laptop", Some(1)).await;
    let mut bob = server.login("bob").await;
    bob.say(&phone.jid, "just the phone").await;
    phone.expect(|el| has_body(el, "just the phone")).await;
    laptop.expect_no("message", is_message).await;
    // A full JID with negative priority or no presence at all still gets messages addressed to it.
    let mut silent = resource(&server, "alice", "silent", None).await;
    bob.say(&silent.jid, "to the silent one").await;
    silent.expect(|el| has_body(el, "to the silent one")).await;
}

#[tokio::test]
async fn a_message_to_an_unknown_resource_of_an_online_user_goes_to_the_bare_jid() {
    let server = TestServer::start().await;
    let mut phone = resource(&server, "alice", "phone", Some(1)).await;
    let mut laptop = resource(&server, "alice", "laptop", Some(0)).await;
    let mut bob = server.login("bob").await;
    bob.say("alice@localhost/gone", "where are you").await;
    phone.expect(|el| has_body(el, "where are you")).await;
    laptop.expect(|el| has_body(el, "where are you")).await;
    bob.expect_no("error", |el| el.attr("type") == Some("error")).await;
}

#[tokio::test]
async fn a_headline_to_an_offline_user_is_dropped() {
    let server = TestServer::start().await;
    server.create_account("alice").await;
    let mut bob = server.login("bob").await;
    bob.send("<message type='headline' to='alice@localhost'><body>news</body></message>").await;
    bob.say(&bare("alice"), "kept").await;
    bob.sync().await;
    bob.expect_no("error", |el| el.attr("type") == Some("error")).await;
    let mut alice = server.login("alice").await;
    alice.expect(|el| has_body(el, "kept")).await;
    alice.expect_no("headline", |el| has_body(el, "news")).await;
}

/// The error bounced for `body` sent by `from`, with the address and id that identify the case removed.
async fn bounce(from: &mut Client, to: &str, body: &str) -> Element {
    let id = from.id();
    from.send(format!("<message id='{id}' type='chat' to='{to}'><body>{body}</body></message>")).await;
    let error = from.expect(|el| el.is("message", ns::CLIENT) && el.attr("id") == Some(id.as_str())).await;
    assert_eq!(error.attr("type"), Some("error"), "{}", error.to_xml());
    assert_eq!(error.attr("from"), Some(to), "{}", error.to_xml());
    assert_eq!(error.attr("to"), Some(from.jid.as_str()), "{}", error.to_xml());
    error.child("error", ns::CLIENT).cloned().expect("an <error/> child")
}

#[tokio::test]
async fn a_message_to_a_missing_account_is_service_unavailable_revealing_nothing() {
    let server = TestServer::start_with(|c| c.limits.max_offline_messages = 1).await;
    server.create_account("carol").await;
    let mut bob = server.login("bob").await;

    let missing = bounce(&mut bob, "nobody@localhost", "hello?").await;
    assert_eq!(error_condition_of(&missing).as_deref(), Some("service-unavailable"), "{}", missing.to_xml());
    assert!(missing.child("text", ns::STANZA_ERRORS).is_none(), "no explanation: {}", missing.to_xml());

    // carol exists but is offline with a full store: the bounce must look exactly the same.
    bob.say("carol@localhost", "first, stored").await;
    bob.sync().await;
    let full = bounce(&mut bob, "carol@localhost", "second, refused").await;
    assert_eq!(full, missing, "the two bounces differ: {} vs {}", full.to_xml(), missing.to_xml());
}

fn error_condition_of(error: &Element) -> Option<String> {
    let wrapper = Element::new("message", ns::CLIENT).with_child(error.clone());
    error_condition(&wrapper)
}

#[tokio::test]
async fn markup_characters_survive_routing() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    let id = "q&amp;a";
    bob.send(format!(
        "<message id='{id}' to='{}' type='chat'><body>a &lt; b &amp;&amp; c &gt; d, \"quoted\" &apos;x&apos; é😀</body>\
         <x xmlns='urn:example:ext' attr='&lt;&amp;&quot;'/></message>",
        alice.jid
    ))
    .await;
    let msg = alice.expect_message_from(&bob).await;
    assert_eq!(msg.attr("id"), Some("q&a"));
    let body = msg.child("body", ns::CLIENT).map(|b| b.text()).unwrap_or_default();
    assert_eq!(body, "a < b && c > d, \"quoted\" 'x' é😀");
    assert_eq!(msg.child("x", "urn:example:ext").and_then(|x| x.attr("attr")), Some("<&\""), "{}", msg.to_xml());
}
