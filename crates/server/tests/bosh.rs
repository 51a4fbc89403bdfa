//! XEP-0124/XEP-0206 BOSH at `/http-bind`: session creation, SASL and restart, bind, chat with a TCP user through
//! long polls (hold=1), rid ordering and retransmission, bad sids, termination.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{has_body, http, ns, Element, TestServer, PASSWORD};

const HTTPBIND: &str = "http://jabber.org/protocol/httpbind";

/// One BOSH session as a client keeps it.
struct Bosh {
    addr: std::net::SocketAddr,
    sid: String,
    rid: u64,
}

fn parse_body(response: &str) -> Element {
    let text = http::body(response);
    let body = Element::parse(text).unwrap_or_else(|| panic!("not a body: {response}"));
    assert!(body.is("body", HTTPBIND), "{response}");
    body
}

impl Bosh {
    /// Creates a session (wait 2 s); returns it and the creation response.
    async fn create(server: &TestServer) -> (Bosh, Element) {
        let addr = server.https_addr();
        let rid = 1000;
        let request = format!(
            "<body xmlns='{HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' to='localhost' rid='{rid}' wait='2' hold='1' \
             xmpp:version='1.0' xml:lang='en'/>"
        );
        let response = http::request(addr, "POST", "/http-bind", &request).await;
        assert!(response.to_ascii_lowercase().contains("access-control-allow-origin: *"), "{response}");
        let body = parse_body(&response);
        let sid = body.attr("sid").unwrap_or_else(|| panic!("no sid: {response}")).to_owned();
        (Bosh { addr, sid, rid }, body)
    }

    fn next_request(&mut self, attrs: &str, payload: &str) -> String {
        self.rid += 1;
        format!("<body xmlns='{HTTPBIND}' sid='{}' rid='{}'{attrs}>{payload}</body>", self.sid, self.rid)
    }

    async fn post(&self, request: String) -> Element {
        parse_body(&http::request_within(self.addr, "POST", "/http-bind", &request, Duration::from_secs(8)).await)
    }

    /// Sends `payload` in the next request and returns the response body.
    async fn send(&mut self, payload: &str) -> Element {
        let request = self.next_request("", payload);
        self.post(request).await
    }

    /// Polls until a response carries an element matching `pred`.
    async fn expect(&mut self, pred: impl Fn(&Element) -> bool) -> Element {
        for _ in 0..5 {
            let body = self.send("").await;
            let found = body.children().find(|c| pred(c)).cloned();
            if let Some(el) = found {
                return el;
            }
        }
        panic!("expected element did not arrive");
    }

    /// Creation, SASL PLAIN, restart, bind, initial presence: a bound session.
    async fn login(server: &TestServer, name: &str) -> (Bosh, String) {
        server.create_account(name).await;
        let (mut bosh, created) = Bosh::create(server).await;
        let features = match created.child("features", ns::STREAMS) {
            Some(f) => f.clone(),
            None => bosh.expect(|el| el.is("features", ns::STREAMS)).await,
        };
        let mechs = features.child("mechanisms", ns::SASL).map(|m| m.to_xml()).unwrap_or_default();
        assert!(mechs.contains("PLAIN") && features.child("starttls", ns::TLS).is_none(), "{}", features.to_xml());
        let creds = base64::engine::general_purpose::STANDARD.encode(format!("\0{name}\0{PASSWORD}"));
        let auth = format!("<auth xmlns='{}' mechanism='PLAIN'>{creds}</auth>", ns::SASL);
        let body = bosh.send(&auth).await;
        assert!(body.child("success", ns::SASL).is_some(), "{}", body.to_xml());
        let request = bosh.next_request(" xmlns:xmpp='urn:xmpp:xbosh' xmpp:restart='true' to='localhost'", "");
        let body = bosh.post(request).await;
        assert!(
            body.child("features", ns::STREAMS).and_then(|f| f.child("bind", ns::BIND)).is_some(),
            "{}",
            body.to_xml()
        );
        let bind = format!(
            "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='{}'><resource>web</resource></bind></iq>",
            ns::BIND
        );
        let body = bosh.send(&bind).await;
        let jid = body
            .child("iq", ns::CLIENT)
            .and_then(|iq| iq.child("bind", ns::BIND))
            .and_then(|b| b.child("jid", ns::BIND))
            .map(Element::text)
            .unwrap_or_else(|| panic!("bind: {}", body.to_xml()));
        // Initial presence comes back to the session itself, so this request is answered at once.
        let body = bosh.send("<presence xmlns='jabber:client'/>").await;
        if !body.children().any(|c| c.is("presence", ns::CLIENT)) {
            bosh.expect(|el| el.is("presence", ns::CLIENT)).await;
        }
        (bosh, jid)
    }
}

#[tokio::test]
async fn a_bosh_user_logs_in_and_chats_with_a_tcp_user_through_long_polls() {
    let server = TestServer::start().await;
    server.befriend("alice", "bob").await;
    let mut bob = server.login("bob").await;
    let (mut alice, jid) = Bosh::login(&server, "alice").await;
    assert!(jid.starts_with("alice@localhost/web"), "{jid}");
    bob.expect(|el| el.is("presence", ns::CLIENT) && el.attr("from") == Some(jid.as_str())).await;

    // A long poll is held; the next request (carrying a message) releases it (hold = 1) and is held in turn
    // until bob's answer arrives for it.
    let poll = alice.next_request("", "");
    let addr = alice.addr;
    let held =
        tokio::spawn(
            async move { http::request_within(addr, "POST", "/http-bind", &poll, Duration::from_secs(8)).await },
        );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let message =
        format!("<message xmlns='jabber:client' to='{}' type='chat'><body>from bosh</body></message>", bob.jid);
    let send = alice.next_request("", &message);
    let sent = tokio::spawn({
        let addr = alice.addr;
        async move { http::request_within(addr, "POST", "/http-bind", &send, Duration::from_secs(8)).await }
    });
    let released = parse_body(&held.await.expect("poll task"));
    assert_eq!(released.children().count(), 0, "released empty: {}", released.to_xml());
    let got = bob.expect(|el| has_body(el, "from bosh")).await;
    assert_eq!(got.attr("from"), Some(jid.as_str()));
    bob.say(&jid, "from tcp").await;
    let answer = parse_body(&sent.await.expect("send task"));
    assert!(answer.children().any(|c| has_body(c, "from tcp")), "{}", answer.to_xml());

    // Termination ends the session like a closed stream.
    let request = alice.next_request(" type='terminate'", "<presence xmlns='jabber:client' type='unavailable'/>");
    let body = alice.post(request).await;
    assert_eq!(body.attr("type"), Some("terminate"), "{}", body.to_xml());
    bob.expect(|el| el.is("presence", ns::CLIENT) && el.attr("type") == Some("unavailable")).await;
    let body = alice.send("").await;
    assert_eq!((body.attr("type"), body.attr("condition")), (Some("terminate"), Some("item-not-found")));
}

#[tokio::test]
async fn a_held_request_is_answered_empty_after_wait() {
    let server = TestServer::start().await;
    let (mut alice, _) = Bosh::login(&server, "alice").await;
    let started = std::time::Instant::now();
    let body = alice.send("").await;
    let waited = started.elapsed();
    assert_eq!(body.children().count(), 0, "{}", body.to_xml());
    assert!(waited >= Duration::from_millis(1500) && waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn a_retransmitted_rid_gets_the_same_answer_and_rids_out_of_window_end_the_session() {
    let server = TestServer::start().await;
    let (mut alice, _) = Bosh::login(&server, "alice").await;
    let ping = "<iq xmlns='jabber:client' type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>";
    let request = alice.next_request("", ping);
    let first = alice.post(request.clone()).await;
    assert!(first.child("iq", ns::CLIENT).is_some(), "{}", first.to_xml());
    let again = alice.post(request).await;
    assert_eq!(again.to_xml(), first.to_xml(), "retransmission (XEP-0124 §14.3)");

    alice.rid += 5;
    let body = alice.send("").await;
    assert_eq!((body.attr("type"), body.attr("condition")), (Some("terminate"), Some("item-not-found")));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.session_count(), 0);
}

#[tokio::test]
async fn unknown_sessions_and_malformed_bodies_are_refused() {
    let server = TestServer::start().await;
    let addr = server.https_addr();
    let unknown = format!("<body xmlns='{HTTPBIND}' sid='nope' rid='1'/>");
    let body = parse_body(&http::request(addr, "POST", "/http-bind", &unknown).await);
    assert_eq!(body.attr("condition"), Some("item-not-found"));
    let body = parse_body(&http::request(addr, "POST", "/http-bind", "<body xmlns='other' rid='1'/>").await);
    assert_eq!(body.attr("condition"), Some("bad-request"));
    let wrong_host = format!("<body xmlns='{HTTPBIND}' to='elsewhere.example' rid='1' wait='2' hold='1'/>");
    let body = parse_body(&http::request(addr, "POST", "/http-bind", &wrong_host).await);
    assert_eq!(body.attr("condition"), Some("host-unknown"));
    let preflight = http::request(addr, "OPTIONS", "/http-bind", "").await;
    assert!(preflight.to_ascii_lowercase().contains("access-control-allow-headers: content-type"), "{preflight}");
}

#[tokio::test]
async fn a_stream_error_ends_the_session_with_remote_stream_error() {
    let server = TestServer::start().await;
    let (mut alice, _) = Bosh::login(&server, "alice").await;
    // The same resource bound over TCP replaces the BOSH session (RFC 6120 §7.7.2.2): its held poll carries the
    // <conflict/> stream error.
    let poll = alice.next_request("", "");
    let addr = alice.addr;
    let held =
        tokio::spawn(
            async move { http::request_within(addr, "POST", "/http-bind", &poll, Duration::from_secs(8)).await },
        );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _tcp = server.login_with("alice", Some("web"), false).await;
    let body = parse_body(&held.await.expect("poll task"));
    assert_eq!(body.attr("type"), Some("terminate"), "{}", body.to_xml());
    assert_eq!(body.attr("condition"), Some("remote-stream-error"), "{}", body.to_xml());
    let error = body.child("error", ns::STREAMS).unwrap_or_else(|| panic!("{}", body.to_xml()));
    assert!(error.child("conflict", ns::STREAM_ERRORS).is_some(), "{}", error.to_xml());
}
