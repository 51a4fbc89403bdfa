//! IQs answered by the server (disco, ping, version, unknown namespaces) and IQs routed between users.

mod common;

use common::{error_condition, ns, TestServer, DOMAIN};

#[tokio::test]
async fn disco_info_on_the_server_names_an_im_server_and_its_features() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let id = alice.id();
    let reply =
        alice.iq(&format!("<iq type='get' id='{id}' to='{DOMAIN}'><query xmlns='{}'/></iq>", ns::DISCO_INFO)).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    assert_eq!(reply.attr("from"), Some(DOMAIN), "{}", reply.to_xml());
    let query = reply.child("query", ns::DISCO_INFO).expect("disco#info query");
    let identity = query.child("identity", ns::DISCO_INFO).expect("identity");
    assert_eq!((identity.attr("category"), identity.attr("type")), (Some("server"), Some("im")));
    let features: Vec<&str> =
        query.children().filter(|c| c.is("feature", ns::DISCO_INFO)).filter_map(|f| f.attr("var")).collect();
    for f in [ns::PING, ns::DISCO_INFO, ns::VERSION] {
        assert!(features.contains(&f), "{f} missing from {features:?}");
    }
}

#[tokio::test]
async fn session_establishment_is_a_no_op_with_or_without_to() {
    // Advertised as optional (RFC 6121 Appendix E), yet Strophe.js (Converse.js) still sends it, without a `to`.
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    for to in [String::new(), format!(" to='{DOMAIN}'")] {
        let reply = alice.iq(&format!("<iq type='set' id='s1'{to}><session xmlns='{}'/></iq>", ns::SESSION)).await;
        assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    }
}

#[tokio::test]
async fn the_server_answers_pings() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let reply = alice.iq(&format!("<iq type='get' id='p1' to='{DOMAIN}'><ping xmlns='urn:xmpp:ping'/></iq>")).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    assert_eq!(reply.attr("from"), Some(DOMAIN));
    assert_eq!(reply.attr("to"), Some(alice.jid.as_str()));
    assert!(reply.first_child().is_none(), "{}", reply.to_xml());
}

#[tokio::test]
async fn the_server_tells_its_version() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let reply = alice.iq(&format!("<iq type='get' id='v1' to='{DOMAIN}'><query xmlns='{}'/></iq>", ns::VERSION)).await;
    assert_eq!(reply.attr("type"), Some("result"), "{}", reply.to_xml());
    let query = reply.child("query", ns::VERSION).expect("version query");
    assert_eq!(query.child("name", ns::VERSION).map(|n| n.text()).as_deref(), Some("drupe"));
    assert!(query.child("version", ns::VERSION).is_some_and(|v| !v.text().is_empty()), "{}", reply.to_xml());
}

#[tokio::test]
async fn a_hidden_version_is_service_unavailable() {
    let server = TestServer::start_with(|c| c.server.hide_version = true).await;
    let mut alice = server.login("alice").await;
    let reply = alice.iq(&format!("<iq type='get' id='v1' to='{DOMAIN}'><query xmlns='{}'/></iq>", ns::VERSION)).await;
    assert_eq!(reply.attr("type"), Some("error"), "{}", reply.to_xml());
    assert_eq!(error_condition(&reply).as_deref(), Some("service-unavailable"), "{}", reply.to_xml());
    let disco =
        alice.iq(&format!("<iq type='get' id='d1' to='{DOMAIN}'><query xmlns='{}'/></iq>", ns::DISCO_INFO)).await;
    let advertised =
        disco.child("query", ns::DISCO_INFO).is_some_and(|q| q.children().any(|f| f.attr("var") == Some(ns::VERSION)));
    assert!(!advertised, "a hidden version is not advertised: {}", disco.to_xml());
}

#[tokio::test]
async fn an_unknown_namespace_is_service_unavailable() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    for to in [DOMAIN, "alice@localhost"] {
        let id = alice.id();
        let reply =
            alice.iq(&format!("<iq type='get' id='{id}' to='{to}'><query xmlns='urn:example:unknown'/></iq>")).await;
        assert_eq!(reply.attr("type"), Some("error"), "{}", reply.to_xml());
        assert_eq!(error_condition(&reply).as_deref(), Some("service-unavailable"), "{}", reply.to_xml());
        // The error carries the original payload or nothing else, and comes from the addressee.
        assert_eq!(reply.attr("from"), Some(to), "{}", reply.to_xml());
    }
}

#[tokio::test]
async fn an_iq_to_another_users_full_jid_is_routed_and_answered() {
    let server = TestServer::start().await;
    let mut alice = server.login("alice").await;
    let mut bob = server.login("bob").await;
    alice.send(format!("<iq type='get' id='ask1' to='{}'><query xmlns='{}'/></iq>", bob.jid, ns::VERSION)).await;
    let request = bob.expect(|el| el.is("iq", ns::CLIENT) && el.attr("id") == Some("ask1")).await;
    assert_eq!(request.attr("from"), Some(alice.jid.as_str()), "{}", request.to_xml());
    assert_eq!(request.attr("type"), Some("get"));
    bob.send(format!(
        "<iq type='result' id='ask1' to='{}'><query xmlns='{}'><name>bobclient</name></query></iq>",
        alice.jid,
        ns::VERSION
    ))
    .await;
    let answer = alice.expect(|el| el.is("iq", ns::CLIENT) && el.attr("id") == Some("ask1")).await;
    assert_eq!(answer.attr("type"), Some("result"), "{}", answer.to_xml());
    assert_eq!(answer.attr("from"), Some(bob.jid.as_str()), "{}", answer.to_xml());
    let name = answer.child("query", ns::VERSION).and_then(|q| q.child("name", ns::VERSION)).map(|n| n.text());
    assert_eq!(name.as_deref(), Some("bobclient"));
}

#[tokio::test]
async fn an_iq_to_an_offline_full_jid_is_service_unavailable() {
    let server = TestServer::start().await;
    server.create_account("bob").await;
    let mut alice = server.login("alice").await;
    let reply = alice.iq("<iq type='get' id='x1' to='bob@localhost/nowhere'><ping xmlns='urn:xmpp:ping'/></iq>").await;
    assert_eq!(reply.attr("type"), Some("error"), "{}", reply.to_xml());
    assert_eq!(error_condition(&reply).as_deref(), Some("service-unavailable"), "{}", reply.to_xml());
}
