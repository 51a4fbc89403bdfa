//! XEP-0484 FAST: a token requested during a SASL2 login, then one-HMAC logins with it (HT-SHA-256-NONE), bound to
//! the user agent, invalidated by the user or revoked by the administrator, and never stored as such.

mod common;

use base64::Engine;
use common::{Conn, Element, TestServer, PASSWORD, SASL2};
use drupe_proto::sasl::ht;

const FAST: &str = "urn:xmpp:fast:0";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn user_agent(id: &str) -> String {
    format!("<user-agent xmlns='{SASL2}' id='{id}'><software>drupe tests</software></user-agent>")
}

/// A password login that asks for a token; returns the token.
async fn request_token(server: &TestServer, name: &str, device: &str) -> String {
    server.create_account(name).await;
    let (mut conn, features) = server.unauthenticated().await;
    let fast = features
        .child("authentication", SASL2)
        .and_then(|a| a.child("inline", SASL2))
        .and_then(|i| i.child("fast", FAST))
        .unwrap_or_else(|| panic!("FAST not advertised: {}", features.to_xml()));
    assert_eq!(fast.child("mechanism", FAST).map(Element::text).as_deref(), Some(ht::MECHANISM));
    let inline = format!("{}<request-token xmlns='{FAST}' mechanism='{}'/>", user_agent(device), ht::MECHANISM);
    let success = conn.sasl2_plain(name, PASSWORD, &inline).await;
    let token = success.child("token", FAST).unwrap_or_else(|| panic!("no token: {}", success.to_xml()));
    assert!(token.attr("expiry").is_some(), "{}", token.to_xml());
    token.attr("token").expect("token attribute").to_owned()
}

/// A FAST login: `<authenticate mechanism='HT-SHA-256-NONE'>` with the HMAC of `token`.
async fn fast_login(server: &TestServer, name: &str, device: &str, token: &str, extra: &str) -> (Conn, Element) {
    let (mut conn, _) = server.unauthenticated().await;
    let response = B64.encode(ht::client_response(name, token.as_bytes()));
    conn.send_raw(format!(
        "<authenticate xmlns='{SASL2}' mechanism='{}'><initial-response>{response}</initial-response>{}\
         <fast xmlns='{FAST}' count='1'{extra}/></authenticate>",
        ht::MECHANISM,
        user_agent(device)
    ))
    .await;
    let answer = conn.next_element().await;
    (conn, answer)
}

fn assert_not_authorized(answer: &Element) {
    assert!(answer.is("failure", SASL2), "expected a failure: {}", answer.to_xml());
    assert!(answer.child("not-authorized", "urn:ietf:params:xml:ns:xmpp-sasl").is_some(), "{}", answer.to_xml());
}

#[tokio::test]
async fn a_token_logs_the_same_device_in_with_one_hmac() {
    let server = TestServer::start().await;
    let token = request_token(&server, "alice", "phone").await;
    let (_conn, success) = fast_login(&server, "alice", "phone", &token, "").await;
    assert!(success.is("success", SASL2), "{}", success.to_xml());
    // The server proves it knows the token too (HT: HMAC(token, "Responder")).
    let expected =
        ht::parse(&ht::client_response("alice", token.as_bytes())).unwrap().verify(token.as_bytes()).unwrap();
    let got = B64.decode(success.child("additional-data", SASL2).map(Element::text).unwrap_or_default()).unwrap();
    assert_eq!(got, expected);
    // The database holds a nonce, not the token.
    let stored = server.store().fast_token("alice", "phone").await.unwrap().expect("stored");
    assert!(!stored.nonce.windows(8).any(|w| token.as_bytes().windows(8).any(|t| t == w)));
}

#[tokio::test]
async fn a_token_is_bound_to_its_user_agent_and_account() {
    let server = TestServer::start().await;
    let token = request_token(&server, "alice", "phone").await;
    server.create_account("bob").await;
    assert_not_authorized(&fast_login(&server, "alice", "laptop", &token, "").await.1);
    assert_not_authorized(&fast_login(&server, "bob", "phone", &token, "").await.1);
    assert_not_authorized(&fast_login(&server, "alice", "phone", "not-the-token", "").await.1);
}

#[tokio::test]
async fn users_invalidate_and_administrators_revoke_tokens() {
    let server = TestServer::start().await;
    let token = request_token(&server, "alice", "phone").await;
    let (_c, success) = fast_login(&server, "alice", "phone", &token, " invalidate='true'").await;
    assert!(success.is("success", SASL2), "the invalidating login itself succeeds: {}", success.to_xml());
    assert_not_authorized(&fast_login(&server, "alice", "phone", &token, "").await.1);

    let token = request_token(&server, "alice", "tablet").await;
    let revoked = drupe_server::accounts::revoke_tokens(server.store(), server.server_config(), "alice").await.unwrap();
    assert_eq!(revoked, 1);
    assert_not_authorized(&fast_login(&server, "alice", "tablet", &token, "").await.1);
}

#[tokio::test]
async fn a_new_token_replaces_the_old_one_for_that_device() {
    let server = TestServer::start().await;
    let old = request_token(&server, "alice", "phone").await;
    let new = request_token(&server, "alice", "phone").await;
    assert_ne!(old, new);
    assert_not_authorized(&fast_login(&server, "alice", "phone", &old, "").await.1);
    let (_c, success) = fast_login(&server, "alice", "phone", &new, "").await;
    assert!(success.is("success", SASL2), "{}", success.to_xml());
}
