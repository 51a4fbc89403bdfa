//! XEP-0352 Client State Indication: an inactive client is spared presence churn (only the newest presence per
//! contact, once it is active again) but still gets chat messages at once; and how many bytes that saves.

mod common;

use std::collections::HashMap;
use std::time::Instant;

use common::{has_body, ns, Client, Element, TestServer, QUIET};

const CSI: &str = "urn:xmpp:csi:0";

fn is_presence(el: &Element) -> bool {
    el.is("presence", ns::CLIENT)
}

fn status(el: &Element) -> Option<String> {
    el.child("status", ns::CLIENT).map(Element::text)
}

/// Contacts `contact0..` of alice (mutual subscriptions), each logged in, then changing presence `changes` times
/// (status "1", "2", ...). Returns the contacts' sessions (kept open: closing them would be more presence).
async fn churn(server: &TestServer, count: usize, changes: usize) -> Vec<Client> {
    let mut contacts = Vec::with_capacity(count);
    for i in 0..count {
        let name = format!("contact{i}");
        server.befriend("alice", &name).await;
        let mut c = server.login_with(&name, Some("c"), true).await;
        for k in 1..=changes {
            c.send(format!("<presence><show>away</show><status>{k}</status></presence>")).await;
        }
        c.sync().await;
        contacts.push(c);
    }
    contacts
}

/// The presences among `stanzas`, by sender; fails on duplicates.
fn one_presence_per_sender(stanzas: &[Element]) -> HashMap<String, Element> {
    let mut by_sender = HashMap::new();
    for el in stanzas.iter().filter(|el| is_presence(el)) {
        let from = el.attr("from").unwrap_or_default().to_owned();
        if let Some(previous) = by_sender.insert(from, el.clone()) {
            panic!("two presences from one sender: {} and {}", previous.to_xml(), el.to_xml());
        }
    }
    by_sender
}

#[tokio::test]
async fn an_inactive_client_gets_only_the_newest_presence_per_contact_when_active_again() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    alice.send(format!("<inactive xmlns='{CSI}'/>")).await;
    alice.sync().await;
    alice.discard_unmatched(); // the echo of its own presence
    let contacts = churn(&server, 20, 2).await;
    alice.expect_no("presence while inactive", is_presence).await;

    alice.send(format!("<active xmlns='{CSI}'/>")).await;
    let got = alice.collect(QUIET).await;
    let presences = one_presence_per_sender(&got);
    assert_eq!(presences.len(), contacts.len(), "one presence per contact: {presences:?}");
    for c in &contacts {
        let p = presences.get(&c.jid).unwrap_or_else(|| panic!("no presence from {}", c.jid));
        assert_eq!(status(p).as_deref(), Some("2"), "the newest presence: {}", p.to_xml());
    }
    // Active again: presence flows at once.
    let mut first = contacts.into_iter().next().expect("a contact");
    first.send("<presence><status>back</status></presence>").await;
    alice.expect(|el| is_presence(el) && status(el).as_deref() == Some("back")).await;
}

#[tokio::test]
async fn a_chat_message_reaches_an_inactive_client_at_once() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.expect_presence_from(&bob, None).await;
    alice.send(format!("<inactive xmlns='{CSI}'/>")).await;
    alice.sync().await;
    alice.discard_unmatched(); // the echo of its own presence

    bob.send("<presence><status>busy</status></presence>").await;
    let composing = "<composing xmlns='http://jabber.org/protocol/chatstates'/>";
    bob.send(format!("<message type='chat' to='{}'>{composing}</message>", alice.jid)).await;
    bob.sync().await;
    alice.expect_no("presence or chat state while inactive", |el| !el.is("iq", ns::CLIENT)).await;

    let started = Instant::now();
    bob.say(&alice.jid, "urgent").await;
    alice.expect(|el| has_body(el, "urgent")).await;
    assert!(started.elapsed() < QUIET, "the message waited {:?}", started.elapsed());
    // What was held came first, in order: the presence and the chat state before the message.
    let before = alice.collect(QUIET).await;
    assert!(before.iter().any(|el| is_presence(el) && status(el).as_deref() == Some("busy")), "{before:?}");
}

#[tokio::test]
async fn an_inactive_client_receives_fewer_bytes() {
    const CONTACTS: usize = 50;
    const CHANGES: usize = 3;
    let server = TestServer::start_with(|c| {
        c.limits.csi_max_buffered = 10 * CONTACTS;
        c.c2s.outbound_queue = 10 * CONTACTS * (CHANGES + 1);
    })
    .await;
    let mut active = server.login_with("alice", Some("active"), true).await;
    let mut inactive = server.login_with("alice", Some("inactive"), true).await;
    inactive.send(format!("<inactive xmlns='{CSI}'/>")).await;
    inactive.sync().await;
    inactive.discard_unmatched();
    active.collect(QUIET).await;
    let active_base = active.conn.received().len();
    let inactive_base = inactive.conn.received().len();

    let started = Instant::now();
    let contacts = churn(&server, CONTACTS, CHANGES).await;
    let churn_time = started.elapsed();
    let to_active = active.collect(QUIET).await;
    let active_presences = to_active.iter().filter(|el| is_presence(el)).count();
    assert_eq!(active_presences, CONTACTS * (CHANGES + 1), "the active client sees every change");
    inactive.expect_no("presence while inactive", is_presence).await;
    let held_back = inactive.conn.received().len() - inactive_base;

    inactive.send(format!("<active xmlns='{CSI}'/>")).await;
    let flushed = inactive.collect(QUIET).await;
    let presences = one_presence_per_sender(&flushed);
    assert_eq!(presences.len(), CONTACTS, "exactly one presence per contact after <active/>");
    assert!(presences.values().all(|p| status(p).as_deref() == Some("3")), "only the newest presences");

    let active_bytes = active.conn.received().len() - active_base;
    let inactive_bytes = inactive.conn.received().len() - inactive_base;
    println!(
        "CSI: {CONTACTS} contacts x {} presences (churn took {churn_time:?}): active client received {active_bytes} \
         bytes, inactive client {inactive_bytes} bytes ({held_back} while inactive), saved {:.1}%",
        CHANGES + 1,
        100.0 * (active_bytes - inactive_bytes) as f64 / active_bytes as f64
    );
    assert!(inactive_bytes < active_bytes / 2, "inactive {inactive_bytes} vs active {active_bytes} bytes");
    drop(contacts);
}
