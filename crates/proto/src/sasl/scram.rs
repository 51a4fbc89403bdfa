//! SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677), server side: message parsing, proof check, server signature.
//!
//! Grammar references are to RFC 5802 §7. Channel binding (`p=`, the `-PLUS` mechanisms) is not offered, so a
//! client that asks for it is malformed; `y` (client supports binding, thinks the server does not) is accepted.

use base64::{engine::general_purpose::STANDARD, Engine};
use ring::{digest, hmac};

use super::{check_authzid, keys, SaslError, ScramHash, ScramKeys};

/// A parsed client-first-message, waiting for the account's keys.
pub(super) struct ClientFirst {
    pub(super) hash: ScramHash,
    /// The authcid, saslname-decoded but otherwise as sent.
    pub(super) username: String,
    /// `gs2-header`, which the client echoes base64-encoded in `c=` of its final message.
    gs2_header: String,
    /// `client-first-message-bare`, the first part of AuthMessage.
    bare: String,
    client_nonce: String,
}

/// The state after the server-first-message went out, waiting for the client-final-message.
pub(super) struct ServerFirst {
    first: ClientFirst,
    /// `server-first-message`, the second part of AuthMessage.
    message: String,
    /// Client nonce followed by server nonce, which the client must echo in `r=`.
    nonce: String,
    keys: ScramKeys,
    /// False when `keys` are fake: the proof then fails even if it somehow matched.
    known: bool,
}

impl ServerFirst {
    pub(super) fn into_username(self) -> String {
        self.first.username
    }
}

/// Parse `client-first-message = gs2-header client-first-message-bare`.
pub(super) fn parse_client_first(hash: ScramHash, input: &[u8], domain: &str) -> Result<ClientFirst, SaslError> {
    let text = std::str::from_utf8(input).map_err(|_| SaslError::IncorrectEncoding)?;
    let (cbind_flag, rest) = text.split_once(',').ok_or(SaslError::MalformedRequest)?;
    if cbind_flag != "n" && cbind_flag != "y" {
        // "p=<cb-name>" asks for channel binding, which only the -PLUS mechanisms have.
        return Err(SaslError::MalformedRequest);
    }
    let (authzid_field, bare) = rest.split_once(',').ok_or(SaslError::MalformedRequest)?;
    let authzid = match authzid_field {
        "" => String::new(),
        field => decode_saslname(field.strip_prefix("a=").ok_or(SaslError::MalformedRequest)?)?,
    };
    let gs2_header = text.strip_suffix(bare).ok_or(SaslError::MalformedRequest)?;

    // client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
    let mut attrs = bare.split(',');
    let username = attrs.next().and_then(|a| a.strip_prefix("n=")).ok_or(SaslError::MalformedRequest)?;
    let username = decode_saslname(username)?;
    let client_nonce = attrs
        .next()
        .and_then(|a| a.strip_prefix("r="))
        .filter(|nonce| is_printable(nonce))
        .ok_or(SaslError::MalformedRequest)?;
    check_extensions(attrs)?;
    check_authzid(&authzid, &username, domain)?;
    Ok(ClientFirst {
        hash,
        username,
        gs2_header: gs2_header.to_owned(),
        bare: bare.to_owned(),
        client_nonce: client_nonce.to_owned(),
    })
}

/// Build `server-first-message = "r=" c-nonce s-nonce ",s=" salt ",i=" iteration-count` from the account's keys
/// (real or fake: both go through here, so they cannot differ in form).
pub(super) fn server_first(
    first: ClientFirst,
    keys: ScramKeys,
    known: bool,
    server_nonce: &str,
) -> (ServerFirst, Vec<u8>) {
    let nonce = format!("{}{}", first.client_nonce, server_nonce);
    let message = format!("r={nonce},s={},i={}", STANDARD.encode(&keys.salt), keys.iterations);
    let challenge = message.as_bytes().to_vec();
    (ServerFirst { first, message, nonce, keys, known }, challenge)
}

/// Check `client-final-message = "c=" base64 ",r=" nonce ["," extensions] ",p=" base64` and return the
/// server-final-message `"v=" base64(ServerSignature)`.
pub(super) fn verify_client_final(state: &ServerFirst, input: &[u8], secret: &[u8; 32]) -> Result<Vec<u8>, SaslError> {
    let text = std::str::from_utf8(input).map_err(|_| SaslError::IncorrectEncoding)?;
    let (without_proof, proof_attr) = text.rsplit_once(',').ok_or(SaslError::MalformedRequest)?;
    let proof = proof_attr.strip_prefix("p=").ok_or(SaslError::MalformedRequest)?;
    let mut attrs = without_proof.split(',');
    let binding = attrs.next().and_then(|a| a.strip_prefix("c=")).ok_or(SaslError::MalformedRequest)?;
    let nonce = attrs.next().and_then(|a| a.strip_prefix("r=")).ok_or(SaslError::MalformedRequest)?;
    check_extensions(attrs)?;

    // Without channel binding, c= is the gs2-header itself: this catches a downgrade of the cbind flag.
    let binding = STANDARD.decode(binding).map_err(|_| SaslError::IncorrectEncoding)?;
    if binding != state.first.gs2_header.as_bytes() || nonce != state.nonce {
        return Err(SaslError::MalformedRequest);
    }
    let proof = STANDARD.decode(proof).map_err(|_| SaslError::IncorrectEncoding)?;
    let hash = state.first.hash;
    if proof.len() != hash.output_len() {
        return Err(SaslError::MalformedRequest);
    }

    // RFC 5802 §3: ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof holds if H(ClientKey)
    // is StoredKey.
    let auth_message = format!("{},{},{}", state.first.bare, state.message, without_proof);
    let client_signature = hmac::sign(&hmac::Key::new(hash.hmac(), &state.keys.stored_key), auth_message.as_bytes());
    let client_key: Vec<u8> = proof.iter().zip(client_signature.as_ref()).map(|(p, s)| p ^ s).collect();
    let computed_stored_key = digest::digest(hash.digest(), &client_key);
    let proof_holds = keys::equal_in_constant_time(secret, computed_stored_key.as_ref(), &state.keys.stored_key);
    if !(proof_holds && state.known) {
        return Err(SaslError::NotAuthorized);
    }
    let server_signature = hmac::sign(&hmac::Key::new(hash.hmac(), &state.keys.server_key), auth_message.as_bytes());
    Ok(format!("v={}", STANDARD.encode(server_signature.as_ref())).into_bytes())
}

/// `printable = %x21-2B / %x2D-7E`: what a nonce is made of (no comma, no space).
pub(super) fn is_printable(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// `saslname`: one or more UTF-8 characters other than NUL, "," and "=", where "=2C" stands for "," and "=3D"
/// for "="; any other "=" is malformed.
fn decode_saslname(encoded: &str) -> Result<String, SaslError> {
    let mut pieces = encoded.split('=');
    let mut decoded = String::with_capacity(encoded.len());
    decoded.push_str(pieces.next().unwrap_or_default());
    for piece in pieces {
        if let Some(rest) = piece.strip_prefix("2C") {
            decoded.push(',');
            decoded.push_str(rest);
        } else if let Some(rest) = piece.strip_prefix("3D") {
            decoded.push('=');
            decoded.push_str(rest);
        } else {
            return Err(SaslError::MalformedRequest);
        }
    }
    if decoded.is_empty() || decoded.contains('\0') {
        return Err(SaslError::MalformedRequest);
    }
    Ok(decoded)
}

/// `extensions = attr-val *("," attr-val)`, `attr-val = ALPHA "=" value`. Unknown extensions are ignored, but
/// "m" is reserved for mandatory extensions, which this server knows none of: it must fail (RFC 5802 §5.1).
fn check_extensions<'a>(attrs: impl Iterator<Item = &'a str>) -> Result<(), SaslError> {
    for attr in attrs {
        let mut chars = attr.chars();
        let name_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() && c != 'm');
        let value = chars.as_str().strip_prefix('=').unwrap_or_default();
        if !name_ok || value.is_empty() || value.contains('\0') {
            return Err(SaslError::MalformedRequest);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saslname_decoding() {
        assert_eq!(decode_saslname("user").as_deref(), Ok("user"));
        assert_eq!(decode_saslname("a=2Cb=3Dc").as_deref(), Ok("a,b=c"));
        assert_eq!(decode_saslname("=3D").as_deref(), Ok("="));
        assert_eq!(decode_saslname("é=2C").as_deref(), Ok("é,"));
        for bad in ["", "=", "a=", "a=2", "a=2c", "a=3d", "a=41", "a\0b", "==2C"] {
            assert_eq!(decode_saslname(bad), Err(SaslError::MalformedRequest), "{bad:?}");
        }
    }

    #[test]
    fn nonce_characters() {
        assert!(is_printable("fyko+d2lbbFgONRv9qkxdawL"));
        assert!(is_printable("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"));
        for bad in ["", "a,b", "a b", "é", "a\u{7f}"] {
            assert!(!is_printable(bad), "{bad:?}");
        }
    }

    #[test]
    fn client_first_errors() {
        let cases: [(&[u8], SaslError); 13] = [
            (b"p=tls-unique,,n=user,r=abc", SaslError::MalformedRequest), // -PLUS is not offered
            (b"n,,m=ext,n=user,r=abc", SaslError::MalformedRequest),
            (b"n,,n=user,r=abc,m=ext", SaslError::MalformedRequest),
            (b"n,,n=,r=abc", SaslError::MalformedRequest),
            (b"n,,n=us=41er,r=abc", SaslError::MalformedRequest),
            (b"n,,n=user,r=", SaslError::MalformedRequest),
            (b"n,,n=user,r=a b", SaslError::MalformedRequest),
            (b"n,,r=abc,n=user", SaslError::MalformedRequest),
            (b"n,user,n=user,r=abc", SaslError::MalformedRequest),
            (b"x,,n=user,r=abc", SaslError::MalformedRequest),
            (b"n,,n=user,r=abc,x", SaslError::MalformedRequest),
            (b"n,,n=us\xffer,r=abc", SaslError::IncorrectEncoding),
            (b"n,a=other,n=user,r=abc", SaslError::InvalidAuthzid),
        ];
        for (input, expected) in cases {
            let parsed = parse_client_first(ScramHash::Sha1, input, "example.org").map(|first| first.username);
            assert_eq!(parsed, Err(expected), "{}", String::from_utf8_lossy(input));
        }
        let first = parse_client_first(ScramHash::Sha256, b"y,a=u=3D,n=u=3D,r=a+b,x=ignored", "example.org").unwrap();
        assert_eq!((first.username.as_str(), first.gs2_header.as_str()), ("u=", "y,a=u=3D,"));
        assert_eq!((first.bare.as_str(), first.client_nonce.as_str()), ("n=u=3D,r=a+b,x=ignored", "a+b"));
    }

    #[test]
    fn extensions() {
        assert_eq!(check_extensions(["x=1", "Y=abc"].into_iter()), Ok(()));
        for bad in ["m=1", "x", "x=", "1=2", "=1", "xy=1", "x=\0", ""] {
            assert_eq!(check_extensions([bad].into_iter()), Err(SaslError::MalformedRequest), "{bad:?}");
        }
    }
}
