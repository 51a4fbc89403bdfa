//! XEP-0198 Stream Management: acknowledgements both ways, resumption with exactly-once redelivery, its refusals,
//! and what happens to unacknowledged messages when nobody resumes.

mod common;

use std::time::Duration;

use common::{bare, error_condition, has_body, ns, Client, Conn, Element, TestServer, DOMAIN, QUIET, SM};

/// The bodies of the messages among `stanzas`, in order.
fn bodies(stanzas: &[Element]) -> Vec<String> {
    stanzas
        .iter()
        .filter(|el| el.is("message", ns::CLIENT))
        .filter_map(|el| el.child("body", ns::CLIENT).map(Element::text))
        .collect()
}

fn is_message(el: &Element) -> bool {
    el.is("message", ns::CLIENT)
}

/// Logs `name` in on `resource` with stream management and resumption enabled; returns the client and the
/// resumption id.
async fn login_resumable(server: &TestServer, name: &str, resource: &str) -> (Client, String) {
    let mut client = server.login_with(name, Some(resource), true).await;
    let enabled = client.enable_sm(true).await;
    assert!(enabled.is("enabled", SM), "enable refused: {}", enabled.to_xml());
    let id = enabled.attr("id").unwrap_or_else(|| panic!("no resumption id: {}", enabled.to_xml())).to_owned();
    // `h` counts from the enable on.
    client.received = 0;
    (client, id)
}

/// A new authenticated connection for `name` that asks to resume `previd` having handled `h` stanzas; returns the
/// connection and the server's `<resumed/>` or `<failed/>`.
async fn resume(server: &TestServer, name: &str, previd: &str, h: u32) -> (Conn, Element) {
    let mut conn = server.authenticated(name).await;
    conn.send_raw(format!("<resume xmlns='{SM}' previd='{previd}' h='{h}'/>")).await;
    let answer = conn.next_element().await;
    (conn, answer)
}

fn assert_failed(answer: &Element, condition: &str) {
    assert!(answer.is("failed", SM), "expected <failed/>, got {}", answer.to_xml());
    assert!(answer.child(condition, ns::STANZA_ERRORS).is_some(), "expected {condition}: {}", answer.to_xml());
}

#[tokio::test]
async fn enable_with_and_without_resumption() {
    let server = TestServer::start().await;
    let mut plain = server.login_with("alice", Some("plain"), true).await;
    let enabled = plain.enable_sm(false).await;
    assert!(enabled.is("enabled", SM), "{}", enabled.to_xml());
    assert_eq!(enabled.attr("id"), None, "no resumption was asked for: {}", enabled.to_xml());
    // Enabling twice is an error (XEP-0198 §3).
    assert_failed(&plain.enable_sm(false).await, "unexpected-request");

    let mut resumable = server.login_with("alice", Some("resumable"), true).await;
    let enabled = resumable.enable_sm(true).await;
    assert!(enabled.is("enabled", SM), "{}", enabled.to_xml());
    assert_eq!(enabled.attr("resume"), Some("true"), "{}", enabled.to_xml());
    assert!(enabled.attr("id").is_some_and(|id| !id.is_empty()), "{}", enabled.to_xml());
}

#[tokio::test]
async fn a_request_is_answered_with_the_count_of_handled_stanzas() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    server.login("bob").await;
    alice.enable_sm(false).await;
    alice.say(&bare("bob"), "one").await;
    alice.say(&bare("bob"), "two").await;
    alice.sync().await; // a third stanza, and all three handled
    alice.send(format!("<r xmlns='{SM}'/>")).await;
    let a = alice.expect(|el| el.is("a", SM)).await;
    assert_eq!(a.attr("h"), Some("3"), "{}", a.to_xml());
    alice.send("<presence><show>away</show></presence>").await;
    alice.send(format!("<r xmlns='{SM}'/>")).await;
    let a = alice.expect(|el| el.is("a", SM)).await;
    assert_eq!(a.attr("h"), Some("4"), "{}", a.to_xml());
}

#[tokio::test]
async fn the_server_requests_an_ack_after_request_ack_every_stanzas() {
    let server = TestServer::start_with(|c| c.sm.request_ack_every = 3).await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.enable_sm(false).await;
    for round in 0..2 {
        for i in 1..=3 {
            bob.say(&alice.jid, &format!("r{round}-{i}")).await;
        }
        // In order on the wire: three messages, then the request (not before the third).
        let mut messages = 0;
        loop {
            let el = alice.conn.next_element().await;
            if el.is("r", SM) {
                break;
            }
            assert!(is_message(&el), "unexpected {}", el.to_xml());
            messages += 1;
        }
        assert_eq!(messages, 3, "<r/> after {messages} of 3 unacknowledged stanzas");
        alice.send(format!("<a xmlns='{SM}' h='{}'/>", 3 * (round + 1))).await;
    }
}

#[tokio::test]
async fn acknowledging_more_than_was_sent_is_a_stream_error() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.enable_sm(false).await;
    bob.say(&alice.jid, "only one").await;
    alice.expect(|el| has_body(el, "only one")).await;
    alice.send(format!("<a xmlns='{SM}' h='5'/>")).await;
    alice.expect_stream_error("undefined-condition").await;
}

#[tokio::test]
async fn resumption_delivers_unacknowledged_and_gap_messages_exactly_once() {
    let server = TestServer::start().await;
    let (mut alice, previd) = login_resumable(&server, "alice", "phone").await;
    let mut bob = server.login("bob").await;
    let jid = alice.jid.clone();
    alice.say(&bob.jid, "from alice before the drop").await;
    bob.expect(|el| has_body(el, "from alice before the drop")).await;

    let before = alice.received;
    for body in ["m1", "m2", "m3"] {
        bob.say(&jid, body).await;
    }
    for body in ["m1", "m2", "m3"] {
        alice.expect(|el| has_body(el, body)).await;
    }
    alice.drop_connection();
    for body in ["g1", "g2", "g3"] {
        bob.say(&jid, body).await;
    }
    bob.sync().await;

    // The client handled m1 only: m2 and m3 come again, then what arrived during the gap.
    let (conn, resumed) = resume(&server, "alice", &previd, before + 1).await;
    assert!(resumed.is("resumed", SM), "resumption refused: {}", resumed.to_xml());
    assert_eq!(resumed.attr("previd"), Some(previd.as_str()), "{}", resumed.to_xml());
    assert_eq!(resumed.attr("h"), Some("1"), "alice sent one stanza after enabling: {}", resumed.to_xml());
    let mut alice = Client::bound(conn, "alice", &jid);
    let got = alice.collect(QUIET).await;
    assert_eq!(bodies(&got), ["m2", "m3", "g1", "g2", "g3"], "each exactly once, in order");
    bob.expect_no("error", |el| el.attr("type") == Some("error")).await;

    // The resumed session is the same session: routing, counters and acknowledgements go on.
    bob.say(&jid, "after").await;
    alice.expect(|el| has_body(el, "after")).await;
    // h goes on from the old stream's count: m1 acknowledged before, then five resent and one new.
    alice.send(format!("<a xmlns='{SM}' h='{}'/>", before + 7)).await;
    alice.send(format!("<r xmlns='{SM}'/>")).await;
    let a = alice.expect(|el| el.is("a", SM)).await;
    assert_eq!(a.attr("h"), Some("1"), "{}", a.to_xml());
    assert_eq!(server.session_count(), 2, "alice and bob, one session each");
}

#[tokio::test]
async fn resuming_an_unknown_id_fails_with_item_not_found() {
    let server = TestServer::start().await;
    let (_conn, answer) = resume(&server, "alice", "no-such-id", 0).await;
    assert_failed(&answer, "item-not-found");
}

#[tokio::test]
async fn another_user_cannot_resume_a_session() {
    let server = TestServer::start().await;
    let (mut alice, previd) = login_resumable(&server, "alice", "phone").await;
    let (mut conn, answer) = resume(&server, "bob", &previd, 0).await;
    assert_failed(&answer, "item-not-found");
    // Bob's connection may still bind normally, and alice's session is untouched.
    conn.bind(Some("desk")).await.expect("bob binds after the refused resumption");
    alice.sync().await;
}

#[tokio::test]
async fn unacknowledged_messages_go_offline_when_the_resumption_timeout_passes() {
    let server = TestServer::start_with(|c| c.sm.resume_timeout_secs = 1).await;
    let (mut alice, previd) = login_resumable(&server, "alice", "phone").await;
    let mut bob = server.login("bob").await;
    let before = alice.received;
    bob.say(&alice.jid, "unacked").await;
    alice.expect(|el| has_body(el, "unacked")).await;
    alice.drop_connection();
    bob.say(&bare("alice"), "during the gap").await;
    bob.sync().await;

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_conn, answer) = resume(&server, "alice", &previd, before).await;
    assert_failed(&answer, "item-not-found");
    bob.expect_no("error", |el| el.attr("type") == Some("error")).await;

    let mut alice = server.login_with("alice", Some("laptop"), true).await;
    let got = alice.collect(QUIET).await;
    assert_eq!(bodies(&got), ["unacked", "during the gap"], "stored once each, in order");
    for msg in got.iter().filter(|el| is_message(el)) {
        let delay = msg.child("delay", ns::DELAY).unwrap_or_else(|| panic!("no <delay/>: {}", msg.to_xml()));
        assert_eq!(delay.attr("from"), Some(DOMAIN), "{}", msg.to_xml());
        assert_eq!(error_condition(msg), None);
    }
}

#[tokio::test]
async fn enabling_before_bind_fails_with_unexpected_request() {
    let server = TestServer::start().await;
    let mut conn = server.authenticated("alice").await;
    conn.send_raw(format!("<enable xmlns='{SM}' resume='true'/>")).await;
    assert_failed(&conn.next_element().await, "unexpected-request");
    // The stream goes on: binding still works.
    conn.bind(Some("later")).await.expect("bind after the refused enable");
}

#[tokio::test]
async fn a_resumption_closes_the_still_open_old_connection() {
    let server = TestServer::start().await;
    let (mut old, previd) = login_resumable(&server, "alice", "phone").await;
    let jid = old.jid.clone();
    let mut bob = server.login("bob").await;

    let (conn, resumed) = resume(&server, "alice", &previd, 0).await;
    assert!(resumed.is("resumed", SM), "resumption refused: {}", resumed.to_xml());
    assert!(old.conn.closed_within(common::WAIT).await, "the replaced connection stays open");

    let mut alice = Client::bound(conn, "alice", &jid);
    bob.say(&jid, "to the new connection").await;
    alice.expect(|el| has_body(el, "to the new connection")).await;
    assert_eq!(server.session_count(), 2);
}

#[tokio::test]
async fn a_server_ping_counts_as_a_stanza_and_silence_after_it_drops_the_connection() {
    let server = TestServer::start_with(|c| {
        c.c2s.ping_interval_secs = 1;
        c.c2s.ping_timeout_secs = 1;
    })
    .await;
    let (mut alice, previd) = login_resumable(&server, "alice", "phone").await;
    // Silent for the ping interval: the server pings (XEP-0199 §4.2).
    let ping = alice
        .expect_within(Duration::from_secs(3), |el| el.is("iq", ns::CLIENT) && el.child("ping", ns::PING).is_some())
        .await;
    let id = ping.attr("id").unwrap_or_default().to_owned();
    alice.send(format!("<iq type='result' id='{id}'/>")).await;
    // The ping was a stanza: acknowledging it (and everything else read) is not "too high".
    alice.ack_all().await;
    alice.send(format!("<r xmlns='{SM}'/>")).await;
    let a = alice.expect(|el| el.is("a", SM)).await;
    assert!(a.attr("h").is_some(), "{}", a.to_xml());
    // Now stay silent through a ping and its timeout: the connection counts as dead, and the session waits to be
    // resumed (the stanza count carries on).
    alice
        .expect_within(Duration::from_secs(3), |el| el.is("iq", ns::CLIENT) && el.child("ping", ns::PING).is_some())
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let h = alice.received;
    let (_conn, answer) = resume(&server, "alice", &previd, h).await;
    assert!(answer.is("resumed", SM), "the session was parked for resumption: {}", answer.to_xml());
}

#[tokio::test]
async fn room_messages_kept_for_resumption_are_delivered_once() {
    let server = TestServer::start().await;
    let room = common::muc::room("lobby");
    let (mut alice, previd) = login_resumable(&server, "alice", "phone").await;
    alice.create("lobby", "alice").await;
    let mut bob = server.login("bob").await;
    bob.join("lobby", "bob").await;
    bob.send(format!("<message type='groupchat' to='{room}'><body>before</body></message>")).await;
    alice.expect(|el| has_body(el, "before")).await;
    // Unacknowledged (one shared serialization in alice's queue), then gone; more arrives during the gap.
    let h = alice.received;
    alice.drop_connection();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for body in ["gap-1", "gap-2"] {
        bob.send(format!("<message type='groupchat' to='{room}'><body>{body}</body></message>")).await;
    }
    bob.sync().await;
    let (conn, answer) = resume(&server, "alice", &previd, h.saturating_sub(1)).await;
    assert!(answer.is("resumed", SM), "{}", answer.to_xml());
    let jid = format!("{}/phone", bare("alice"));
    let got = Client::bound(conn, "alice", &jid).collect(QUIET).await;
    let bodies = bodies(&got);
    assert_eq!(bodies, ["before", "gap-1", "gap-2"], "each exactly once, in order");
    for el in got.iter().filter(|el| is_message(el)) {
        assert_eq!(el.attr("to"), Some(jid.as_str()), "{}", el.to_xml());
    }
}

/// Sends `count` messages to bob and an `<r/>` in one write, then checks the `<a h/>` counts all of them and that
/// another session finds all of them in the archive as soon as it arrives.
async fn burst_then_request(max_pending_commits: usize, count: usize) {
    let server = TestServer::start_with(|c| c.c2s.max_pending_commits = max_pending_commits).await;
    let mut alice = server.login("alice").await;
    let _bob = server.login("bob").await;
    let mut reader = server.login_with("alice", Some("reader"), false).await;
    alice.enable_sm(false).await;
    let mut burst = String::new();
    for i in 0..count {
        burst.push_str(&format!("<message type='chat' to='{}'><body>m{i}</body></message>", bare("bob")));
    }
    burst.push_str(&format!("<r xmlns='{SM}'/>"));
    alice.send(burst).await;
    // The session reads on while the archive writes commit (c2s/durable.rs): the answer waits for all of them.
    let a = alice.expect(|el| el.is("a", SM)).await;
    assert_eq!(a.attr("h"), Some(count.to_string().as_str()), "{}", a.to_xml());
    // Acknowledged means committed: a session with no writes of its own pending reads them all at once.
    let (results, fin) = reader.mam("<set xmlns='http://jabber.org/protocol/rsm'><max>1000</max></set>").await;
    assert_eq!(fin.attr("type"), Some("result"), "{}", fin.to_xml());
    assert_eq!(results.len(), count, "archived when acknowledged");
}

#[tokio::test]
async fn a_request_after_a_burst_is_answered_once_every_message_is_archived() {
    burst_then_request(16, 100).await;
}

#[tokio::test]
async fn with_one_pending_commit_allowed_a_burst_is_still_counted_and_archived() {
    burst_then_request(1, 50).await;
}

#[tokio::test]
async fn stanzas_between_messages_are_counted_in_order_and_an_iq_sees_the_messages_before_it() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.enable_sm(false).await;
    let to = bare("bob");
    let mut burst = String::new();
    for i in 0..10 {
        burst.push_str(&format!("<message type='chat' to='{to}'><body>a{i}</body></message>"));
        // Requests in the middle of the burst: each answered, in order, with what came before it.
        burst.push_str(&format!("<r xmlns='{SM}'/>"));
    }
    // A MAM query right behind the messages (it waits for their archive writes) and one more request.
    let rsm = "<set xmlns='http://jabber.org/protocol/rsm'><max>100</max></set>";
    burst.push_str(&format!(
        "<iq type='set' id='q1'><query xmlns='{}' queryid='q1'>{rsm}</query></iq><r xmlns='{SM}'/>",
        common::MAM
    ));
    alice.send(burst).await;
    let mut answers = Vec::new();
    let mut archived = 0;
    loop {
        let el = alice.expect(|el| el.is("a", SM) || el.is("iq", ns::CLIENT) || el.is("message", ns::CLIENT)).await;
        if el.is("a", SM) {
            answers.push(el.attr("h").and_then(|h| h.parse::<u32>().ok()).expect("numeric h"));
            if answers.len() == 11 {
                break;
            }
        } else if el.is("iq", ns::CLIENT) {
            assert_eq!(el.attr("type"), Some("result"), "{}", el.to_xml());
        } else if el.child("result", common::MAM).is_some() {
            archived += 1;
        }
    }
    // The i-th request is answered once the i messages before it are counted (several may be counted at once),
    // and before the query is handled; the last one counts the query too.
    for (i, h) in answers[..10].iter().enumerate() {
        assert!((i as u32 + 1..=10).contains(h), "answer {i} has h={h}: {answers:?}");
    }
    assert!(answers.windows(2).all(|w| w[0] <= w[1]), "{answers:?}");
    assert_eq!(answers[10], 11, "{answers:?}");
    assert_eq!(archived, 10, "the query saw every message sent before it");
    let got = bodies(&bob.collect(QUIET).await);
    assert_eq!(got, (0..10).map(|i| format!("a{i}")).collect::<Vec<_>>(), "delivered in order");
}
