//! Limits enforced where input enters (RFC 6120 §4.9, §11.1) and isolation: one bad connection harms no other.

mod common;

use std::time::Duration;

use common::{has_body, Client, TestServer, QUIET};
use drupe_proto::xml::StreamEvent;

async fn chat_both_ways(alice: &mut Client, bob: &mut Client, tag: &str) {
    alice.say(&bob.jid, &format!("ping {tag}")).await;
    bob.expect(|el| has_body(el, &format!("ping {tag}"))).await;
    bob.say(&alice.jid, &format!("pong {tag}")).await;
    alice.expect(|el| has_body(el, &format!("pong {tag}"))).await;
}

#[tokio::test]
async fn malformed_xml_closes_only_that_stream() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    let mut mallory = server.login("mallory").await;
    chat_both_ways(&mut alice, &mut bob, "before").await;

    mallory.send("<message to='alice@localhost'><body>oops</bodyy></message>").await;
    mallory.expect_stream_error("not-well-formed").await;

    chat_both_ways(&mut alice, &mut bob, "after").await;
    alice.expect_no("anything from mallory", |el| has_body(el, "oops")).await;
    assert_eq!(server.session_count(), 2);
}

#[tokio::test]
async fn an_oversize_stanza_is_a_policy_violation() {
    let server = TestServer::start_with(|c| c.limits.max_stanza_bytes = 4096).await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    // Just under the limit passes.
    let fits = "a".repeat(3000);
    alice.say(&bob.jid, &fits).await;
    bob.expect(|el| has_body(el, &fits)).await;

    let big = "b".repeat(5000);
    alice.say(&bob.jid, &big).await;
    alice.expect_stream_error("policy-violation").await;
    bob.expect_no("the oversize message", |el| has_body(el, &big)).await;
}

#[tokio::test]
async fn an_oversize_stanza_made_of_many_small_parts_is_a_policy_violation() {
    let server = TestServer::start_with(|c| c.limits.max_stanza_bytes = 4096).await;
    let mut alice = server.login("alice").await;
    let parts = "<x xmlns='urn:example:x'>filler</x>".repeat(200);
    alice.send(format!("<message to='bob@localhost'>{parts}</message>")).await;
    alice.expect_stream_error("policy-violation").await;
}

#[tokio::test]
async fn before_authentication_a_stanza_may_be_no_larger_than_the_unauthenticated_limit() {
    // 20 KB of SASL is refused before login; the same 20 KB in a message is fine once logged in.
    let server = TestServer::start().await;
    let (mut conn, _) = server.unauthenticated().await;
    let filler = "A".repeat(20_000);
    conn.send_raw(format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{filler}</auth>")).await;
    conn.expect_stream_error("policy-violation").await;

    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.say(&bob.jid, &filler).await;
    bob.expect(|el| has_body(el, &filler)).await;
}

#[tokio::test]
async fn many_children_under_a_long_namespace_before_starttls_are_refused() {
    // The probe of issue 27: an 8,000-byte namespace and 60,000 empty children (248 KB) before STARTTLS.
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    conn.open().await;
    let mut stanza = format!("<message xmlns='urn:{}'>", "n".repeat(8000));
    stanza.push_str(&"<a/>".repeat(60_000));
    stanza.push_str("</message>");
    // The server closes as soon as the limit is crossed: the rest of the write may fail.
    let _ = conn.try_send_raw(stanza).await;
    let error = conn.expect_stream_error("policy-violation").await;
    // Refused for its size, before its end (not for arriving before STARTTLS).
    assert!(error.to_xml().contains("stanza too large"), "{}", error.to_xml());
    // Nobody else is affected.
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    chat_both_ways(&mut alice, &mut bob, "after the probe").await;
}

#[tokio::test]
async fn dtds_processing_instructions_and_comments_are_restricted_xml() {
    let server = TestServer::start().await;
    let inputs = [
        "<!DOCTYPE message [<!ENTITY x 'boom'>]>",
        "<?evil instruction?>",
        "<!-- a comment -->",
        "<message to='bob@localhost'><!-- inside --><body>x</body></message>",
    ];
    for input in inputs {
        let mut alice = server.login("alice").await;
        alice.send(input).await;
        let error = alice.conn.expect_stream_error_any().await;
        assert!(
            error.child("restricted-xml", common::ns::STREAM_ERRORS).is_some(),
            "{input}: expected restricted-xml, got {}",
            error.to_xml()
        );
    }
}

#[tokio::test]
async fn too_deep_nesting_is_a_policy_violation() {
    let server = TestServer::start_with(|c| c.limits.max_depth = 8).await;
    let mut alice = server.login("alice").await;
    let open: String = (0..20).map(|_| "<x xmlns='urn:example:x'>").collect();
    let close: String = (0..20).map(|_| "</x>").collect();
    alice.send(format!("<message to='bob@localhost'>{open}{close}</message>")).await;
    alice.expect_stream_error("policy-violation").await;
}

#[tokio::test]
async fn whitespace_keepalives_keep_an_idle_session_open() {
    let server = TestServer::start_with(|c| {
        c.c2s.ping_interval_secs = 0; // no server pings: the idle timeout applies
        c.c2s.idle_timeout_secs = 1;
    })
    .await;
    let mut quiet = server.login("quiet").await;
    let mut chatty = server.login("chatty").await;
    for _ in 0..10 {
        chatty.send(" ").await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    chatty.sync().await;
    // The control: the session that said nothing in that time was closed.
    quiet.expect_stream_error("connection-timeout").await;
}

#[tokio::test]
async fn a_connection_that_never_authenticates_times_out() {
    let server = TestServer::start_with(|c| c.c2s.auth_timeout_secs = 1).await;
    let mut conn = server.connect().await;
    conn.open().await;
    conn.expect_stream_error("connection-timeout").await;
    // Even one that never sends a stream header.
    let mut silent = server.connect().await;
    silent.expect_stream_error("connection-timeout").await;
}

#[tokio::test]
async fn connections_beyond_max_connections_wait_for_a_free_slot() {
    let server = TestServer::start_with(|c| c.c2s.max_connections = 2).await;
    let mut first = server.connect().await;
    first.open().await;
    let mut second = server.connect().await;
    second.open().await;

    let mut third = server.connect().await;
    third.open_raw(&common::header(common::DOMAIN)).await;
    let waiting = third.next_event_until(tokio::time::Instant::now() + QUIET).await;
    assert!(waiting.is_err(), "a third connection was served: {waiting:?}");

    first.send_raw("</stream:stream>").await;
    first.expect_closed().await;
    match third.next_event().await {
        Ok(StreamEvent::Open(_)) => {}
        other => panic!("the third connection was not served after a slot freed: {other:?}"),
    }
    // `second` still holds its slot: the server serves exactly max_connections at a time.
    second.send_raw("</stream:stream>").await;
    second.expect_closed().await;
}
