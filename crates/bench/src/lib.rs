//! drupe-bench: a load tool that drives any XMPP server over STARTTLS (RFC 6120) with idle, login, chat and
//! lanying scenarios, and reports latencies, rates, and the server's memory and CPU read from `/proc`.
//!
//! The binary (`main.rs`) is a thin CLI; everything it runs lives here so that tests can call the scenarios.

pub mod client;
pub mod proc;
pub mod progress;
pub mod raw;
pub mod report;
pub mod scenario;
pub mod scram;
pub mod stats;
pub mod tls;
pub mod ws;

use std::time::Duration;

/// The SASL mechanism the clients use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    ScramSha1,
    ScramSha256,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
        }
    }

    pub fn from_name(name: &str) -> Option<Mechanism> {
        [Mechanism::Plain, Mechanism::ScramSha1, Mechanism::ScramSha256]
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name))
    }
}

/// Where and as whom the clients log in.
#[derive(Clone, Debug)]
pub struct Target {
    /// Host name or address to connect to.
    pub host: String,
    pub port: u16,
    /// The XMPP domain (stream `to`, JID domain, TLS server name).
    pub domain: String,
    /// Username pattern; `{}` is replaced by the user's index (`user{}` → `user0`, `user1`, ...).
    pub user_pattern: String,
    pub password: String,
    pub mechanism: Mechanism,
    /// Bound on each login step and on connect.
    pub timeout: Duration,
    /// Allow TLS session resumption between connections (off: every login pays a full handshake).
    pub tls_resumption: bool,
    /// Log in over RFC 7395 WebSocket at this `wss://` URL instead of TCP with STARTTLS (login scenario).
    pub websocket: Option<String>,
}

impl Target {
    /// A target on `127.0.0.1:port` for domain `localhost`, users `user{}` with password `secret`, PLAIN.
    pub fn local(port: u16) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port,
            domain: "localhost".into(),
            user_pattern: "user{}".into(),
            password: "secret".into(),
            mechanism: Mechanism::Plain,
            timeout: Duration::from_secs(30),
            tls_resumption: false,
            websocket: None,
        }
    }

    /// The username (localpart) of user `index`.
    pub fn username(&self, index: usize) -> String {
        if self.user_pattern.contains("{}") {
            self.user_pattern.replace("{}", &index.to_string())
        } else {
            format!("{}{index}", self.user_pattern)
        }
    }
}

/// Error of a scenario as a whole (as opposed to one failed client, which is counted).
#[derive(Debug)]
pub struct BenchError(pub String);

impl std::fmt::Display for BenchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}
