//! SCRAM-SHA-256 (RFC 5802, RFC 7677), client side, with ring: enough to log in and check the server's signature.

use std::num::NonZeroU32;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};

pub struct Client {
    password: String,
    bare: String,
    nonce: String,
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data).as_ref().to_vec()
}

impl Client {
    pub fn new(user: &str, password: &str) -> Client {
        let nonce: [u8; 18] = rand::random();
        let nonce = B64.encode(nonce);
        let name = user.replace('=', "=3D").replace(',', "=2C");
        Client { password: password.to_owned(), bare: format!("n={name},r={nonce}"), nonce }
    }

    /// `client-first-message` with no authzid and no channel binding.
    pub fn first_message(&self) -> String {
        format!("n,,{}", self.bare)
    }

    /// `client-final-message` answering `server_first`, and the `server-final-message` expected in return.
    pub fn final_message(&self, server_first: &str) -> (String, String) {
        let field = |name: &str| {
            server_first
                .split(',')
                .find_map(|a| a.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {server_first}"))
                .to_owned()
        };
        let nonce = field("r=");
        assert!(nonce.starts_with(&self.nonce), "server nonce must extend ours: {server_first}");
        let salt = B64.decode(field("s=")).expect("salt is base64");
        let iterations: u32 = field("i=").parse().expect("iteration count");
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            NonZeroU32::new(iterations).expect("iterations > 0"),
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, &client_key);
        let without_proof = format!("c={},r={nonce}", B64.encode("n,,"));
        let auth_message = format!("{},{server_first},{without_proof}", self.bare);
        let signature = hmac(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        let server_key = hmac(&salted, b"Server Key");
        let server_signature = hmac(&server_key, auth_message.as_bytes());
        (format!("{without_proof},p={}", B64.encode(proof)), format!("v={}", B64.encode(server_signature)))
    }
}
