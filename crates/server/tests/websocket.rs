//! RFC 7395 XMPP over WebSocket: the same client session as TCP behind `/xmpp-websocket` on the HTTPS listener.
//! Logins (SASL, SASL2 + Bind2, FAST), chat with TCP users, stream management across a dropped WebSocket, framing
//! (one standalone element per message), errors for malformed or oversize frames, and XEP-0156 discovery.

mod common;

use base64::Engine;
use common::{has_body, ns, ws, Client, Element, TestServer, PASSWORD, QUIET, SASL2};
use drupe_proto::sasl::ht;

const SM: &str = "urn:xmpp:sm:3";
const FAST: &str = "urn:xmpp:fast:0";

/// Every frame the server sent is a standalone document: `<open/>`/`<close/>` in the framing namespace, stanzas
/// with `xmlns='jabber:client'`, `<stream:features/>` declaring its prefix.
fn assert_standalone(frames: &[String]) {
    assert!(!frames.is_empty());
    for f in frames {
        let tag_end = f.find('>').unwrap_or(f.len());
        let tag = &f[..tag_end];
        assert!(tag.contains(" xmlns=") || tag.contains(" xmlns:stream="), "frame without namespace: {f}");
        if f.starts_with("<message") || f.starts_with("<presence") || f.starts_with("<iq") {
            assert!(tag.contains(" xmlns='jabber:client'"), "stanza frame: {f}");
        }
        if f.starts_with("<stream:") {
            assert!(tag.contains("xmlns:stream='http://etherx.jabber.org/streams'"), "{f}");
        }
        assert!(Element::parse(f).is_some(), "one complete element per frame: {f}");
    }
    assert!(frames[0].starts_with("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing'"), "{}", frames[0]);
}

#[tokio::test]
async fn a_websocket_user_logs_in_with_scram_and_chats_with_a_tcp_user() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let mut alice = server.login_ws("alice").await;
    let mut bob = server.login("bob").await;
    alice.expect_presence_from(&bob, None).await;

    alice.say(&bob.jid, "hello over websocket").await;
    let got = bob.expect(|el| has_body(el, "hello over websocket")).await;
    assert_eq!(got.attr("from"), Some(alice.jid.as_str()));
    bob.say(&alice.jid, "hello over tcp").await;
    let got = alice.expect(|el| has_body(el, "hello over tcp")).await;
    assert_eq!(got.attr("from"), Some(bob.jid.as_str()));

    assert_standalone(&alice.conn.frames);
    assert!(alice.conn.frames.iter().any(|f| f.starts_with("<stream:features")), "features sent");
    // The restart after SASL is a second <open/> from the server.
    let opens = alice.conn.frames.iter().filter(|f| f.starts_with("<open ")).count();
    assert_eq!(opens, 2, "{:?}", alice.conn.frames);

    // <close/> is answered with <close/> and the end of the WebSocket.
    alice.send("</stream:stream>").await;
    alice.conn.expect_closed().await;
    assert!(alice.conn.frames.last().is_some_and(|f| f.starts_with("<close ")), "{:?}", alice.conn.frames.last());
    bob.expect_presence_from(&alice, Some("unavailable")).await;
}

#[tokio::test]
async fn plain_is_offered_over_https_and_sasl2_with_bind2_binds_in_one_round_trip() {
    let server = TestServer::start().await;
    server.create_account("alice").await;
    let mut conn = server.connect_ws().await;
    let features = conn.open().await;
    let mechs: Vec<String> =
        features.child("mechanisms", ns::SASL).map(|m| m.children().map(Element::text).collect()).unwrap_or_default();
    assert!(mechs.iter().any(|m| m == "PLAIN"), "HTTPS counts as TLS: {}", features.to_xml());
    let inline = "<bind xmlns='urn:xmpp:bind:0'><tag>web</tag></bind>";
    let success = conn.sasl2_scram("alice", PASSWORD, inline).await;
    assert!(success.is("success", SASL2), "{}", success.to_xml());
    let jid = success.child("authorization-identifier", SASL2).map(Element::text).expect("authorization id");
    assert!(jid.starts_with("alice@localhost/web"), "{jid}");
    let mut alice = Client::bound(conn, "alice", &jid);
    alice.sync().await;
}

#[tokio::test]
async fn a_fast_token_from_a_websocket_login_logs_in_again_with_one_hmac() {
    let server = TestServer::start().await;
    server.create_account("alice").await;
    let agent = format!("<user-agent xmlns='{SASL2}' id='browser-1'><software>tests</software></user-agent>");
    let mut conn = server.connect_ws().await;
    conn.open().await;
    let inline = format!("{agent}<request-token xmlns='{FAST}' mechanism='{}'/>", ht::MECHANISM);
    let success = conn.sasl2_scram("alice", PASSWORD, &inline).await;
    let token = success.child("token", FAST).and_then(|t| t.attr("token")).expect("token").to_owned();

    let mut conn = server.connect_ws().await;
    conn.open().await;
    let response = base64::engine::general_purpose::STANDARD.encode(ht::client_response("alice", token.as_bytes()));
    conn.send_raw(format!(
        "<authenticate xmlns='{SASL2}' mechanism='{}'><initial-response>{response}</initial-response>{agent}\
         <fast xmlns='{FAST}' count='1'/></authenticate>",
        ht::MECHANISM
    ))
    .await;
    let answer = conn.next_element().await;
    assert!(answer.is("success", SASL2), "FAST over WebSocket: {}", answer.to_xml());
}

#[tokio::test]
async fn stream_management_resumes_a_dropped_websocket_on_a_new_one() {
    let server = TestServer::start().await;
    let mut alice = server.login_ws("alice").await;
    let enabled = alice.enable_sm(true).await;
    let previd = enabled.attr("id").unwrap_or_else(|| panic!("no resumption: {}", enabled.to_xml())).to_owned();
    let jid = alice.jid.clone();
    let mut bob = server.login("bob").await;
    for body in ["m1", "m2"] {
        bob.say(&jid, body).await;
    }
    for body in ["m1", "m2"] {
        alice.expect(|el| has_body(el, body)).await;
    }
    alice.drop_connection();
    bob.say(&jid, "during the gap").await;
    bob.sync().await;

    // A new WebSocket resumes, having handled m1 only.
    let mut conn = server.connect_ws().await;
    conn.open().await;
    conn.auth_scram("alice", PASSWORD).await.expect("SCRAM");
    conn.open().await;
    conn.send_raw(format!("<resume xmlns='{SM}' previd='{previd}' h='1'/>")).await;
    let resumed = conn.next_element().await;
    assert!(resumed.is("resumed", SM), "{}", resumed.to_xml());
    let mut alice = Client::bound(conn, "alice", &jid);
    let got = alice.collect(QUIET).await;
    let bodies: Vec<String> = got.iter().filter_map(|el| el.child("body", ns::CLIENT).map(Element::text)).collect();
    assert_eq!(bodies, ["m2", "during the gap"]);
    // The new WebSocket's frames, `<resumed/>` and the resent stanzas included, are standalone documents.
    assert_standalone(&alice.conn.frames);
}

/// Opens a WebSocket stream, sends `frame` (`binary`: as a binary message) and returns the stream error condition.
async fn error_for(server: &TestServer, frame: &[u8], binary: bool) -> String {
    let mut conn = server.connect_ws().await;
    conn.open().await;
    conn.send_ws_message(frame, binary).await;
    let error = conn.expect_stream_error_any().await;
    assert!(
        conn.frames.last().is_some_and(|f| f.starts_with("<close ")),
        "<close/> after the error: {:?}",
        conn.frames
    );
    let condition = error.children().find(|c| c.ns() == ns::STREAM_ERRORS && c.name() != "text");
    condition.map(|c| c.name().to_owned()).unwrap_or_default()
}

#[tokio::test]
async fn malformed_and_oversize_frames_end_the_stream_with_the_matching_error() {
    let server = TestServer::start_with(|c| c.limits.max_stanza_bytes = 4096).await;
    let two = b"<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>";
    assert_eq!(error_for(&server, two, false).await, "not-well-formed");
    assert_eq!(error_for(&server, b"this is not XML", false).await, "not-well-formed");
    assert_eq!(error_for(&server, b"<message xmlns='jabber:client'>", false).await, "not-well-formed");
    assert_eq!(error_for(&server, b"<presence xmlns='jabber:client'/>", true).await, "policy-violation");
    let big = format!("<message xmlns='jabber:client'><body>{}</body></message>", "x".repeat(5000));
    assert_eq!(error_for(&server, big.as_bytes(), false).await, "policy-violation");
    // Far beyond the limit: refused by the WebSocket layer, still answered with a stream error.
    let huge = format!("<message xmlns='jabber:client'><body>{}</body></message>", "x".repeat(200_000));
    assert_eq!(error_for(&server, huge.as_bytes(), false).await, "policy-violation");
    // A stanza before <open/>.
    let mut conn = server.connect_ws().await;
    conn.send_ws_message(b"<presence xmlns='jabber:client'/>", false).await;
    let error = conn.expect_stream_error_any().await;
    assert!(error.child("not-well-formed", ns::STREAM_ERRORS).is_some(), "{}", error.to_xml());
    assert_eq!(server.session_count(), 0);
}

#[tokio::test]
async fn a_handshake_without_the_xmpp_subprotocol_is_refused() {
    let server = TestServer::start().await;
    let err = ws::connect(server.https_addr(), "/xmpp-websocket", None).await.expect_err("refused");
    assert!(err.contains("400"), "{err}");
    let err = ws::connect(server.https_addr(), "/xmpp-websocket", Some("mqtt")).await.expect_err("refused");
    assert!(err.contains("400"), "{err}");
}

/// A GET over HTTPS with `Connection: close`; returns the status line, headers and body as text.
async fn https_get(server: &TestServer, path: &str) -> String {
    common::http::request(server.https_addr(), "GET", path, "").await
}

#[tokio::test]
async fn host_meta_advertises_the_websocket_and_bosh_endpoints() {
    let server = TestServer::start().await;
    let port = server.https_addr().port();
    let xrd = https_get(&server, "/.well-known/host-meta").await;
    assert!(xrd.starts_with("HTTP/1.1 200"), "{xrd}");
    let lower = xrd.to_ascii_lowercase();
    assert!(lower.contains("access-control-allow-origin: *"), "{xrd}");
    assert!(lower.contains("content-type: application/xrd+xml"), "{xrd}");
    let ws_link =
        format!("<Link rel='urn:xmpp:alt-connections:websocket' href='wss://localhost:{port}/xmpp-websocket'/>");
    assert!(xrd.contains(&ws_link), "{xrd}");
    assert!(xrd.contains(&format!("href='https://localhost:{port}/http-bind'")), "{xrd}");
    let jrd = https_get(&server, "/.well-known/host-meta.json").await;
    assert!(jrd.contains(&format!("\"href\":\"wss://localhost:{port}/xmpp-websocket\"")), "{jrd}");
    assert!(jrd.contains("\"rel\":\"urn:xmpp:alt-connections:xbosh\""), "{jrd}");
}

fn mechanisms(features: &Element) -> Vec<String> {
    features.child("mechanisms", ns::SASL).map(|m| m.children().map(Element::text).collect()).unwrap_or_default()
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_plain_listener_counts_as_encrypted() {
    let server = TestServer::start_with(|c| {
        c.http.listen = "127.0.0.1:0".into();
        c.http.trusted_proxy = true;
        c.http.public_url = "https://chat.example/".into();
    })
    .await;
    let body = common::http::plain_request(server.http_addr(), "GET", "/.well-known/host-meta", "").await;
    assert!(body.contains("href='wss://chat.example/xmpp-websocket'"), "public_url is advertised: {body}");
    let mut ws = ws::connect_plain(server.http_addr(), "192.0.2.7, 198.51.100.9").await;
    let features = ws::open_raw(&mut ws).await;
    assert!(mechanisms(&features).iter().any(|m| m == "PLAIN"), "{}", features.to_xml());
    assert!(features.child("starttls", ns::TLS).is_none(), "{}", features.to_xml());

    // Without `trusted_proxy` the same listener is plain text: with require_tls nothing may authenticate.
    let server = TestServer::start_with(|c| c.http.listen = "127.0.0.1:0".into()).await;
    let mut ws = ws::connect_plain(server.http_addr(), "192.0.2.7").await;
    let features = ws::open_raw(&mut ws).await;
    assert!(mechanisms(&features).is_empty(), "{}", features.to_xml());
    assert!(features.child("starttls", ns::TLS).is_none(), "no STARTTLS inside a WebSocket: {}", features.to_xml());
}

#[tokio::test]
async fn client_state_indication_holds_presence_but_not_messages_over_websocket() {
    const CSI: &str = "urn:xmpp:csi:0";
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let mut alice = server.login_ws("alice").await;
    alice.send(format!("<inactive xmlns='{CSI}'/>")).await;
    alice.sync().await;
    alice.discard_unmatched();
    let mut bob = server.login("bob").await;
    bob.send("<presence><status>busy</status></presence>").await;
    bob.sync().await;
    alice.expect_no("presence while inactive", |el| el.is("presence", ns::CLIENT)).await;
    bob.say(&alice.jid, "urgent").await;
    alice.expect(|el| has_body(el, "urgent")).await;
    alice.send(format!("<active xmlns='{CSI}'/>")).await;
    let p = alice.expect(|el| el.is("presence", ns::CLIENT) && el.attr("from") == Some(bob.jid.as_str())).await;
    assert_eq!(p.child("status", ns::CLIENT).map(Element::text).as_deref(), Some("busy"), "{}", p.to_xml());
}

#[tokio::test]
async fn shutdown_closes_websocket_sessions_with_system_shutdown() {
    let server = TestServer::start().await;
    let mut alice = server.login_ws("alice").await;
    let stopping = tokio::spawn(server.shutdown());
    alice.expect_stream_error("system-shutdown").await;
    assert!(alice.conn.frames.last().is_some_and(|f| f.starts_with("<close ")), "{:?}", alice.conn.frames.last());
    tokio::time::timeout(common::WAIT, stopping).await.expect("shutdown in time").expect("shutdown task");
}
