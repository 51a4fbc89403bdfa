//! XEP-0215 External Service Discovery: the STUN and TURN servers (`[turn]`, e.g. coturn beside drupe) that
//! clients use for Jingle calls, with time-limited TURN credentials.
//!
//! Credentials follow coturn's REST-API shared-secret scheme (`use-auth-secret`): the username is
//! `<expiry unix time>:<bare JID>` and the password is `base64(HMAC-SHA1(static-auth-secret, username))`, so
//! coturn checks them with no call back to drupe and they stop working on their own at the expiry.

use base64::Engine;
use drupe_proto::delay::format_datetime;
use drupe_proto::error::Condition;
use drupe_proto::stanza;
use drupe_proto::xml::Element;

use super::now_ms;
use crate::c2s::Session;
use crate::config::Turn;

pub const NS: &str = "urn:xmpp:extdisco:2";

/// Whether external services are configured (and the feature is advertised).
pub fn enabled(turn: &Turn) -> bool {
    !turn.host.is_empty() && !turn.secret.is_empty()
}

/// coturn's REST-API credentials for `user` valid until `expires_unix`: (username, password).
pub fn credentials(secret: &str, user: &str, expires_unix: i64) -> (String, String) {
    let username = format!("{expires_unix}:{user}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = ring::hmac::sign(&key, username.as_bytes());
    (username, base64::engine::general_purpose::STANDARD.encode(tag.as_ref()))
}

/// One announced service: (type, transport, port).
fn catalogue(turn: &Turn) -> Vec<(&'static str, &'static str, u16)> {
    let transports: Vec<&'static str> =
        ["udp", "tcp"].into_iter().filter(|t| turn.transports.split(',').any(|c| c.trim() == *t)).collect();
    let mut services = Vec::new();
    for t in &transports {
        services.push(("stun", *t, turn.port));
    }
    for t in &transports {
        services.push(("turn", *t, turn.port));
    }
    if turn.tls_port != 0 {
        services.push(("turns", "tcp", turn.tls_port));
    }
    services
}

fn service(turn: &Turn, kind: &str, transport: &str, port: u16, creds: Option<&(String, String, i64)>) -> Element {
    let mut el = Element::new("service", NS)
        .with_attr("type", kind)
        .with_attr("host", turn.host.as_str())
        .with_attr("port", port.to_string())
        .with_attr("transport", transport);
    if let (true, Some((username, password, expires))) = (kind != "stun", creds) {
        el.set_attr("restricted", "1");
        el.set_attr("username", username.as_str());
        el.set_attr("password", password.as_str());
        el.set_attr("expires", format_datetime(expires * 1000));
    }
    el
}

/// `<services/>` (every service, or those of the requested `type`, TURN ones with credentials inline as
/// Conversations and Dino expect) and `<credentials/>` (XEP-0215 §3.2).
pub fn handle(s: &mut Session, iq: &Element) {
    let Some(payload) = iq.first_child() else { return s.send_error(iq, Condition::BadRequest) };
    if iq.attr("type") != Some("get") {
        return s.send_error(iq, Condition::BadRequest);
    }
    let turn = &s.ctx.config.turn;
    let Some(user) = s.jid.as_ref().map(|j| j.to_bare().to_string()) else { return };
    let configured = enabled(turn);
    let expires = now_ms() / 1000 + i64::try_from(turn.ttl_secs).unwrap_or(i64::MAX / 2);
    let creds = configured.then(|| {
        let (u, p) = credentials(&turn.secret, &user, expires);
        (u, p, expires)
    });
    match payload.name() {
        "services" => {
            let wanted = payload.attr("type");
            let mut out = Element::new("services", NS);
            if let Some(t) = wanted {
                out.set_attr("type", t);
            }
            if configured {
                for (kind, transport, port) in catalogue(turn) {
                    if wanted.is_none_or(|w| w == kind) {
                        out.push(service(turn, kind, transport, port, creds.as_ref()));
                    }
                }
            }
            s.send(&stanza::iq_result(iq, Some(out)));
        }
        "credentials" => {
            // The service asked for: by type (and host, if given), at least one TURN service.
            let asked: Vec<(&str, Option<&str>)> = payload
                .children()
                .filter(|c| c.is("service", NS))
                .map(|c| (c.attr("type").unwrap_or_default(), c.attr("host")))
                .collect();
            if asked.is_empty() {
                return s.send_error(iq, Condition::BadRequest);
            }
            let mut out = Element::new("credentials", NS);
            for (kind, host) in asked {
                let found = catalogue(turn).into_iter().find(|(k, _, _)| *k == kind);
                match (configured, found) {
                    (true, Some((kind, transport, port))) if host.is_none_or(|h| h == turn.host) => {
                        out.push(service(turn, kind, transport, port, creds.as_ref()));
                    }
                    _ => return s.send_error(iq, Condition::ItemNotFound),
                }
            }
            s.send(&stanza::iq_result(iq, Some(out)));
        }
        _ => s.send_error(iq, Condition::BadRequest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_follow_the_coturn_rest_api() {
        // Computed independently: printf '1700000000:alice@example.org' | openssl dgst -sha1 -hmac s3cret -binary | base64
        let (user, password) = credentials("s3cret", "alice@example.org", 1_700_000_000);
        assert_eq!(user, "1700000000:alice@example.org");
        assert_eq!(password, "DTKvmY+vZ0UPwC3r7FrA5q50qEI=");
    }

    #[test]
    fn catalogue_lists_stun_turn_and_turns() {
        let turn = Turn { host: "h".into(), secret: "x".into(), tls_port: 5349, ..Turn::default() };
        let kinds: Vec<_> = catalogue(&turn).into_iter().map(|(k, t, p)| format!("{k}/{t}/{p}")).collect();
        assert_eq!(kinds, ["stun/udp/3478", "stun/tcp/3478", "turn/udp/3478", "turn/tcp/3478", "turns/tcp/5349"]);
        let udp_only = Turn { transports: "udp".into(), ..turn };
        assert_eq!(catalogue(&udp_only).len(), 3);
    }
}
