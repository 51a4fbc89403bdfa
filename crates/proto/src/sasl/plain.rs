//! PLAIN (RFC 4616), server side: `authzid NUL authcid NUL passwd`, checked against the stored SCRAM-SHA-256 keys.
//!
//! The password is never stored: it is run through PBKDF2-HMAC-SHA256 with the account's SHA-256 salt and
//! iteration count, and the resulting StoredKey is compared with the stored one in constant time.

use super::{check_authzid, keys, SaslError, ScramHash, ScramKeys};

/// A parsed PLAIN message, waiting for the account's keys.
pub(super) struct Request {
    /// The authcid as sent.
    pub(super) authcid: String,
    password: String,
}

/// Parse `message = [authzid] UTF8NUL authcid UTF8NUL passwd`.
pub(super) fn parse(input: &[u8], domain: &str) -> Result<Request, SaslError> {
    let mut fields = input.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(password)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(SaslError::MalformedRequest);
    };
    let text = |bytes| std::str::from_utf8(bytes).map_err(|_| SaslError::IncorrectEncoding);
    let (authzid, authcid, password) = (text(authzid)?, text(authcid)?, text(password)?);
    // A NUL left in the password would be a fourth field; authcid and passwd must not be empty (1*SAFE).
    if authcid.is_empty() || password.contains('\0') {
        return Err(SaslError::MalformedRequest);
    }
    let password = keys::prepare_password(password)?;
    check_authzid(authzid, authcid, domain)?;
    Ok(Request { authcid: authcid.to_owned(), password: password.to_owned() })
}

/// Check the password against `keys` (real when `known`, fake otherwise: the same PBKDF2 runs either way, so an
/// unknown account takes as long to refuse as a wrong password). Returns the authcid on success.
pub(super) fn verify(request: Request, keys: &ScramKeys, known: bool, secret: &[u8; 32]) -> Result<String, SaslError> {
    let attempt = ScramKeys::derive_with_salt(ScramHash::Sha256, &request.password, &keys.salt, keys.iterations)
        // Only a stored iteration count of zero gets here (the password was prepared in `parse`).
        .map_err(|_| SaslError::NotAuthorized)?;
    if keys::equal_in_constant_time(secret, &attempt.stored_key, &keys.stored_key) && known {
        Ok(request.authcid)
    } else {
        Err(SaslError::NotAuthorized)
    }
}
