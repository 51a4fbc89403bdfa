//! XEP-0215 External Service Discovery: STUN/TURN from `[turn]`, with coturn REST-API credentials.

mod common;

use base64::Engine;
use common::{error_condition, ns, Element, TestServer, DOMAIN};

const EXTDISCO: &str = "urn:xmpp:extdisco:2";

async fn turn_server() -> TestServer {
    TestServer::start_with(|c| {
        c.turn.host = "turn.example.org".into();
        c.turn.secret = "s3cret".into();
        c.turn.ttl_secs = 600;
        c.turn.tls_port = 5349;
    })
    .await
}

fn services(reply: &Element, payload: &str) -> Vec<Element> {
    reply.child(payload, EXTDISCO).map(|s| s.children().cloned().collect()).unwrap_or_default()
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test]
async fn services_list_stun_and_turn_with_working_credentials() {
    let server = turn_server().await;
    let mut alice = server.login("alice").await;
    let info = alice.iq(&format!("<iq type='get' id='d' to='{DOMAIN}'><query xmlns='{}'/></iq>", ns::DISCO_INFO)).await;
    assert!(info.to_xml().contains(EXTDISCO), "feature advertised: {}", info.to_xml());

    let reply = alice.iq(&format!("<iq type='get' id='x1' to='{DOMAIN}'><services xmlns='{EXTDISCO}'/></iq>")).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let list = services(&reply, "services");
    let kinds: Vec<String> = list
        .iter()
        .map(|s| format!("{}/{}/{}", s.attr("type").unwrap(), s.attr("transport").unwrap(), s.attr("port").unwrap()))
        .collect();
    assert_eq!(kinds, ["stun/udp/3478", "stun/tcp/3478", "turn/udp/3478", "turn/tcp/3478", "turns/tcp/5349"]);
    assert!(list.iter().all(|s| s.attr("host") == Some("turn.example.org")));
    assert!(list.iter().filter(|s| s.attr("type") == Some("stun")).all(|s| s.attr("username").is_none()));

    let turn = list.iter().find(|s| s.attr("type") == Some("turn")).unwrap();
    let username = turn.attr("username").expect("username");
    let (expiry, user) = username.split_once(':').expect("<expiry>:<user>");
    assert_eq!(user, "alice@localhost");
    let expiry: i64 = expiry.parse().unwrap();
    assert!((expiry - now_secs() - 600).abs() <= 5, "expires in ttl_secs: {expiry}");
    // password = base64(HMAC-SHA1(secret, username)), as coturn's use-auth-secret checks it.
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, b"s3cret");
    let expected = base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, username.as_bytes()));
    assert_eq!(turn.attr("password"), Some(expected.as_str()));
    assert_eq!(turn.attr("restricted"), Some("1"));
    assert!(turn.attr("expires").is_some_and(|e| e.ends_with('Z')));

    // Filtered by type.
    let reply = alice
        .iq(&format!("<iq type='get' id='x2' to='{DOMAIN}'><services xmlns='{EXTDISCO}' type='turn'/></iq>"))
        .await;
    let list = services(&reply, "services");
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|s| s.attr("type") == Some("turn")));
}

#[tokio::test]
async fn credentials_are_given_for_a_named_service() {
    let server = turn_server().await;
    let mut alice = server.login("alice").await;
    let reply = alice
        .iq(&format!(
            "<iq type='get' id='c1' to='{DOMAIN}'><credentials xmlns='{EXTDISCO}'>\
             <service type='turn' host='turn.example.org'/></credentials></iq>"
        ))
        .await;
    let list = services(&reply, "credentials");
    assert_eq!(list.len(), 1, "{}", reply.to_xml());
    assert!(list[0].attr("username").is_some_and(|u| u.ends_with(":alice@localhost")));
    assert!(list[0].attr("password").is_some());

    let reply = alice
        .iq(&format!(
            "<iq type='get' id='c2' to='{DOMAIN}'><credentials xmlns='{EXTDISCO}'>\
             <service type='turn' host='elsewhere.example'/></credentials></iq>"
        ))
        .await;
    assert_eq!(error_condition(&reply).as_deref(), Some("item-not-found"));
}

#[tokio::test]
async fn without_turn_configured_there_are_no_services() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let info = alice.iq(&format!("<iq type='get' id='d' to='{DOMAIN}'><query xmlns='{}'/></iq>", ns::DISCO_INFO)).await;
    assert!(!info.to_xml().contains(EXTDISCO), "{}", info.to_xml());
    let reply = alice.iq(&format!("<iq type='get' id='x1' to='{DOMAIN}'><services xmlns='{EXTDISCO}'/></iq>")).await;
    assert_eq!(reply.attr("type"), Some("result"));
    assert!(services(&reply, "services").is_empty(), "{}", reply.to_xml());
}
