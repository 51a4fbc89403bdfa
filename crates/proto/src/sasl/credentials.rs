//! Stored SCRAM credentials (RFC 5802 §3): what the server keeps instead of a password.

/// The salted keys of one SCRAM hash function. The password itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScramKeys {
    pub salt: Vec<u8>,
    pub iterations: u32,
    /// StoredKey = H(HMAC(SaltedPassword, "Client Key"))
    pub stored_key: Vec<u8>,
    /// ServerKey = HMAC(SaltedPassword, "Server Key")
    pub server_key: Vec<u8>,
}

/// Everything needed to verify a login with SCRAM-SHA-1, SCRAM-SHA-256 or PLAIN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub sha1: ScramKeys,
    pub sha256: ScramKeys,
}
