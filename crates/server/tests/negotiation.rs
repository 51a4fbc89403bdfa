//! Stream negotiation over real sockets (RFC 6120 §4-7): features, STARTTLS, direct TLS, SASL, bind, stream errors.

mod common;

use common::{header, ns, Client, Element, TestServer, DOMAIN, PASSWORD};

fn mechanisms(features: &Element) -> Vec<String> {
    features.child("mechanisms", ns::SASL).map(|m| m.children().map(|c| c.text()).collect()).unwrap_or_default()
}

#[tokio::test]
async fn starttls_is_required_and_plain_is_offered_only_over_tls() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    let before = conn.open().await;
    let starttls = before.child("starttls", ns::TLS).expect("STARTTLS offered");
    assert!(starttls.child("required", ns::TLS).is_some(), "STARTTLS must be required: {}", before.to_xml());
    assert!(!mechanisms(&before).contains(&"PLAIN".to_owned()), "PLAIN before TLS: {}", before.to_xml());

    let after = conn.upgrade().await;
    assert!(after.child("starttls", ns::TLS).is_none(), "STARTTLS offered twice: {}", after.to_xml());
    let mechs = mechanisms(&after);
    assert!(mechs.contains(&"PLAIN".to_owned()) && mechs.contains(&"SCRAM-SHA-256".to_owned()), "{mechs:?}");
}

#[tokio::test]
async fn authentication_without_tls_is_refused() {
    let server = TestServer::start().await;
    server.create_account("alice").await;
    let mut conn = server.connect().await;
    conn.open().await;
    let outcome = conn.auth_plain("", "alice", PASSWORD).await;
    assert!(outcome.is("failure", ns::SASL), "{}", outcome.to_xml());
    assert!(outcome.child("encryption-required", ns::SASL).is_some(), "{}", outcome.to_xml());
}

#[tokio::test]
async fn a_stanza_before_starttls_is_a_policy_violation() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    conn.open().await;
    conn.send_raw("<message to='bob@localhost'><body>hi</body></message>").await;
    conn.expect_stream_error("policy-violation").await;
}

#[tokio::test]
async fn direct_tls_port_offers_sasl_without_starttls_and_logs_in() {
    let server = TestServer::start().await;
    server.create_account("alice").await;
    let mut conn = server.connect_tls().await;
    let features = conn.open().await;
    assert!(features.child("starttls", ns::TLS).is_none(), "{}", features.to_xml());
    assert!(mechanisms(&features).contains(&"PLAIN".to_owned()), "{}", features.to_xml());
    let outcome = conn.auth_plain("", "alice", PASSWORD).await;
    assert!(outcome.is("success", ns::SASL), "{}", outcome.to_xml());
    let mut alice = Client::finish_login(conn, "alice", Some("direct"), true).await;
    assert_eq!(alice.jid, "alice@localhost/direct");
    alice.sync().await;
}

#[tokio::test]
async fn scram_sha_256_and_plain_logins_work() {
    let server = TestServer::start().await;
    let mut alice = server.login_scram("alice").await;
    let mut bob = server.login("bob").await;
    alice.say(&bob.jid, "via scram").await;
    let msg = bob.expect_message_from(&alice).await;
    assert!(common::has_body(&msg, "via scram"));
    assert_eq!(server.session_count(), 2);
}

#[tokio::test]
async fn wrong_password_is_not_authorized() {
    let server = TestServer::start().await;
    server.create_account("alice").await;
    let mut conn = server.connect().await;
    conn.start_tls().await;
    let outcome = conn.auth_plain("", "alice", "wrong").await;
    assert!(outcome.child("not-authorized", ns::SASL).is_some(), "{}", outcome.to_xml());
    // An unknown account gets exactly the same answer (no enumeration).
    let outcome = conn.auth_plain("", "nobody", "wrong").await;
    assert!(outcome.child("not-authorized", ns::SASL).is_some(), "{}", outcome.to_xml());
    // SCRAM with a wrong password too.
    let outcome = conn.auth_scram("alice", "wrong").await.expect_err("wrong password accepted");
    assert!(outcome.child("not-authorized", ns::SASL).is_some(), "{}", outcome.to_xml());
    // That was auth.max_attempts_per_connection (3) failures: the connection is closed.
    conn.expect_stream_error("policy-violation").await;
}

#[tokio::test]
async fn an_authzid_naming_another_user_is_invalid() {
    let server = TestServer::start().await;
    server.create_account("alice").await;
    server.create_account("bob").await;
    let mut conn = server.connect().await;
    conn.start_tls().await;
    let outcome = conn.auth_plain("bob@localhost", "alice", PASSWORD).await;
    assert!(outcome.child("invalid-authzid", ns::SASL).is_some(), "{}", outcome.to_xml());
    // Naming oneself is fine.
    let outcome = conn.auth_plain("alice@localhost", "alice", PASSWORD).await;
    assert!(outcome.is("success", ns::SASL), "{}", outcome.to_xml());
}

#[tokio::test]
async fn a_stanza_before_authentication_is_not_authorized() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    conn.start_tls().await;
    conn.send_raw("<message to='bob@localhost'><body>hi</body></message>").await;
    conn.expect_stream_error("not-authorized").await;
}

#[tokio::test]
async fn bind_with_chosen_and_generated_resources() {
    let server = TestServer::start().await;
    let phone = server.login_with("alice", Some("phone"), false).await;
    assert_eq!(phone.jid, "alice@localhost/phone");
    let generated = server.login_with("alice", None, false).await;
    let resource = generated.jid.strip_prefix("alice@localhost/").expect("alice's full JID");
    assert!(!resource.is_empty() && resource != "phone", "generated resource: {}", generated.jid);
    assert_eq!(server.session_count(), 2);
}

#[tokio::test]
async fn a_second_login_with_the_same_resource_replaces_the_first() {
    let server = TestServer::start().await;
    let mut first = server.login_with("alice", Some("phone"), true).await;
    let mut second = server.login_with("alice", Some("phone"), true).await;
    first.expect_stream_error("conflict").await;
    second.sync().await;
    let mut bob = server.login("bob").await;
    bob.say(&second.jid, "still there?").await;
    let msg = second.expect(|el| common::has_body(el, "still there?")).await;
    assert_eq!(msg.attr("from"), Some(bob.jid.as_str()));
    assert_eq!(server.session_count(), 2);
}

#[tokio::test]
async fn a_header_for_another_host_is_host_unknown() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    conn.open_raw(&header("example.org")).await;
    conn.expect_stream_error("host-unknown").await;
}

#[tokio::test]
async fn a_wrong_stream_namespace_is_invalid_namespace() {
    let server = TestServer::start().await;
    let mut conn = server.connect().await;
    conn.open_raw(&format!(
        "<?xml version='1.0'?><stream:stream to='{DOMAIN}' version='1.0' xmlns='jabber:client' \
         xmlns:stream='urn:example:not-streams'>"
    ))
    .await;
    conn.expect_stream_error("invalid-namespace").await;
}

#[tokio::test]
async fn binding_more_than_max_resources_is_a_resource_constraint() {
    let server = TestServer::start_with(|c| c.limits.max_resources_per_account = 2).await;
    let _one = server.login_with("alice", Some("one"), false).await;
    let _two = server.login_with("alice", Some("two"), false).await;
    let mut conn = server.connect().await;
    conn.start_tls().await;
    assert!(conn.auth_plain("", "alice", PASSWORD).await.is("success", ns::SASL));
    conn.open().await;
    let refused = conn.bind(Some("three")).await.expect_err("a third resource was bound");
    assert_eq!(common::error_condition(&refused).as_deref(), Some("resource-constraint"), "{}", refused.to_xml());
    // Rebinding an existing resource is a replacement, not a new resource.
    assert_eq!(conn.bind(Some("two")).await.as_deref(), Ok("alice@localhost/two"));
}
