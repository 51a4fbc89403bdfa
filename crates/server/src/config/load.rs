//! Loading the configuration: the TOML file, `DRUPE_<SECTION>_<FIELD>` overrides, validation, and the rendered
//! example.

use std::net::SocketAddr;
use std::path::Path;

use super::*;

const SECTIONS: &[&str] =
    &["c2s", "tls", "http", "limits", "auth", "storage", "sm", "archive", "muc", "pubsub", "upload", "turn", "server"];
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
        self.validate_http()?;
        if self.tls.cert.is_empty() != self.tls.key.is_empty() {
            return Err(invalid("tls.cert", "tls.cert and tls.key must be set together"));
        }
        let positive: [(&'static str, u64); 25] = [
            ("c2s.write_timeout_secs", self.c2s.write_timeout_secs),
            ("c2s.max_unauthenticated_output_bytes", self.c2s.max_unauthenticated_output_bytes as u64),
            ("c2s.max_connections", self.c2s.max_connections as u64),
            ("c2s.auth_timeout_secs", self.c2s.auth_timeout_secs),
            ("c2s.idle_timeout_secs", self.c2s.idle_timeout_secs),
            ("c2s.outbound_queue", self.c2s.outbound_queue as u64),
            ("c2s.max_pending_commits", self.c2s.max_pending_commits as u64),
            ("limits.max_depth", self.limits.max_depth as u64),
            ("limits.max_resources_per_account", self.limits.max_resources_per_account as u64),
            ("auth.max_attempts_per_connection", self.auth.max_attempts_per_connection as u64),
            ("storage.max_batch", self.storage.max_batch as u64),
            ("storage.readers", self.storage.readers as u64),
            ("storage.writer_cache_kib", self.storage.writer_cache_kib as u64),
            ("c2s.ping_timeout_secs", self.c2s.ping_timeout_secs),
            ("limits.csi_max_buffered", self.limits.csi_max_buffered as u64),
            ("sm.max_unacked", self.sm.max_unacked as u64),
            ("archive.max_page", self.archive.max_page as u64),
            ("muc.max_occupants", self.muc.max_occupants as u64),
            ("muc.max_rooms_per_user", self.muc.max_rooms_per_user as u64),
            ("muc.max_rooms", self.muc.max_rooms as u64),
            ("muc.max_affiliations", self.muc.max_affiliations as u64),
            ("sm.request_ack_every", self.sm.request_ack_every as u64),
            ("pubsub.max_items_per_node", u64::from(self.pubsub.max_items_per_node)),
            ("pubsub.max_item_bytes", self.pubsub.max_item_bytes as u64),
            ("pubsub.caps_cache_size", self.pubsub.caps_cache_size as u64),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(invalid(field, "must be greater than 0"));
            }
        }
        if self.storage.background_nice > 19 {
            return Err(invalid("storage.background_nice", "must be between 0 and 19"));
        }
        if jid_domain_ok(&format!("{}.{}", self.muc.subdomain, self.domain)).is_err()
            || self.muc.subdomain.contains('.')
        {
            return Err(invalid("muc.subdomain", format!("`{}` is not a valid DNS label", self.muc.subdomain)));
        }
        if self.limits.max_stanza_bytes < 1024 {
            return Err(invalid("limits.max_stanza_bytes", "must be at least 1024"));
        }
        if self.limits.max_unauthenticated_stanza_bytes < 1024 {
            return Err(invalid("limits.max_unauthenticated_stanza_bytes", "must be at least 1024"));
        }
        self.validate_upload_turn()?;
        if self.auth.scram_iterations < 4096 {
            return Err(invalid("auth.scram_iterations", "must be at least 4096 (RFC 7677)"));
        }
        Ok(())
    }

    fn validate_http(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, message: String| ConfigError::Invalid { field, message };
        for (field, value) in [("http.listen_tls", &self.http.listen_tls), ("http.listen", &self.http.listen)] {
            if !value.is_empty() {
                value.parse::<SocketAddr>().map_err(|e| invalid(field, e.to_string()))?;
            }
        }
        let url = &self.http.public_url;
        let http_url = url.starts_with("https://") || url.starts_with("http://");
        if !url.is_empty() && !http_url {
            return Err(invalid("http.public_url", format!("`{url}` is not an http(s) URL")));
        }
        for (field, v) in [
            ("http.bosh_max_wait_secs", self.http.bosh_max_wait_secs),
            ("http.bosh_inactivity_secs", self.http.bosh_inactivity_secs),
            ("http.bosh_max_buffered_bytes", self.http.bosh_max_buffered_bytes as u64),
        ] {
            if v == 0 {
                return Err(invalid(field, "must be greater than 0".into()));
            }
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

impl Config {
    /// The `[upload]` and `[turn]` sections.
    fn validate_upload_turn(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, message: &str| ConfigError::Invalid { field, message: message.into() };
        let sub = &self.upload.subdomain;
        if sub.contains('.') || jid_domain_ok(&format!("{sub}.{}", self.domain)).is_err() {
            return Err(invalid("upload.subdomain", "is not a valid DNS label"));
        }
        if self.upload.enabled && self.upload.subdomain == self.muc.subdomain {
            return Err(invalid("upload.subdomain", "must differ from muc.subdomain"));
        }
        if self.upload.max_file_bytes == 0 || self.upload.slot_ttl_secs == 0 {
            let field = if self.upload.max_file_bytes == 0 { "upload.max_file_bytes" } else { "upload.slot_ttl_secs" };
            return Err(invalid(field, "must be greater than 0"));
        }
        if !self.turn.host.is_empty() {
            if self.turn.secret.is_empty() {
                return Err(invalid("turn.secret", "must be set when turn.host is (coturn's static-auth-secret)"));
            }
            if self.turn.port == 0 || self.turn.ttl_secs == 0 {
                return Err(invalid("turn.port", "turn.port and turn.ttl_secs must be greater than 0"));
            }
            if self.turn.transports.split(',').any(|t| !matches!(t.trim(), "udp" | "tcp")) {
                return Err(invalid("turn.transports", "must be a comma-separated list of udp and tcp"));
            }
        }
        Ok(())
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
        let committed = include_str!("../../../../config/example.toml");
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
