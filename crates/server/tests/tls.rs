//! The TLS transport of client streams (`c2s/tls.rs`, STARTTLS and XEP-0368 direct TLS) against bad input —
//! garbage instead of a ClientHello, alerts, truncated and oversized records, a client that stalls mid-handshake —
//! and against what good clients do: TLS 1.3 KeyUpdate, session resumption by ticket, stanzas spanning records.

mod common;

use std::time::Duration;

use common::{Client, TestServer, DOMAIN, WAIT};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

/// Reads from `tcp` until `marker` has arrived.
async fn read_until(tcp: &mut TcpStream, marker: &str) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains(marker) {
        let n = timeout(WAIT, tcp.read(&mut buf)).await.expect("server answered in time").expect("read");
        assert!(n > 0, "closed before {marker}: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buf[..n]);
    }
}

/// A plain connection that asked for STARTTLS and got `<proceed/>`: the next bytes are the TLS handshake's.
async fn after_proceed(server: &TestServer) -> TcpStream {
    let mut tcp = TcpStream::connect(server.addr()).await.expect("connect");
    tcp.write_all(common::header(DOMAIN).as_bytes()).await.expect("write");
    read_until(&mut tcp, "features>").await;
    tcp.write_all(b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>").await.expect("write");
    read_until(&mut tcp, "proceed").await;
    tcp
}

/// Whether the server closed `tcp` within `wait` (whatever it sent before, e.g. an alert, is ignored).
async fn closed_within(tcp: &mut TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// The server still serves a normal login over both ports and a message between the two.
async fn still_serves(server: &TestServer) {
    let mut alice = server.login("alice").await;
    server.create_account("bob").await;
    let mut conn = server.connect_tls().await;
    conn.open().await;
    let outcome = conn.auth_plain("", "bob", common::PASSWORD).await;
    assert!(outcome.is("success", common::ns::SASL), "{}", outcome.to_xml());
    let mut bob = Client::finish_login(conn, "bob", Some("direct"), true).await;
    alice.say(&bob.jid, "still here").await;
    let msg = bob.expect_message_from(&alice).await;
    assert!(common::has_body(&msg, "still here"), "{}", msg.to_xml());
}

async fn wait_for_sessions(server: &TestServer, count: usize) {
    let deadline = Instant::now() + WAIT;
    while server.session_count() != count {
        assert!(Instant::now() < deadline, "{} sessions, expected {count}", server.session_count());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn garbage_instead_of_a_client_hello_after_starttls_closes_the_connection() {
    let server = TestServer::start().await;
    let mut tcp = after_proceed(&server).await;
    tcp.write_all(b"<message to='bob@localhost'><body>not TLS</body></message>\r\n\r\n").await.expect("write");
    assert!(closed_within(&mut tcp, WAIT).await, "garbage handshake was not refused");
    still_serves(&server).await;
}

#[tokio::test]
async fn garbage_on_the_direct_tls_port_closes_the_connection() {
    let server = TestServer::start().await;
    let mut tcp = TcpStream::connect(server.tls_addr()).await.expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await.expect("write");
    assert!(closed_within(&mut tcp, WAIT).await, "garbage handshake was not refused");
    still_serves(&server).await;
}

#[tokio::test]
async fn an_alert_instead_of_a_client_hello_closes_the_connection() {
    let server = TestServer::start().await;
    let mut tcp = after_proceed(&server).await;
    // A plaintext fatal handshake_failure alert (RFC 8446 §6).
    tcp.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]).await.expect("write");
    assert!(closed_within(&mut tcp, WAIT).await, "alert did not end the connection");
    still_serves(&server).await;
}

#[tokio::test]
async fn an_oversized_record_in_the_handshake_closes_at_once() {
    let server = TestServer::start().await;
    let mut tcp = TcpStream::connect(server.tls_addr()).await.expect("connect");
    // A handshake record announcing 65,535 bytes (the limit is 2^14 + 2048): refused from its header alone.
    tcp.write_all(&[0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0x00]).await.expect("write");
    assert!(closed_within(&mut tcp, WAIT).await, "oversized record was not refused");
    still_serves(&server).await;
}

#[tokio::test]
async fn a_client_that_stalls_mid_handshake_is_dropped_after_the_auth_timeout() {
    let server = TestServer::start_with(|c| c.c2s.auth_timeout_secs = 1).await;
    let mut starttls = after_proceed(&server).await;
    let mut direct = TcpStream::connect(server.tls_addr()).await.expect("connect");
    // The start of a ClientHello record that never completes.
    for tcp in [&mut starttls, &mut direct] {
        tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03]).await.expect("write");
    }
    let started = Instant::now();
    assert!(!closed_within(&mut direct, Duration::from_millis(500)).await, "closed before the timeout");
    assert!(closed_within(&mut starttls, Duration::from_secs(3)).await, "STARTTLS handshake never timed out");
    assert!(closed_within(&mut direct, Duration::from_secs(3)).await, "direct TLS handshake never timed out");
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[tokio::test]
async fn an_oversized_record_after_login_ends_the_session() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    assert_eq!(server.session_count(), 1);
    let (tcp, _) = alice.conn.tls_mut().get_mut();
    tcp.write_all(&[0x17, 0x03, 0x03, 0xff, 0xff, 0x00, 0x00]).await.expect("write");
    assert!(alice.conn.closed_within(WAIT).await, "oversized record did not end the connection");
    wait_for_sessions(&server, 0).await;
    still_serves(&server).await;
}

#[tokio::test]
async fn a_truncated_record_then_eof_ends_the_session() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let (tcp, _) = alice.conn.tls_mut().get_mut();
    // An application data record announcing 100 bytes, of which 20 arrive, then the client's FIN.
    let mut record = vec![0x17, 0x03, 0x03, 0x00, 100];
    record.extend_from_slice(&[0xab; 20]);
    tcp.write_all(&record).await.expect("write");
    tcp.shutdown().await.expect("shutdown");
    wait_for_sessions(&server, 0).await;
    still_serves(&server).await;
}

#[tokio::test]
async fn a_corrupted_record_after_login_ends_the_session() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let (tcp, _) = alice.conn.tls_mut().get_mut();
    // A whole record that does not decrypt (bad_record_mac).
    let mut record = vec![0x17, 0x03, 0x03, 0x00, 64];
    record.extend_from_slice(&[0x5a; 64]);
    tcp.write_all(&record).await.expect("write");
    assert!(alice.conn.closed_within(WAIT).await, "undecryptable record did not end the connection");
    wait_for_sessions(&server, 0).await;
}

#[tokio::test]
async fn close_notify_from_the_client_ends_the_session() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let tls = alice.conn.tls_mut();
    tls.get_mut().1.send_close_notify();
    tls.flush().await.expect("flush close_notify");
    assert!(alice.conn.closed_within(WAIT).await, "close_notify did not end the connection");
    wait_for_sessions(&server, 0).await;
}

#[tokio::test]
async fn tls13_key_update_is_answered_and_the_stream_goes_on() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    let conn = alice.conn.tls_mut().get_ref().1;
    assert_eq!(conn.protocol_version(), Some(rustls::ProtocolVersion::TLSv1_3));
    for round in 0..3 {
        // KeyUpdate with update_requested: the server must switch both directions (RFC 8446 §4.6.3).
        alice.conn.tls_mut().get_mut().1.refresh_traffic_keys().expect("key update");
        alice.sync().await;
        alice.say(&bob.jid, &format!("after key update {round}")).await;
        let msg = bob.expect_message_from(&alice).await;
        assert!(common::has_body(&msg, &format!("after key update {round}")), "{}", msg.to_xml());
        bob.say(&alice.jid, "reply").await;
        alice.expect_message_from(&bob).await;
    }
}

#[tokio::test]
async fn session_tickets_are_sent_and_resume_a_later_connection() {
    let server = TestServer::start().await;
    let connector = common::tls_connector();
    let name = ServerName::try_from(DOMAIN).expect("server name");
    for attempt in 0..2 {
        let tcp = TcpStream::connect(server.tls_addr()).await.expect("connect");
        let mut tls = timeout(WAIT, connector.connect(name.clone(), tcp)).await.expect("in time").expect("handshake");
        let kind = tls.get_ref().1.handshake_kind();
        if attempt == 1 {
            assert_eq!(kind, Some(rustls::HandshakeKind::Resumed), "no ticket from the first connection");
        }
        // Reading the features also processes the NewSessionTicket messages that came before them.
        tls.write_all(common::header(DOMAIN).as_bytes()).await.expect("write");
        tls.flush().await.expect("flush");
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("features>") {
            let n = timeout(WAIT, tls.read(&mut buf)).await.expect("in time").expect("read");
            assert!(n > 0, "closed: {}", String::from_utf8_lossy(&seen));
            seen.extend_from_slice(&buf[..n]);
        }
    }
}

#[tokio::test]
async fn stanzas_larger_than_a_record_cross_intact_both_ways() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    // 100 KB: several records on the way in (split over many reads) and on the way out.
    let body: String = (0..100_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    alice.say(&bob.jid, &body).await;
    let msg = bob.expect_message_from(&alice).await;
    assert!(common::has_body(&msg, &body), "body changed on the way");
    bob.say(&alice.jid, &body).await;
    let msg = alice.expect_message_from(&bob).await;
    assert!(common::has_body(&msg, &body), "body changed on the way back");
}
