//! XEP-0388 Extensible SASL Profile with inline XEP-0386 Bind2 (tag, user agent, carbons, stream management) and
//! inline XEP-0198 resumption: a client online after one round trip, and the same device keeping its resource.

mod common;

use common::{bare, has_body, ns, Client, Conn, Element, TestServer, PASSWORD, SASL2, SM};

const BIND2: &str = "urn:xmpp:bind:0";
const CARBONS: &str = "urn:xmpp:carbons:2";
const DEVICE: &str = "d4565fa7-4d72-4749-b3d3-740edbf87770";

fn user_agent(id: &str) -> String {
    format!("<user-agent xmlns='{SASL2}' id='{id}'><software>drupe tests</software></user-agent>")
}

fn identity(success: &Element) -> String {
    assert!(success.is("success", SASL2), "expected SASL2 success, got {}", success.to_xml());
    success.child("authorization-identifier", SASL2).map(Element::text).unwrap_or_default()
}

/// A SASL2 PLAIN login of `name` with `inline` inside `<authenticate/>`; returns the connection and `<success/>`.
async fn sasl2_login(server: &TestServer, name: &str, inline: &str) -> (Conn, Element) {
    server.create_account(name).await;
    let (mut conn, _) = server.unauthenticated().await;
    let success = conn.sasl2_plain(name, PASSWORD, inline).await;
    assert!(success.is("success", SASL2), "{name}: {}", success.to_xml());
    (conn, success)
}

#[tokio::test]
async fn features_advertise_sasl2_with_inline_bind2_and_sm() {
    let server = TestServer::start().await;
    let (_conn, features) = server.unauthenticated().await;
    let auth = features.child("authentication", SASL2).unwrap_or_else(|| panic!("no SASL2: {}", features.to_xml()));
    let mechanisms: Vec<String> = auth.children().filter(|m| m.is("mechanism", SASL2)).map(Element::text).collect();
    assert!(mechanisms.iter().any(|m| m == "PLAIN"), "{mechanisms:?}");
    assert!(mechanisms.iter().any(|m| m == "SCRAM-SHA-256"), "{mechanisms:?}");
    let inline = auth.child("inline", SASL2).unwrap_or_else(|| panic!("no <inline/>: {}", auth.to_xml()));
    let bind = inline.child("bind", BIND2).unwrap_or_else(|| panic!("no inline Bind2: {}", auth.to_xml()));
    let vars: Vec<&str> =
        bind.child("inline", BIND2).map(|i| i.children().filter_map(|f| f.attr("var")).collect()).unwrap_or_default();
    for var in [CARBONS, SM, "urn:xmpp:csi:0"] {
        assert!(vars.contains(&var), "Bind2 inline feature {var} missing: {}", bind.to_xml());
    }
    assert!(inline.child("sm", SM).is_some(), "inline resumption not offered: {}", auth.to_xml());
}

#[tokio::test]
async fn plain_without_bind_is_followed_by_features_without_a_restart() {
    let server = TestServer::start().await;
    let (mut conn, success) = sasl2_login(&server, "alice", "").await;
    assert_eq!(identity(&success), bare("alice"));
    let features = conn.next_element().await;
    assert!(features.is("features", ns::STREAMS), "expected features, got {}", features.to_xml());
    assert!(features.child("bind", ns::BIND).is_some(), "no bind: {}", features.to_xml());
    let jid = conn.bind(Some("classic")).await.expect("bind");
    let mut alice = Client::bound(conn, "alice", &jid);
    alice.sync().await;
}

#[tokio::test]
async fn scram_sha_256_with_initial_response() {
    let server = TestServer::start().await;
    server.create_account("alice").await;
    let (mut conn, _) = server.unauthenticated().await;
    let success = conn.sasl2_scram("alice", PASSWORD, "").await;
    assert_eq!(identity(&success), bare("alice"));
}

#[tokio::test]
async fn a_wrong_password_is_a_sasl2_failure() {
    let server = TestServer::start().await;
    server.create_account("alice").await;
    for scram in [false, true] {
        let (mut conn, _) = server.unauthenticated().await;
        let failure = if scram {
            conn.sasl2_scram("alice", "wrong", "").await
        } else {
            conn.sasl2_plain("alice", "wrong", "").await
        };
        assert!(failure.is("failure", SASL2), "expected SASL2 failure: {}", failure.to_xml());
        assert!(failure.child("not-authorized", ns::SASL).is_some(), "{}", failure.to_xml());
    }
}

#[tokio::test]
async fn bind2_uses_the_tag_and_one_device_keeps_its_resource() {
    let server = TestServer::start().await;
    let inline = format!("{}<bind xmlns='{BIND2}'><tag>mobile</tag></bind>", user_agent(DEVICE));
    let (first, success) = sasl2_login(&server, "alice", &inline).await;
    let jid = identity(&success);
    assert!(jid.starts_with("alice@localhost/mobile"), "resource from the tag: {jid}");
    assert!(success.child("bound", BIND2).is_some(), "no <bound/>: {}", success.to_xml());
    let mut first = Client::bound(first, "alice", &jid);
    first.sync().await;

    // The same device again: the same resource, and the old session is replaced.
    let (second, success) = sasl2_login(&server, "alice", &inline).await;
    assert_eq!(identity(&success), jid, "same user agent, same resource");
    first.expect_stream_error("conflict").await;
    let mut second = Client::bound(second, "alice", &jid);
    second.sync().await;

    // Another device gets another resource.
    let other = format!("{}<bind xmlns='{BIND2}'><tag>mobile</tag></bind>", user_agent("another-device"));
    let (_third, success) = sasl2_login(&server, "alice", &other).await;
    let third = identity(&success);
    assert!(third.starts_with("alice@localhost/mobile") && third != jid, "{third} vs {jid}");
}

#[tokio::test]
async fn inline_stream_management_is_enabled_inside_bound() {
    let server = TestServer::start().await;
    let inline = format!("<bind xmlns='{BIND2}'><tag>app</tag><enable xmlns='{SM}' resume='true'/></bind>");
    let (_conn, success) = sasl2_login(&server, "alice", &inline).await;
    let bound = success.child("bound", BIND2).unwrap_or_else(|| panic!("no <bound/>: {}", success.to_xml()));
    let enabled = bound.child("enabled", SM).unwrap_or_else(|| panic!("no <enabled/>: {}", success.to_xml()));
    assert_eq!(enabled.attr("resume"), Some("true"), "{}", enabled.to_xml());
    assert!(enabled.attr("id").is_some(), "{}", enabled.to_xml());
}

#[tokio::test]
async fn inline_carbons_are_enabled() {
    let server = TestServer::start().await;
    let inline = format!("<bind xmlns='{BIND2}'><tag>phone</tag><enable xmlns='{CARBONS}'/></bind>");
    let (conn, success) = sasl2_login(&server, "alice", &inline).await;
    let mut phone = Client::bound(conn, "alice", &identity(&success));
    let laptop = server.login_with("alice", Some("laptop"), true).await;
    let mut bob = server.login("bob").await;
    bob.say(&laptop.jid, "for the laptop").await;
    let copy = phone.expect(|el| el.child("received", CARBONS).is_some()).await;
    assert_eq!(copy.attr("from"), Some(bare("alice").as_str()), "{}", copy.to_xml());
    assert!(copy.to_xml().contains("for the laptop"), "{}", copy.to_xml());
}

#[tokio::test]
async fn inline_resumption_resends_unacknowledged_stanzas() {
    let server = TestServer::start().await;
    let inline = format!("<bind xmlns='{BIND2}'><tag>app</tag><enable xmlns='{SM}' resume='true'/></bind>");
    let (conn, success) = sasl2_login(&server, "alice", &inline).await;
    let jid = identity(&success);
    let previd = success
        .child("bound", BIND2)
        .and_then(|b| b.child("enabled", SM))
        .and_then(|e| e.attr("id"))
        .unwrap_or_else(|| panic!("no resumption id: {}", success.to_xml()))
        .to_owned();
    let mut alice = Client::bound(conn, "alice", &jid);
    let mut bob = server.login("bob").await;
    bob.say(&jid, "unacked").await;
    alice.expect(|el| has_body(el, "unacked")).await;
    alice.drop_connection();
    bob.say(&jid, "in the gap").await;
    bob.sync().await;

    let (conn, success) =
        sasl2_login(&server, "alice", &format!("<resume xmlns='{SM}' previd='{previd}' h='0'/>")).await;
    let resumed = success.child("resumed", SM).unwrap_or_else(|| panic!("not resumed: {}", success.to_xml()));
    assert_eq!(resumed.attr("previd"), Some(previd.as_str()), "{}", resumed.to_xml());
    assert_eq!(identity(&success), jid, "the resumed session's full JID");
    let mut alice = Client::bound(conn, "alice", &jid);
    let got = alice.collect(common::QUIET).await;
    let bodies: Vec<String> = got.iter().filter_map(|el| el.child("body", ns::CLIENT)).map(Element::text).collect();
    assert_eq!(bodies, ["unacked", "in the gap"], "each exactly once");
    assert!(!got.iter().any(|el| el.is("features", ns::STREAMS)), "no bind features after a resumption");
}
