//! Client side of SCRAM-SHA-1 and SCRAM-SHA-256 (RFC 5802, RFC 7677) on ring's PBKDF2, HMAC and digest.
//!
//! Without channel binding (`n,,`): the load tool accepts any certificate, so there is nothing to bind to. The
//! salted password is cached per (hash, password, salt, iterations) the way real clients cache it, so that
//! repeated logins of one account cost the tool one HMAC round, not 4096 PBKDF2 iterations.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Mutex, OnceLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::{digest, hmac, pbkdf2};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

impl ScramHash {
    fn pbkdf2(self) -> pbkdf2::Algorithm {
        match self {
            ScramHash::Sha1 => pbkdf2::PBKDF2_HMAC_SHA1,
            ScramHash::Sha256 => pbkdf2::PBKDF2_HMAC_SHA256,
        }
    }

    fn hmac(self) -> hmac::Algorithm {
        match self {
            ScramHash::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            ScramHash::Sha256 => hmac::HMAC_SHA256,
        }
    }

    fn digest(self) -> &'static digest::Algorithm {
        match self {
            ScramHash::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            ScramHash::Sha256 => &digest::SHA256,
        }
    }

    fn len(self) -> usize {
        match self {
            ScramHash::Sha1 => 20,
            ScramHash::Sha256 => 32,
        }
    }
}

/// One SCRAM exchange: [`ScramClient::client_first`], then [`ScramClient::client_final`] with the server's
/// challenge, then [`ScramClient::verify_server_final`] with the data of `<success/>`.
pub struct ScramClient {
    hash: ScramHash,
    password: String,
    client_first_bare: String,
    nonce: String,
    server_signature: Vec<u8>,
}

type CacheKey = (ScramHash, String, Vec<u8>, u32);

fn salted_cache() -> &'static Mutex<HashMap<CacheKey, Vec<u8>>> {
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, Vec<u8>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn salted_password(hash: ScramHash, password: &str, salt: &[u8], iterations: NonZeroU32) -> Vec<u8> {
    let key = (hash, password.to_owned(), salt.to_vec(), iterations.get());
    if let Some(v) = salted_cache().lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return v.clone();
    }
    let mut out = vec![0u8; hash.len()];
    pbkdf2::derive(hash.pbkdf2(), iterations, salt, password.as_bytes(), &mut out);
    let mut cache = salted_cache().lock().unwrap_or_else(|e| e.into_inner());
    // Bounded: a login storm over many accounts must not grow the tool's memory without end.
    if cache.len() > 100_000 {
        cache.clear();
    }
    cache.insert(key, out.clone());
    out
}

/// RFC 5802 §5.1: `=` and `,` in a username are escaped as `=3D` and `=2C`.
fn sasl_name(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

impl ScramClient {
    pub fn new(hash: ScramHash, user: &str, password: &str) -> ScramClient {
        use rand::Rng;
        let raw: [u8; 18] = rand::thread_rng().gen();
        ScramClient::with_nonce(hash, user, password, &B64.encode(raw))
    }

    fn with_nonce(hash: ScramHash, user: &str, password: &str, nonce: &str) -> ScramClient {
        ScramClient {
            hash,
            password: password.to_owned(),
            client_first_bare: format!("n={},r={nonce}", sasl_name(user)),
            nonce: nonce.to_owned(),
            server_signature: Vec::new(),
        }
    }

    /// The initial response: GS2 header (no channel binding, no authzid) and the client-first-message-bare.
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Answers the server-first-message with the client-final-message carrying the proof.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let server_first = std::str::from_utf8(server_first).map_err(|_| "server-first is not UTF-8")?;
        let (mut nonce, mut salt, mut iterations) = (None, None, None);
        for part in server_first.split(',') {
            match part.split_at_checked(2) {
                Some(("r=", v)) => nonce = Some(v),
                Some(("s=", v)) => salt = Some(B64.decode(v).map_err(|_| "bad salt")?),
                Some(("i=", v)) => iterations = v.parse::<u32>().ok().and_then(NonZeroU32::new),
                Some(("m=", _)) => return Err("server requires an unknown SCRAM extension".into()),
                _ => {}
            }
        }
        let nonce = nonce.ok_or("server-first without nonce")?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err("server nonce does not extend the client nonce".into());
        }
        let salt = salt.ok_or("server-first without salt")?;
        let iterations = iterations.ok_or("server-first without a valid iteration count")?;
        let salted = salted_password(self.hash, &self.password, &salt, iterations);
        let salted_key = hmac::Key::new(self.hash.hmac(), &salted);
        let client_key = hmac::sign(&salted_key, b"Client Key");
        let stored_key = digest::digest(self.hash.digest(), client_key.as_ref());
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac::sign(&hmac::Key::new(self.hash.hmac(), stored_key.as_ref()), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.as_ref().iter().zip(signature.as_ref()).map(|(a, b)| a ^ b).collect();
        let server_key = hmac::sign(&salted_key, b"Server Key");
        let server_signature =
            hmac::sign(&hmac::Key::new(self.hash.hmac(), server_key.as_ref()), auth_message.as_bytes());
        self.server_signature = server_signature.as_ref().to_vec();
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Whether the client-final-message was sent (so a further challenge carries the server-final-message).
    pub fn has_server_signature(&self) -> bool {
        !self.server_signature.is_empty()
    }

    /// Checks the server-final-message (`v=...`): a server that does not know the keys cannot produce it.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let text = std::str::from_utf8(server_final).map_err(|_| "server-final is not UTF-8")?;
        if let Some(err) = text.strip_prefix("e=") {
            return Err(format!("server error: {err}"));
        }
        let v = text.strip_prefix("v=").ok_or("server-final without verifier")?;
        let v = B64.decode(v.split(',').next().unwrap_or_default()).map_err(|_| "bad verifier")?;
        if v != self.server_signature {
            return Err("server signature does not match".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5802 §5 example exchange.
    #[test]
    fn rfc5802_sha1_vector() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha1, "user", "pencil", "fyko+d2lbbFgONRv9qkxdawL");
        assert_eq!(c.client_first(), b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL");
        let fin = c.client_final(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096").unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
        );
        c.verify_server_final(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=").unwrap();
        assert!(c.verify_server_final(b"v=AAAApqV8S7suAoZWja4dJRkFsKQ=").is_err());
    }

    /// RFC 7677 §3 example exchange.
    #[test]
    fn rfc7677_sha256_vector() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "rOprNGfwEbeRWgbNEkqO");
        let fin = c
            .client_final(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
    }

    #[test]
    fn refuses_a_nonce_that_does_not_extend_ours() {
        let mut c = ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", "abc");
        assert!(c.client_final(b"r=xyz123,s=QSXCR+Q6sek8bf92,i=4096").is_err());
        assert!(c.client_final(b"r=abc,s=QSXCR+Q6sek8bf92,i=4096").is_err());
    }

    #[test]
    fn escapes_usernames() {
        assert_eq!(sasl_name("a=b,c"), "a=3Db=2Cc");
    }
}
