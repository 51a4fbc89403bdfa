//! XEP-0484 Fast Authentication Streamlining Tokens: a client that authenticated once gets a token bound to its
//! user agent and later logs in with one HMAC (HT-SHA-256-NONE) instead of PBKDF2.
//!
//! The database keeps only a random nonce per token. The token is `HMAC(fast key, account, user agent, nonce)`,
//! with the key in `data_dir/fast.key` (0600), so a copy of the database alone yields no usable token. A new token
//! replaces the old one for that user agent (rotation); users invalidate theirs with `<fast invalidate='true'/>`,
//! administrators with `drupe user revoke-tokens`.

use std::path::Path;

use base64::Engine;
use drupe_proto::delay::format_datetime;
use drupe_proto::sasl::ht;
use drupe_proto::xml::Element;
use drupe_store::FastToken;

use crate::context::Context;
use crate::modules::now_ms;

pub const NS: &str = "urn:xmpp:fast:0";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const NONCE_LEN: usize = 16;

/// Reads the FAST key, creating it (mode 0600) on first start.
pub fn load_or_create_key(path: &Path) -> std::io::Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(bytes) if bytes.len() == 32 => {
            let mut key = [0u8; 32];
            key.copy_from_slice(&bytes);
            Ok(key)
        }
        Ok(_) => {
            Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is not 32 bytes", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let key: [u8; 32] = rand::random();
            let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
            f.write_all(&key)?;
            f.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

fn derive(key: &[u8; 32], user: &str, user_agent: &str, nonce: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut msg = b"drupe-fast-token\0".to_vec();
    msg.extend_from_slice(user.as_bytes());
    msg.push(0);
    msg.extend_from_slice(user_agent.as_bytes());
    msg.push(0);
    msg.extend_from_slice(nonce);
    // The token the client holds is the base64 text; HT uses those bytes as the HMAC key.
    B64.encode(ring::hmac::sign(&key, &msg).as_ref()).into_bytes()
}

/// `<fast/>` for the SASL2 inline features.
pub fn feature() -> Element {
    Element::new("fast", NS).with_child(Element::new("mechanism", NS).with_text(ht::MECHANISM))
}

/// Verifies a FAST authentication. `Ok(Some((user, server_answer, rotate)))` on success; `rotate` says the token
/// is past half its life and a new one should be issued.
pub async fn verify(
    ctx: &Context,
    initial: &[u8],
    user_agent: Option<&str>,
) -> Result<Option<(String, Vec<u8>, bool)>, drupe_store::StoreError> {
    let (Some(response), Some(ua)) = (ht::parse(initial), user_agent) else { return Ok(None) };
    let Some(user) = super::normalize_username(&response.username, ctx.domain()) else { return Ok(None) };
    let Some(token) = ctx.store.fast_token(&user, ua).await? else { return Ok(None) };
    let now = now_ms();
    if token.mechanism != ht::MECHANISM || token.expires_ms <= now {
        return Ok(None);
    }
    let secret = derive(&ctx.fast_key, &user, ua, &token.nonce);
    let Some(answer) = response.verify(&secret) else { return Ok(None) };
    let lifetime = days_ms(ctx.config.auth.fast_token_days);
    Ok(Some((user, answer, token.expires_ms - now < lifetime / 2)))
}

fn days_ms(days: u64) -> i64 {
    i64::try_from(days).unwrap_or(0).saturating_mul(86_400_000)
}

/// Issues (or rotates) the token of `user` for `user_agent` and returns the `<token/>` element for `<success/>`.
pub async fn issue(ctx: &Context, user: &str, user_agent: &str) -> Result<Element, drupe_store::StoreError> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let expires_ms = now_ms().saturating_add(days_ms(ctx.config.auth.fast_token_days));
    let token = FastToken {
        user_agent: user_agent.to_owned(),
        mechanism: ht::MECHANISM.to_owned(),
        nonce: nonce.to_vec(),
        expires_ms,
    };
    ctx.store.fast_token_put(user, &token).await?;
    let secret = derive(&ctx.fast_key, user, user_agent, &nonce);
    Ok(Element::new("token", NS)
        .with_attr("expiry", format_datetime(expires_ms))
        .with_attr("token", String::from_utf8_lossy(&secret).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_depend_on_every_input_and_verify_with_ht() {
        let key = [7u8; 32];
        let t = derive(&key, "alice", "ua1", b"n1");
        assert_ne!(t, derive(&key, "alice", "ua2", b"n1"));
        assert_ne!(t, derive(&key, "alice", "ua1", b"n2"));
        assert_ne!(t, derive(&[8u8; 32], "alice", "ua1", b"n1"));
        let response = ht::parse(&ht::client_response("alice", &t)).unwrap();
        assert!(response.verify(&t).is_some());
    }

    #[test]
    fn key_file_is_created_once_with_private_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fast.key");
        let a = load_or_create_key(&path).unwrap();
        assert_eq!(a, load_or_create_key(&path).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::write(&path, b"short").unwrap();
        assert!(load_or_create_key(&path).is_err());
    }
}
