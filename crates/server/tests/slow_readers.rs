//! Clients that stop reading: their writes have a deadline (`c2s.write_timeout_secs`), so they cannot hold their
//! session's task, connection permit or messages; before login they get only a few KiB
//! (`c2s.max_unauthenticated_output_bytes`).

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{ns, Client, TestServer, SM};
use drupe_proto::xml::Element;
use tokio::time::Instant;

/// Messages, each large enough that a few fill the kernel's socket buffers of a client that reads nothing.
const MESSAGES: usize = 120;
const BODY_BYTES: usize = 100_000;

fn body(i: usize) -> String {
    format!("{i:04}{}", "x".repeat(BODY_BYTES))
}

/// The numbers of the flood's messages among `stanzas`.
fn numbers(stanzas: &[Element]) -> Vec<usize> {
    stanzas
        .iter()
        .filter(|el| el.is("message", ns::CLIENT))
        .filter_map(|el| el.child("body", ns::CLIENT))
        .filter_map(|b| b.text().get(..4).and_then(|n| n.parse().ok()))
        .collect()
}

/// Bob, logged in with resumable stream management, who from now on reads nothing.
async fn stuck_reader(server: &TestServer) -> Client {
    let mut bob = server.login("bob").await;
    let enabled = bob.enable_sm(true).await;
    assert!(enabled.is("enabled", SM), "{}", enabled.to_xml());
    bob
}

/// Alice sends the flood to Bob; returns once the server has handled all of it.
async fn flood(alice: &mut Client) {
    for i in 0..MESSAGES {
        alice.say("bob@localhost", &body(i)).await;
    }
    alice.sync().await;
}

/// Logs Bob in again and collects every flood message he gets (live or from offline storage).
async fn collect_flood(server: &TestServer) -> Vec<usize> {
    let mut bob = server.login_with("bob", Some("again"), true).await;
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < MESSAGES && Instant::now() < deadline {
        got.extend(numbers(&bob.collect(Duration::from_secs(2)).await));
    }
    got
}

fn assert_each_once(got: &[usize]) {
    let distinct: HashSet<_> = got.iter().collect();
    assert_eq!(distinct.len(), MESSAGES, "messages lost: got {} distinct of {MESSAGES}", distinct.len());
    assert_eq!(got.len(), MESSAGES, "messages duplicated");
}

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_nothing_it_was_sent_is_lost() {
    let server = TestServer::start_with(|c| {
        c.c2s.write_timeout_secs = 1;
        c.sm.resume_timeout_secs = 1;
        c.c2s.max_connections = 3;
    })
    .await;
    let mut alice = server.login("alice").await;
    let bob = stuck_reader(&server).await;
    flood(&mut alice).await;

    // Bob's session ends within the deadline (plus its resumption window), and its permit returns: with
    // max_connections = 3, two more logins fit only once his connection is gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.session_count() > 1 {
        assert!(Instant::now() < deadline, "a client that reads nothing is still bound");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = collect_flood(&server).await;
    let _carol = server.login("carol").await;
    assert_each_once(&got);
    drop(bob);
}

#[tokio::test]
async fn sigterm_with_a_stuck_client_exits_promptly_and_keeps_its_messages() {
    // The write deadline is longer than the shutdown takes: the shutdown itself must end the waiting write.
    let server = TestServer::start_with(|c| {
        c.c2s.write_timeout_secs = 60;
        c.server.shutdown_grace_secs = 10;
    })
    .await;
    let mut alice = server.login("alice").await;
    let bob = stuck_reader(&server).await;
    flood(&mut alice).await;

    let started = Instant::now();
    let server = tokio::time::timeout(Duration::from_secs(20), server.restart()).await.expect("restart");
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown waited for the stuck client");
    // Everything accepted for Bob and not acknowledged by him is in offline storage.
    assert_each_once(&collect_flood(&server).await);
    drop(bob);
}

#[tokio::test]
async fn a_flood_of_aborts_before_login_cannot_hold_the_connection_permits() {
    // Long login and write deadlines: only the output cap before login ends these connections.
    let server = TestServer::start_with(|c| {
        c.c2s.max_connections = 4;
        c.c2s.auth_timeout_secs = 120;
        c.c2s.write_timeout_secs = 120;
    })
    .await;
    let abort = format!("<abort xmlns='{}'/>", ns::SASL).repeat(20_000);
    let mut flooders = Vec::new();
    for _ in 0..3 {
        let (mut conn, _) = server.unauthenticated().await;
        // A server that stops reading (its writes wait) would block this write: bounded.
        let _ = tokio::time::timeout(Duration::from_secs(5), conn.try_send_raw(&abort)).await;
        flooders.push(conn);
    }
    // The fourth permit and those of the flooders serve real logins, promptly.
    let mut clients = Vec::new();
    for name in ["alice", "bob", "carol"] {
        clients.push(tokio::time::timeout(Duration::from_secs(10), server.login(name)).await.expect("login"));
    }
    drop(flooders);
}
