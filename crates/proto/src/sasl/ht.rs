//! The HT-SHA-256-NONE token mechanism (draft-schmaus-kitten-sasl-ht) used by XEP-0484 FAST: the client proves
//! it holds a token with `HMAC(token, "Initiator")`, the server answers `HMAC(token, "Responder")`. Channel
//! binding is not offered ("NONE"), so the channel-binding data is empty.

use ring::hmac;

pub const MECHANISM: &str = "HT-SHA-256-NONE";

/// The client's initial response: `authcid NUL HMAC-SHA-256(token, "Initiator")`.
#[derive(Debug, PartialEq, Eq)]
pub struct HtResponse {
    pub username: String,
    mac: Vec<u8>,
}

/// Splits the initial response; `None` when it is malformed.
pub fn parse(initial: &[u8]) -> Option<HtResponse> {
    let split = initial.iter().position(|&b| b == 0)?;
    let username = std::str::from_utf8(initial.get(..split)?).ok()?;
    let mac = initial.get(split + 1..)?;
    if username.is_empty() || mac.len() != 32 {
        return None;
    }
    Some(HtResponse { username: username.to_owned(), mac: mac.to_vec() })
}

impl HtResponse {
    /// Checks the proof against `token` (constant time); on success returns the server's answer for
    /// `<additional-data/>`.
    pub fn verify(&self, token: &[u8]) -> Option<Vec<u8>> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, token);
        hmac::verify(&key, b"Initiator", &self.mac).ok()?;
        Some(hmac::sign(&key, b"Responder").as_ref().to_vec())
    }
}

/// What a client computes; for tests and for the load tool.
pub fn client_response(username: &str, token: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token);
    let mut out = username.as_bytes().to_vec();
    out.push(0);
    out.extend_from_slice(hmac::sign(&key, b"Initiator").as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_the_right_token_only() {
        let r = parse(&client_response("alice", b"secret-token")).unwrap();
        assert_eq!(r.username, "alice");
        let answer = r.verify(b"secret-token").unwrap();
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"secret-token");
        assert_eq!(answer, hmac::sign(&key, b"Responder").as_ref());
        assert!(r.verify(b"other-token").is_none());
    }

    #[test]
    fn rejects_malformed_responses() {
        assert!(parse(b"").is_none());
        assert!(parse(b"alice").is_none());
        assert!(parse(b"\0aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_none());
        assert!(parse(b"alice\0short").is_none());
        let mut bad_utf8 = vec![0xff, 0];
        bad_utf8.extend_from_slice(&[0u8; 32]);
        assert!(parse(&bad_utf8).is_none());
        for i in 0..40 {
            let full = client_response("bob", b"t");
            let _ = parse(&full[..i.min(full.len())]);
        }
    }
}
