//! The integration-test harness: a real drupe server started in-process (port 0, temporary SQLite data directory)
//! and a small XMPP client speaking to it over real TCP and TLS, so scenarios read like a conversation.
//!
//! Every wait is bounded: a step that does not happen fails the test after [`WAIT`] with what was received instead.
#![allow(dead_code)] // each test binary uses a different part of the harness

mod client;
mod conn;
pub mod http;
mod scram;
pub mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use drupe_server::config::Config;
use drupe_server::Server;

#[allow(unused_imports)] // not every test binary needs all of them
pub use client::Client;
#[allow(unused_imports)]
pub use client::{MAM, SM};
#[allow(unused_imports)]
pub use conn::{header, tls_connector, Conn, SASL2};
#[allow(unused_imports)]
pub use drupe_proto::ns;
pub use drupe_proto::xml::Element;

/// How long any single expected step may take.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long to listen when asserting that nothing arrives.
pub const QUIET: Duration = Duration::from_millis(300);
/// The served domain.
pub const DOMAIN: &str = "localhost";
/// Every account's password unless a test chooses another.
pub const PASSWORD: &str = "secret-pw";

/// A running server with its own data directory, removed when the last handle to it is dropped.
pub struct TestServer {
    server: Option<Server>,
    config: Config,
    dir: Arc<tempfile::TempDir>,
}

/// The configuration every test starts from: ephemeral ports, a fresh data directory, fast failures.
fn base_config(data_dir: PathBuf) -> Config {
    let mut config = Config { data_dir, domain: DOMAIN.into(), ..Config::default() };
    config.c2s.listen = "127.0.0.1:0".into();
    config.c2s.listen_tls = "127.0.0.1:0".into();
    config.http.listen_tls = "127.0.0.1:0".into();
    config.server.create_admin = false;
    config.server.shutdown_grace_secs = 2;
    config.auth.failure_delay_ms = 10;
    config.auth.max_failure_delay_ms = 50;
    config
}

fn init_tracing() {
    // RUST_LOG=drupe_server=debug shows the server's side of a failing test.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server after `adjust` changed the test configuration.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        init_tracing();
        let dir = Arc::new(tempfile::tempdir().expect("temporary data directory"));
        let mut config = base_config(dir.path().to_path_buf());
        adjust(&mut config);
        TestServer::launch(config, dir).await
    }

    async fn launch(config: Config, dir: Arc<tempfile::TempDir>) -> TestServer {
        let server = Server::start(config.clone()).await.expect("server starts");
        TestServer { server: Some(server), config, dir }
    }

    fn server(&self) -> &Server {
        self.server.as_ref().expect("server is running")
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The STARTTLS listener.
    pub fn addr(&self) -> SocketAddr {
        self.server().c2s
    }

    /// The direct TLS listener.
    pub fn tls_addr(&self) -> SocketAddr {
        self.server().c2s_tls.expect("direct TLS listener is enabled")
    }

    /// The HTTPS listener (WebSocket, BOSH, host-meta, upload).
    pub fn https_addr(&self) -> SocketAddr {
        self.server().http_tls.expect("HTTPS listener is enabled")
    }

    /// The plain HTTP listener, when the test configured `http.listen`.
    pub fn http_addr(&self) -> SocketAddr {
        self.server().http.expect("plain HTTP listener is enabled")
    }

    /// An RFC 7395 WebSocket stream to the HTTPS listener, nothing sent yet.
    pub async fn connect_ws(&self) -> Conn {
        Conn::connect_ws(self.https_addr()).await
    }

    /// Logs `name` in over WebSocket (creating the account) with SCRAM-SHA-256, binds resource "test" and sends
    /// initial presence.
    pub async fn login_ws(&self, name: &str) -> Client {
        self.create_account(name).await;
        let mut conn = self.connect_ws().await;
        let features = conn.open().await;
        assert!(features.child("starttls", ns::TLS).is_none(), "STARTTLS offered over WebSocket");
        conn.auth_scram(name, PASSWORD).await.unwrap_or_else(|f| panic!("SCRAM refused: {}", f.to_xml()));
        Client::finish_login(conn, name, Some("test"), true).await
    }

    /// The running server's store (for checks on what was persisted).
    pub fn store(&self) -> &drupe_store::Store {
        self.server().store()
    }

    /// The running server's configuration.
    pub fn server_config(&self) -> &Config {
        self.server().config()
    }

    pub fn session_count(&self) -> usize {
        self.server().session_count()
    }

    /// Creates `name` with [`PASSWORD`] unless it exists.
    pub async fn create_account(&self, name: &str) {
        self.create_account_with(name, PASSWORD).await;
    }

    pub async fn create_account_with(&self, name: &str, password: &str) {
        let s = self.server();
        match drupe_server::accounts::add(s.store(), s.config(), name, password.into()).await {
            Ok(_) | Err(drupe_server::accounts::AccountError::Exists(_)) => {}
            Err(e) => panic!("cannot create account {name}: {e}"),
        }
    }

    /// A plain TCP connection to the STARTTLS port, nothing sent yet.
    pub async fn connect(&self) -> Conn {
        Conn::connect(self.addr(), false).await
    }

    /// A connection to the direct TLS port, TLS already negotiated.
    pub async fn connect_tls(&self) -> Conn {
        Conn::connect(self.tls_addr(), true).await
    }

    /// Logs `name` in (creating the account) with PLAIN over STARTTLS, binds resource "test" and sends initial
    /// presence.
    pub async fn login(&self, name: &str) -> Client {
        self.login_with(name, Some("test"), true).await
    }

    /// Like [`TestServer::login`] with a chosen resource (`None`: server-generated) and optional initial presence.
    pub async fn login_with(&self, name: &str, resource: Option<&str>, presence: bool) -> Client {
        self.create_account(name).await;
        let mut conn = self.connect().await;
        conn.start_tls().await;
        let outcome = conn.auth_plain("", name, PASSWORD).await;
        assert!(outcome.is("success", ns::SASL), "{name}: PLAIN refused: {}", outcome.to_xml());
        Client::finish_login(conn, name, resource, presence).await
    }

    /// Logs `name` in with SCRAM-SHA-256 instead of PLAIN.
    pub async fn login_scram(&self, name: &str) -> Client {
        self.create_account(name).await;
        let mut conn = self.connect().await;
        conn.start_tls().await;
        conn.auth_scram(name, PASSWORD).await.unwrap_or_else(|f| panic!("SCRAM refused: {}", f.to_xml()));
        Client::finish_login(conn, name, Some("test"), true).await
    }

    /// Graceful shutdown, then a new server on the same data directory (new ports).
    pub async fn restart(mut self) -> TestServer {
        let server = self.server.take().expect("server is running");
        server.shutdown().await;
        TestServer::launch(self.config.clone(), self.dir.clone()).await
    }

    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

impl TestServer {
    /// The data directory (kept across [`TestServer::restart`]).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Makes `a` and `b` mutual contacts (subscription both) directly in the store, creating both accounts.
    pub async fn befriend(&self, a: &str, b: &str) {
        self.create_account(a).await;
        self.create_account(b).await;
        for (owner, contact) in [(a, b), (b, a)] {
            let item = drupe_store::RosterItem {
                jid: bare(contact),
                name: None,
                subscription: drupe_store::Subscription::Both,
                ask_out: false,
                pending_in: false,
                approved: false,
                groups: Vec::new(),
            };
            self.server().store().roster_put(owner, &item).await.expect("roster item stored");
        }
    }

    /// A connection authenticated as `name` with PLAIN over STARTTLS, the post-authentication stream opened and its
    /// features read; nothing bound yet (for XEP-0198 resumption).
    pub async fn authenticated(&self, name: &str) -> Conn {
        self.create_account(name).await;
        let mut conn = self.connect().await;
        conn.start_tls().await;
        let outcome = conn.auth_plain("", name, PASSWORD).await;
        assert!(outcome.is("success", ns::SASL), "{name}: PLAIN refused: {}", outcome.to_xml());
        conn.open().await;
        conn
    }

    /// A TLS connection whose stream is open, with the features offered (SASL and SASL2) returned.
    pub async fn unauthenticated(&self) -> (Conn, Element) {
        let mut conn = self.connect().await;
        let features = conn.start_tls().await;
        (conn, features)
    }
}

/// `user@localhost`.
pub fn bare(user: &str) -> String {
    format!("{user}@{DOMAIN}")
}

/// The condition element of an `<error/>` child of a stanza, if any.
pub fn error_condition(stanza: &Element) -> Option<String> {
    let error = stanza.child("error", ns::CLIENT)?;
    error.children().find(|c| c.ns() == ns::STANZA_ERRORS && c.name() != "text").map(|c| c.name().to_owned())
}

/// Whether `stanza` is a message carrying `body`.
pub fn has_body(stanza: &Element, body: &str) -> bool {
    stanza.is("message", ns::CLIENT) && stanza.child("body", ns::CLIENT).is_some_and(|b| b.text() == body)
}

/// The items of a roster query result or push.
pub fn roster_items(stanza: &Element) -> Vec<Element> {
    stanza
        .child("query", ns::ROSTER)
        .map(|q| q.children().filter(|i| i.is("item", ns::ROSTER)).cloned().collect())
        .unwrap_or_default()
}

/// The roster item for `jid` in a roster result or push.
pub fn roster_item(stanza: &Element, jid: &str) -> Option<Element> {
    roster_items(stanza).into_iter().find(|i| i.attr("jid") == Some(jid))
}

/// XEP-0045 Multi-User Chat namespaces and the service address the test configuration gives it.
pub mod muc {
    use drupe_proto::ns;
    use drupe_proto::xml::Element;

    pub const MUC: &str = "http://jabber.org/protocol/muc";
    pub const MUC_USER: &str = "http://jabber.org/protocol/muc#user";
    pub const MUC_OWNER: &str = "http://jabber.org/protocol/muc#owner";
    pub const MUC_ADMIN: &str = "http://jabber.org/protocol/muc#admin";
    /// `conference.localhost`, the default `muc.subdomain` under [`super::DOMAIN`].
    pub const SERVICE: &str = "conference.localhost";

    /// `room@conference.localhost`.
    pub fn room(name: &str) -> String {
        format!("{name}@{SERVICE}")
    }

    /// `room@conference.localhost/nick`.
    pub fn occupant(room_name: &str, nick: &str) -> String {
        format!("{}/{nick}", room(room_name))
    }

    /// A submitted data form field `var` with one value.
    pub fn field(var: &str, value: &str) -> String {
        format!("<field var='{var}'><value>{value}</value></field>")
    }

    /// The `<x xmlns='…muc#user'/>` child of a presence or message.
    pub fn user_x(stanza: &Element) -> Option<&Element> {
        stanza.child("x", MUC_USER)
    }

    /// The muc#user `<item/>` of a presence.
    pub fn item(stanza: &Element) -> Option<&Element> {
        user_x(stanza)?.child("item", MUC_USER)
    }

    /// The muc#user status codes of a stanza, in document order.
    pub fn statuses(stanza: &Element) -> Vec<String> {
        user_x(stanza)
            .map(|x| {
                x.children()
                    .filter(|c| c.is("status", MUC_USER))
                    .filter_map(|c| c.attr("code").map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn has_status(stanza: &Element, code: &str) -> bool {
        statuses(stanza).iter().any(|c| c == code)
    }

    /// A presence of `kind` (`None`: available) from the occupant JID `from`.
    pub fn is_presence(stanza: &Element, from: &str, kind: Option<&str>) -> bool {
        stanza.is("presence", ns::CLIENT) && stanza.attr("from") == Some(from) && stanza.attr("type") == kind
    }

    /// A room's subject message (XEP-0045 §7.2.15): a groupchat message with `<subject/>` and no `<body/>`.
    pub fn is_subject(stanza: &Element) -> bool {
        stanza.is("message", ns::CLIENT)
            && stanza.attr("type") == Some("groupchat")
            && stanza.child("subject", ns::CLIENT).is_some()
            && stanza.child("body", ns::CLIENT).is_none()
    }

    /// A groupchat message from `from` carrying `body`.
    pub fn is_groupchat(stanza: &Element, from: &str, body: &str) -> bool {
        stanza.is("message", ns::CLIENT)
            && stanza.attr("type") == Some("groupchat")
            && stanza.attr("from") == Some(from)
            && stanza.child("body", ns::CLIENT).is_some_and(|b| b.text() == body)
    }
}
