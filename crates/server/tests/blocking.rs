//! XEP-0191 Blocking Command: the list and its pushes, and what a block keeps out: messages both ways (with the
//! right errors), archiving and offline storage of blocked messages, presence, and whole domains.

mod common;

use common::{bare, error_condition, has_body, ns, Client, Element, TestServer, QUIET};

const BLOCKING: &str = "urn:xmpp:blocking";
const BLOCKED: &str = "urn:xmpp:blocking:errors";

fn items(payload: &Element) -> Vec<String> {
    payload.children().filter(|i| i.is("item", BLOCKING)).filter_map(|i| i.attr("jid")).map(str::to_owned).collect()
}

async fn blocklist(c: &mut Client) -> Vec<String> {
    let id = c.id();
    let reply = c.iq(&format!("<iq type='get' id='{id}'><blocklist xmlns='{BLOCKING}'/></iq>")).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let mut list = items(reply.child("blocklist", BLOCKING).expect("<blocklist/>"));
    list.sort();
    list
}

/// `<block/>` or `<unblock/>` of `jids` (none: unblock everything); expects success.
async fn change(c: &mut Client, kind: &str, jids: &[&str]) {
    let id = c.id();
    let payload: String = jids.iter().map(|j| format!("<item jid='{j}'/>")).collect();
    let reply = c.iq(&format!("<iq type='set' id='{id}'><{kind} xmlns='{BLOCKING}'>{payload}</{kind}></iq>")).await;
    assert_eq!(reply.attr("type"), Some("result"), "{kind}: {}", reply.to_xml());
}

/// Expects the push of `kind` listing exactly `jids`.
async fn expect_push(c: &mut Client, kind: &str, jids: &[&str]) {
    let push = c.expect(|el| el.is("iq", ns::CLIENT) && el.child(kind, BLOCKING).is_some()).await;
    assert_eq!(push.attr("type"), Some("set"), "{}", push.to_xml());
    let mut got = items(push.child(kind, BLOCKING).expect("payload"));
    got.sort();
    assert_eq!(got, jids, "{}", push.to_xml());
}

fn is_error(el: &Element) -> bool {
    el.attr("type") == Some("error")
}

#[tokio::test]
async fn block_unblock_and_unblock_all_are_pushed_to_every_resource() {
    let server = TestServer::start().await;
    let mut phone = server.login_with("alice", Some("phone"), true).await;
    let mut laptop = server.login_with("alice", Some("laptop"), true).await;
    assert!(blocklist(&mut phone).await.is_empty());

    change(&mut phone, "block", &["bob@localhost", "carol@localhost"]).await;
    for c in [&mut phone, &mut laptop] {
        expect_push(c, "block", &["bob@localhost", "carol@localhost"]).await;
    }
    assert_eq!(blocklist(&mut laptop).await, ["bob@localhost", "carol@localhost"]);

    change(&mut laptop, "unblock", &["bob@localhost"]).await;
    for c in [&mut phone, &mut laptop] {
        expect_push(c, "unblock", &["bob@localhost"]).await;
    }
    assert_eq!(blocklist(&mut phone).await, ["carol@localhost"]);

    change(&mut phone, "block", &["dave@localhost"]).await;
    change(&mut phone, "unblock", &[]).await;
    for c in [&mut phone, &mut laptop] {
        expect_push(c, "block", &["dave@localhost"]).await;
        expect_push(c, "unblock", &[]).await;
    }
    assert!(blocklist(&mut laptop).await.is_empty(), "unblock with no items empties the list");
    // The list is stored, not only cached.
    let server = server.restart().await;
    let mut alice = server.login("alice").await;
    assert!(blocklist(&mut alice).await.is_empty());
}

#[tokio::test]
async fn messages_are_refused_both_ways() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    change(&mut alice, "block", &["bob@localhost"]).await;

    bob.say(&alice.jid, "let me in").await;
    let bounce = bob.expect(is_error).await;
    assert_eq!(error_condition(&bounce).as_deref(), Some("service-unavailable"), "{}", bounce.to_xml());
    alice.expect_no("message from a blocked contact", |el| el.is("message", ns::CLIENT)).await;

    alice.say(&bare("bob"), "do not send").await;
    let refusal = alice.expect(is_error).await;
    assert_eq!(error_condition(&refusal).as_deref(), Some("not-acceptable"), "{}", refusal.to_xml());
    let error = refusal.child("error", ns::CLIENT).expect("<error/>");
    assert!(error.child("blocked", BLOCKED).is_some(), "no <blocked/>: {}", refusal.to_xml());
    bob.expect_no("message from the blocking user", |el| has_body(el, "do not send")).await;

    change(&mut alice, "unblock", &["bob@localhost"]).await;
    bob.say(&alice.jid, "now?").await;
    alice.expect(|el| has_body(el, "now?")).await;
}

#[tokio::test]
async fn blocked_messages_are_neither_archived_nor_stored_offline() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    change(&mut alice, "block", &["bob@localhost"]).await;
    let mut bob = server.login("bob").await;
    bob.say(&bare("alice"), "while online").await;
    bob.expect(is_error).await;
    expect_push(&mut alice, "block", &["bob@localhost"]).await;
    alice.close().await;
    bob.say(&bare("alice"), "while offline").await;
    let bounce = bob.expect(is_error).await;
    assert_eq!(error_condition(&bounce).as_deref(), Some("service-unavailable"), "{}", bounce.to_xml());

    let mut alice = server.login_with("alice", Some("again"), false).await;
    change(&mut alice, "unblock", &[]).await;
    alice.send("<presence/>").await;
    alice.expect_no("stored blocked message", |el| el.is("message", ns::CLIENT)).await;
    let (results, fin) = alice.mam("").await;
    assert_eq!(fin.attr("type"), Some("result"), "{}", fin.to_xml());
    assert!(results.is_empty(), "archived: {:?}", results.iter().map(Element::to_xml).collect::<Vec<_>>());
    // Nor in the sender's archive.
    let (results, _) = bob.mam("").await;
    assert!(results.is_empty(), "archived: {:?}", results.iter().map(Element::to_xml).collect::<Vec<_>>());
}

#[tokio::test]
async fn presence_of_a_blocked_contact_is_not_delivered() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.expect_presence_from(&bob, None).await;
    bob.expect_presence_from(&alice, None).await;
    change(&mut alice, "block", &["bob@localhost"]).await;
    // Blocking hides the user from the contact (XEP-0191 §3.3).
    bob.expect_presence_from(&alice, Some("unavailable")).await;

    bob.send("<presence><status>see me</status></presence>").await;
    bob.sync().await;
    alice
        .expect_no("presence from a blocked contact", |el| {
            el.is("presence", ns::CLIENT) && el.attr("from").is_some_and(|f| f.starts_with("bob@"))
        })
        .await;
    alice.send("<presence><status>new status</status></presence>").await;
    bob.expect_no("presence from the blocking user", |el| {
        el.is("presence", ns::CLIENT) && el.attr("from").is_some_and(|f| f.starts_with("alice@"))
    })
    .await;
}

#[tokio::test]
async fn a_domain_block_covers_every_account_there() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    let mut carol = server.login("carol").await;
    change(&mut alice, "block", &["localhost"]).await;
    for sender in [&mut bob, &mut carol] {
        sender.say(&alice.jid, "from the blocked domain").await;
        let bounce = sender.expect(is_error).await;
        assert_eq!(error_condition(&bounce).as_deref(), Some("service-unavailable"), "{}", bounce.to_xml());
    }
    alice.say(&bare("carol"), "out").await;
    let refusal = alice.expect(is_error).await;
    assert_eq!(error_condition(&refusal).as_deref(), Some("not-acceptable"), "{}", refusal.to_xml());
    alice.expect_no("message", |el| el.is("message", ns::CLIENT) && !is_error(el)).await;

    // A remote domain: refused as blocked before federation is even considered.
    change(&mut alice, "block", &["evil.example"]).await;
    alice.say("mallory@evil.example", "no").await;
    let refusal = alice.expect(|el| is_error(el) && el.attr("from") == Some("mallory@evil.example")).await;
    let error = refusal.child("error", ns::CLIENT).expect("<error/>");
    assert!(error.child("blocked", BLOCKED).is_some(), "{}", refusal.to_xml());
    alice.collect(QUIET).await;
}
