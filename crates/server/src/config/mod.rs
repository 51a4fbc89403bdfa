//! Configuration: one TOML file plus `DRUPE_<SECTION>_<FIELD>` environment overrides, validated before any socket
//! is bound. Every field has a default and a line of documentation in [`FIELD_DOCS`]; `drupe config example`
//! renders both into `config/example.toml`.

use std::path::PathBuf;

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
    pub http: Http,
    pub limits: Limits,
    pub auth: Auth,
    pub storage: Storage,
    pub sm: Sm,
    pub archive: Archive,
    pub muc: Muc,
    pub pubsub: Pubsub,
    pub upload: Upload,
    pub turn: Turn,
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
    pub max_pending_commits: usize,
    pub write_timeout_secs: u64,
    pub max_unauthenticated_output_bytes: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    pub cert: String,
    pub key: String,
}

/// The HTTP listener: XMPP over WebSocket (RFC 7395), BOSH (XEP-0206), XEP-0156 host-meta, and what other modules
/// mount on it (upload, web client).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Http {
    pub listen_tls: String,
    pub listen: String,
    pub public_url: String,
    pub trusted_proxy: bool,
    pub bosh_max_wait_secs: u64,
    pub bosh_inactivity_secs: u64,
    pub bosh_max_buffered_bytes: usize,
    pub web_client_dir: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_stanza_bytes: usize,
    pub max_unauthenticated_stanza_bytes: usize,
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
    pub writer_cache_kib: usize,
    pub background_nice: u8,
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
    pub max_rooms: usize,
    pub max_affiliations: usize,
    pub lock_new_rooms: bool,
    pub archive: bool,
    pub offline_delivery: bool,
}

/// XEP-0163 PEP (with XEP-0115 caps), XEP-0054 vCards and XEP-0049 private storage.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Pubsub {
    pub max_items_per_node: u32,
    pub max_item_bytes: usize,
    pub max_nodes_per_account: u32,
    pub caps_cache_size: usize,
    pub max_vcard_bytes: usize,
    pub max_private_bytes: u64,
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
            http: Http::default(),
            limits: Limits::default(),
            auth: Auth::default(),
            storage: Storage::default(),
            sm: Sm::default(),
            archive: Archive::default(),
            muc: Muc::default(),
            pubsub: Pubsub::default(),
            upload: Upload::default(),
            turn: Turn::default(),
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
            max_pending_commits: 16,
            write_timeout_secs: 30,
            max_unauthenticated_output_bytes: 64 * 1024,
        }
    }
}

impl Default for Http {
    fn default() -> Http {
        Http {
            listen_tls: "127.0.0.1:5443".into(),
            listen: String::new(),
            public_url: String::new(),
            trusted_proxy: false,
            bosh_max_wait_secs: 60,
            bosh_inactivity_secs: 60,
            bosh_max_buffered_bytes: 1024 * 1024,
            web_client_dir: "web/node_modules/converse.js/dist".into(),
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_stanza_bytes: 256 * 1024,
            max_unauthenticated_stanza_bytes: 16 * 1024,
            max_depth: 32,
            max_attributes: 64,
            max_offline_messages: 1000,
            max_resources_per_account: 16,
            csi_max_buffered: 100,
        }
    }
}

impl Limits {
    /// The stream reader's limits: before authentication a stanza may be no larger than
    /// `max_unauthenticated_stanza_bytes`, so that an anonymous connection holds little memory.
    pub fn reader(&self, authenticated: bool) -> drupe_proto::xml::Limits {
        let max_stanza_bytes = match authenticated {
            true => self.max_stanza_bytes,
            false => self.max_unauthenticated_stanza_bytes.min(self.max_stanza_bytes),
        };
        drupe_proto::xml::Limits { max_stanza_bytes, max_depth: self.max_depth, max_attributes: self.max_attributes }
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
        Storage { max_batch: 512, readers: 2, writer_cache_kib: 16 * 1024, background_nice: 10 }
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
        Muc {
            subdomain: "conference".into(),
            max_occupants: 1000,
            history: 20,
            max_rooms_per_user: 100,
            max_rooms: 10_000,
            max_affiliations: 10_000,
            lock_new_rooms: true,
            archive: true,
            offline_delivery: true,
        }
    }
}

impl Default for Pubsub {
    fn default() -> Pubsub {
        Pubsub {
            max_items_per_node: 256,
            max_item_bytes: 128 * 1024,
            max_nodes_per_account: 100,
            caps_cache_size: 1000,
            max_vcard_bytes: 128 * 1024,
            max_private_bytes: 256 * 1024,
        }
    }
}

/// XEP-0363 HTTP File Upload, served at `<subdomain>.<domain>` with the files on the HTTPS listener.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Upload {
    pub enabled: bool,
    pub subdomain: String,
    pub max_file_bytes: u64,
    pub quota_bytes: u64,
    pub daily_bytes: u64,
    pub expire_days: u64,
    pub slot_ttl_secs: u64,
}

impl Default for Upload {
    fn default() -> Upload {
        Upload {
            enabled: true,
            subdomain: "upload".into(),
            max_file_bytes: 100 * 1024 * 1024,
            quota_bytes: 1024 * 1024 * 1024,
            daily_bytes: 1024 * 1024 * 1024,
            expire_days: 30,
            slot_ttl_secs: 300,
        }
    }
}

/// XEP-0215 External Service Discovery: STUN/TURN with coturn's REST-API shared-secret credentials.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Turn {
    pub host: String,
    pub port: u16,
    pub tls_port: u16,
    pub secret: String,
    pub ttl_secs: u64,
    pub transports: String,
}

impl Default for Turn {
    fn default() -> Turn {
        Turn {
            host: String::new(),
            port: 3478,
            tls_port: 0,
            secret: String::new(),
            ttl_secs: 86_400,
            transports: "udp,tcp".into(),
        }
    }
}

impl Default for Server {
    fn default() -> Server {
        Server { hide_version: false, create_admin: true, shutdown_grace_secs: 5 }
    }
}

mod docs;
mod load;

pub use docs::FIELD_DOCS;
