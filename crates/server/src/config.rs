//! Configuration: one TOML file plus `DRUPE_<SECTION>_<FIELD>` environment overrides, validated before any socket
//! is bound. Every field has a default and a line of documentation in [`FIELD_DOCS`]; `drupe config example`
//! renders both into `config/example.toml`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config: {0}")]
    Parse(String),
    #[error("config field `{field}`: {message}")]
    Invalid { field: &'static str, message: String },
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub domain: String,
    pub data_dir: PathBuf,
    pub c2s: C2s,
    pub tls: Tls,
    pub limits: Limits,
    pub auth: Auth,
    pub storage: Storage,
    pub sm: Sm,
    pub archive: Archive,
    pub muc: Muc,
    pub server: Server,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct C2s {
    pub listen: String,
    pub listen_tls: String,
    pub require_tls: bool,
    pub max_connections: usize,
    pub auth_timeout_secs: u64,
    pub idle_timeout_secs: u64,
    pub ping_interval_secs: u64,
    pub ping_timeout_secs: u64,
    pub outbound_queue: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    pub cert: String,
    pub key: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_stanza_bytes: usize,
    pub max_depth: usize,
    pub max_attributes: usize,
    pub max_offline_messages: u32,
    pub max_resources_per_account: usize,
    pub csi_max_buffered: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    pub scram_iterations: u32,
    pub failure_delay_ms: u64,
    pub max_failure_delay_ms: u64,
    pub failure_window_secs: u64,
    pub max_attempts_per_connection: u32,
    pub fast_token_days: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Storage {
    pub max_batch: usize,
    pub readers: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Sm {
    pub resume_timeout_secs: u64,
    pub max_unacked: usize,
    pub request_ack_every: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Archive {
    pub enabled: bool,
    pub retention_days: u64,
    pub max_page: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Muc {
    pub subdomain: String,
    pub max_occupants: usize,
    pub history: usize,
    pub max_rooms_per_user: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    pub hide_version: bool,
    pub create_admin: bool,
    pub shutdown_grace_secs: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            domain: "localhost".into(),
            data_dir: PathBuf::from("drupe-data"),
            c2s: C2s::default(),
            tls: Tls::default(),
            limits: Limits::default(),
            auth: Auth::default(),
            storage: Storage::default(),
            sm: Sm::default(),
            archive: Archive::default(),
            muc: Muc::default(),
            server: Server::default(),
        }
    }
}

impl Default for C2s {
    fn default() -> C2s {
        C2s {
            listen: "127.0.0.1:5222".into(),
            listen_tls: "127.0.0.1:5223".into(),
            require_tls: true,
            max_connections: 10_000,
            auth_timeout_secs: 30,
            idle_timeout_secs: 600,
            ping_interval_secs: 120,
            ping_timeout_secs: 30,
            outbound_queue: 256,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_stanza_bytes: 256 * 1024,
            max_depth: 32,
            max_attributes: 64,
            max_offline_messages: 1000,
            max_resources_per_account: 16,
            csi_max_buffered: 100,
        }
    }
}

impl Default for Auth {
    fn default() -> Auth {
        Auth {
            scram_iterations: 4096,
            failure_delay_ms: 200,
            max_failure_delay_ms: 5000,
            failure_window_secs: 300,
            max_attempts_per_connection: 3,
            fast_token_days: 30,
        }
    }
}

impl Default for Storage {
    fn default() -> Storage {
        Storage { max_batch: 512, readers: 2 }
    }
}

impl Default for Sm {
    fn default() -> Sm {
        Sm { resume_timeout_secs: 300, max_unacked: 1000, request_ack_every: 5 }
    }
}

impl Default for Archive {
    fn default() -> Archive {
        Archive { enabled: true, retention_days: 0, max_page: 100 }
    }
}

impl Default for Muc {
    fn default() -> Muc {
        Muc { subdomain: "conference".into(), max_occupants: 1000, history: 20, max_rooms_per_user: 100 }
    }
}

impl Default for Server {
    fn default() -> Server {
        Server { hide_version: false, create_admin: true, shutdown_grace_secs: 5 }
    }
}

/// One line of documentation per field, in file order: (section, field, doc). Empty section = top level.
pub const FIELD_DOCS: &[(&str, &str, &str)] = &[
    ("", "domain", "The XMPP domain served: accounts are user@domain."),
    ("", "data_dir", "Directory for the SQLite database, generated certificates and other state."),
    ("c2s", "listen", "Client-to-server listener with STARTTLS (RFC 6120). Port 0 lets the OS pick."),
    ("c2s", "listen_tls", "Direct TLS listener (XEP-0368); empty disables it."),
    ("c2s", "require_tls", "Refuse authentication and stanzas before STARTTLS on the plain listener."),
    ("c2s", "max_connections", "Most simultaneous client connections; further connections wait in the OS backlog."),
    ("c2s", "auth_timeout_secs", "Seconds a connection may take to authenticate and bind before it is closed."),
    ("c2s", "idle_timeout_secs", "With pings disabled: seconds without any input before a session is closed."),
    ("c2s", "ping_interval_secs", "Ping (XEP-0199) a bound client silent this long; 0 disables server pings."),
    ("c2s", "ping_timeout_secs", "Seconds to wait for any input after a ping before the connection counts as dead."),
    ("c2s", "outbound_queue", "Stanzas queued for one session before further stanzas to it are refused."),
    ("tls", "cert", "PEM certificate chain; empty: a self-signed certificate is generated in data_dir/tls."),
    ("tls", "key", "PEM private key matching `cert`."),
    (
        "limits",
        "max_stanza_bytes",
        "Largest stanza accepted, in bytes; larger ones close the stream (policy-violation).",
    ),
    ("limits", "max_depth", "Deepest element nesting inside a stanza."),
    ("limits", "max_attributes", "Most attributes on one element."),
    ("limits", "max_offline_messages", "Messages kept per account while it is offline; more are refused."),
    ("limits", "max_resources_per_account", "Most sessions bound to one account at the same time."),
    ("limits", "csi_max_buffered", "Stanzas held back for an inactive client (XEP-0352) before they are sent anyway."),
    ("auth", "scram_iterations", "PBKDF2 iterations for newly set passwords (SCRAM-SHA-1 and SCRAM-SHA-256)."),
    ("auth", "failure_delay_ms", "Delay before answering a failed authentication; doubles with each failure."),
    ("auth", "max_failure_delay_ms", "Upper bound of that delay."),
    ("auth", "failure_window_secs", "Failures from one address are remembered this long."),
    ("auth", "max_attempts_per_connection", "Failed authentications allowed on one connection before it is closed."),
    ("auth", "fast_token_days", "Lifetime of XEP-0484 FAST login tokens; 0 disables FAST."),
    ("storage", "max_batch", "Most writes committed together in one transaction (group commit)."),
    ("storage", "readers", "SQLite read connections."),
    ("sm", "resume_timeout_secs", "Seconds a dropped session with XEP-0198 resumption waits for its client to resume."),
    ("sm", "max_unacked", "Stanzas sent to a client and not yet acknowledged before its stream is closed."),
    ("sm", "request_ack_every", "Ask the client for an acknowledgement after this many unacknowledged stanzas."),
    ("archive", "enabled", "Keep every account's 1:1 messages (XEP-0313) unless the user's preferences say otherwise."),
    ("archive", "retention_days", "Delete archived messages older than this many days (hourly); 0 keeps them forever."),
    ("archive", "max_page", "Most messages returned in one archive query page."),
    ("muc", "subdomain", "Group chat (XEP-0045) service address: <subdomain>.<domain>."),
    ("muc", "max_occupants", "Most occupants in one room."),
    ("muc", "history", "Messages a room keeps and sends to a newcomer."),
    ("muc", "max_rooms_per_user", "Rooms one account may be in before it can create no more (XEP-0045)."),
    ("server", "hide_version", "Answer XEP-0092 version queries with service-unavailable."),
    ("server", "create_admin", "On first start with no accounts, create admin@domain and print its password."),
    ("server", "shutdown_grace_secs", "Seconds sessions get to drain after SIGTERM/SIGINT."),
];

const SECTIONS: &[&str] = &["c2s", "tls", "limits", "auth", "storage", "sm", "archive", "muc", "server"];
const ENV_PREFIX: &str = "DRUPE_";

impl Config {
    /// Reads `path` (or only defaults when `None`), applies environment overrides, validates.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p).map_err(|source| ConfigError::Read { path: p.into(), source })?,
            None => String::new(),
        };
        Config::from_toml(&text, std::env::vars())
    }

    /// Parses TOML text, then applies `DRUPE_*` overrides from `env`, then validates.
    pub fn from_toml(text: &str, env: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        for (key, value) in env {
            let Some(rest) = key.strip_prefix(ENV_PREFIX) else { continue };
            let rest = rest.to_ascii_lowercase();
            let value = parse_env_value(&value);
            if rest == "domain" || rest == "data_dir" {
                table.insert(rest, value);
            } else if let Some((section, field)) = rest.split_once('_') {
                if SECTIONS.contains(&section) {
                    let entry = table.entry(section).or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    if let toml::Value::Table(t) = entry {
                        t.insert(field.to_owned(), value);
                    }
                }
            }
        }
        // serde_path_to_error keeps the key path, so a wrong type or range names its field.
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
            let field = e.path().to_string();
            ConfigError::Parse(format!("field `{field}`: {}", e.into_inner().message()))
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
            ConfigError::Invalid { field, message: message.into() }
        }
        if jid_domain_ok(&self.domain).is_err() {
            return Err(invalid("domain", format!("`{}` is not a valid XMPP domain", self.domain)));
        }
        self.c2s.listen.parse::<SocketAddr>().map_err(|e| invalid("c2s.listen", e.to_string()))?;
        if !self.c2s.listen_tls.is_empty() {
            self.c2s.listen_tls.parse::<SocketAddr>().map_err(|e| invalid("c2s.listen_tls", e.to_string()))?;
        }
        if self.tls.cert.is_empty() != self.tls.key.is_empty() {
            return Err(invalid("tls.cert", "tls.cert and tls.key must be set together"));
        }
        let positive: [(&'static str, u64); 16] = [
            ("c2s.max_connections", self.c2s.max_connections as u64),
            ("c2s.auth_timeout_secs", self.c2s.auth_timeout_secs),
            ("c2s.idle_timeout_secs", self.c2s.idle_timeout_secs),
            ("c2s.outbound_queue", self.c2s.outbound_queue as u64),
            ("limits.max_depth", self.limits.max_depth as u64),
            ("limits.max_resources_per_account", self.limits.max_resources_per_account as u64),
            ("auth.max_attempts_per_connection", self.auth.max_attempts_per_connection as u64),
            ("storage.max_batch", self.storage.max_batch as u64),
            ("storage.readers", self.storage.readers as u64),
            ("c2s.ping_timeout_secs", self.c2s.ping_timeout_secs),
            ("limits.csi_max_buffered", self.limits.csi_max_buffered as u64),
            ("sm.max_unacked", self.sm.max_unacked as u64),
            ("archive.max_page", self.archive.max_page as u64),
            ("muc.max_occupants", self.muc.max_occupants as u64),
            ("muc.max_rooms_per_user", self.muc.max_rooms_per_user as u64),
            ("sm.request_ack_every", self.sm.request_ack_every as u64),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(invalid(field, "must be greater than 0"));
            }
        }
        if jid_domain_ok(&format!("{}.{}", self.muc.subdomain, self.domain)).is_err()
            || self.muc.subdomain.contains('.')
        {
            return Err(invalid("muc.subdomain", format!("`{}` is not a valid DNS label", self.muc.subdomain)));
        }
        if self.limits.max_stanza_bytes < 1024 {
            return Err(invalid("limits.max_stanza_bytes", "must be at least 1024"));
        }
        if self.auth.scram_iterations < 4096 {
            return Err(invalid("auth.scram_iterations", "must be at least 4096 (RFC 7677)"));
        }
        Ok(())
    }

    /// The documented example file: every field with its default value.
    pub fn example() -> String {
        let defaults = toml::Value::try_from(Config::default()).unwrap_or(toml::Value::Table(Default::default()));
        let mut out = String::from(
            "# drupe configuration. Every field is optional; the values shown are the defaults.\n\
             # Any field can be overridden from the environment: DRUPE_DOMAIN, DRUPE_DATA_DIR, DRUPE_C2S_LISTEN, ...\n\
             # Generated by `drupe config example`.\n",
        );
        let mut section = "";
        for (sec, field, doc) in FIELD_DOCS {
            if *sec != section {
                section = sec;
                out.push_str(&format!("\n[{sec}]\n"));
            } else if sec.is_empty() && out.ends_with(".\n") {
                out.push('\n');
            }
            let value = if sec.is_empty() { defaults.get(field) } else { defaults.get(sec).and_then(|s| s.get(field)) };
            let rendered = value.map(|v| v.to_string()).unwrap_or_default();
            out.push_str(&format!("# {doc}\n{field} = {rendered}\n"));
        }
        out
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    // Numbers and booleans keep their type; anything else is a string.
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => match t.remove("v") {
            Some(v @ (toml::Value::Integer(_) | toml::Value::Boolean(_) | toml::Value::Float(_))) => v,
            _ => toml::Value::String(raw.to_owned()),
        },
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn jid_domain_ok(domain: &str) -> Result<(), ()> {
    if domain.is_empty() || domain.len() > 1023 || domain.contains(['@', '/', ' ']) {
        return Err(());
    }
    drupe_proto::BareJid::new(domain).map(|_| ()).map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn example_file_is_current_and_parses_to_defaults() {
        let example = Config::example();
        let parsed = Config::from_toml(&example, env(&[])).expect("example parses");
        assert_eq!(parsed, Config::default());
        let committed = include_str!("../../../config/example.toml");
        assert_eq!(
            committed, example,
            "config/example.toml is stale: run `drupe config example > config/example.toml`"
        );
    }

    #[test]
    fn every_field_is_documented() {
        let defaults = toml::Value::try_from(Config::default()).unwrap();
        let mut count = 0;
        for (k, v) in defaults.as_table().unwrap() {
            match v.as_table() {
                Some(t) => {
                    for f in t.keys() {
                        assert!(FIELD_DOCS.iter().any(|(s, n, _)| s == k && n == f), "{k}.{f} undocumented");
                        count += 1;
                    }
                }
                None => {
                    assert!(FIELD_DOCS.iter().any(|(s, n, _)| s.is_empty() && n == k), "{k} undocumented");
                    count += 1;
                }
            }
        }
        assert_eq!(count, FIELD_DOCS.len());
    }

    #[test]
    fn env_overrides_apply_with_types() {
        let c = Config::from_toml(
            "domain = 'a.example'\n[c2s]\nlisten = '127.0.0.1:1'\n",
            env(&[
                ("DRUPE_C2S_LISTEN", "127.0.0.1:0"),
                ("DRUPE_C2S_LISTEN_TLS", ""),
                ("DRUPE_LIMITS_MAX_DEPTH", "7"),
                ("DRUPE_SERVER_HIDE_VERSION", "true"),
                ("DRUPE_DATA_DIR", "/tmp/x"),
                ("DRUPE_BIN", "ignored: not a config section"),
            ]),
        )
        .unwrap();
        assert_eq!(c.domain, "a.example");
        assert_eq!(c.c2s.listen, "127.0.0.1:0");
        assert_eq!(c.c2s.listen_tls, "");
        assert_eq!(c.limits.max_depth, 7);
        assert!(c.server.hide_version);
        assert_eq!(c.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn bad_values_name_the_field() {
        let cases = [
            ("[c2s]\nlisten = 'nope'\n", "c2s.listen"),
            ("[limits]\nmax_stanza_bytes = 10\n", "limits.max_stanza_bytes"),
            ("domain = 'a b'\n", "domain"),
            ("[tls]\ncert = 'x.pem'\n", "tls.cert"),
            ("[auth]\nscram_iterations = 1\n", "auth.scram_iterations"),
        ];
        for (text, field) in cases {
            let err = Config::from_toml(text, env(&[])).unwrap_err().to_string();
            assert!(err.contains(field), "{err} should name {field}");
        }
        let err = Config::from_toml("[c2s]\nlisen = '1'\n", env(&[])).unwrap_err().to_string();
        assert!(err.contains("lisen"), "{err}");
        let err = Config::from_toml("[limits]\nmax_depth = 'deep'\n", env(&[])).unwrap_err().to_string();
        assert!(err.contains("limits.max_depth"), "{err}");
        let err = Config::from_toml("[limits]\nmax_stanza_bytes = -5\n", env(&[])).unwrap_err().to_string();
        assert!(err.contains("limits.max_stanza_bytes"), "{err}");
        let err = Config::from_toml("", env(&[("DRUPE_AUTH_FAILURE_DELAY_MS", "soon")])).unwrap_err().to_string();
        assert!(err.contains("auth.failure_delay_ms"), "{err}");
    }
}
