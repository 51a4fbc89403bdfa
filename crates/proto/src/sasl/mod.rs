//! SASL server side (RFC 6120 §6, RFC 4422): mechanisms, failure conditions, and one sans-IO exchange per login.
//!
//! The caller base64-decodes what the client sends and feeds it to [`SaslServer::step`]; when a mechanism has read
//! the username it answers [`Step::NeedCredentials`], the caller looks the account up and hands the result to
//! [`SaslServer::provide_credentials`]; challenges and the success data come back as raw bytes to base64-encode.
//! No I/O, no clock, and no randomness except the salts of [`Credentials::derive`]: the server nonce is an input.

mod credentials;
pub mod ht;
mod keys;
mod plain;
mod scram;

pub use credentials::*;
pub use keys::{ScramHash, DEFAULT_ITERATIONS, SALT_LEN};

use std::fmt;

/// A SASL mechanism this server implements. `-PLUS` variants are not offered (no channel binding yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    ScramSha256,
    ScramSha1,
    Plain,
}

impl Mechanism {
    /// The IANA-registered name, as sent in `<mechanism/>` and `<auth mechanism='...'/>`.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha1 => "SCRAM-SHA-1",
            Mechanism::Plain => "PLAIN",
        }
    }

    /// The mechanism with this exact name (SASL mechanism names are upper case, RFC 4422 §3.1).
    pub fn from_name(s: &str) -> Option<Mechanism> {
        [Mechanism::ScramSha256, Mechanism::ScramSha1, Mechanism::Plain].into_iter().find(|m| m.name() == s)
    }

    /// Mechanisms to advertise, strongest first; PLAIN only when `tls` is true, since it sends the password itself.
    pub fn offered(tls: bool) -> &'static [Mechanism] {
        if tls {
            &[Mechanism::ScramSha256, Mechanism::ScramSha1, Mechanism::Plain]
        } else {
            &[Mechanism::ScramSha256, Mechanism::ScramSha1]
        }
    }

    fn scram_hash(self) -> Option<ScramHash> {
        match self {
            Mechanism::ScramSha256 => Some(ScramHash::Sha256),
            Mechanism::ScramSha1 => Some(ScramHash::Sha1),
            Mechanism::Plain => None,
        }
    }
}

/// RFC 6120 §6.5 failure conditions: the child element of `<failure/>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    #[error("aborted")]
    Aborted,
    #[error("account-disabled")]
    AccountDisabled,
    #[error("credentials-expired")]
    CredentialsExpired,
    #[error("encryption-required")]
    EncryptionRequired,
    #[error("incorrect-encoding")]
    IncorrectEncoding,
    #[error("invalid-authzid")]
    InvalidAuthzid,
    #[error("invalid-mechanism")]
    InvalidMechanism,
    #[error("malformed-request")]
    MalformedRequest,
    #[error("mechanism-too-weak")]
    MechanismTooWeak,
    #[error("not-authorized")]
    NotAuthorized,
    #[error("temporary-auth-failure")]
    TemporaryAuthFailure,
}

impl SaslError {
    /// The element name of the condition, e.g. `"not-authorized"`.
    pub fn condition(self) -> &'static str {
        match self {
            SaslError::Aborted => "aborted",
            SaslError::AccountDisabled => "account-disabled",
            SaslError::CredentialsExpired => "credentials-expired",
            SaslError::EncryptionRequired => "encryption-required",
            SaslError::IncorrectEncoding => "incorrect-encoding",
            SaslError::InvalidAuthzid => "invalid-authzid",
            SaslError::InvalidMechanism => "invalid-mechanism",
            SaslError::MalformedRequest => "malformed-request",
            SaslError::MechanismTooWeak => "mechanism-too-weak",
            SaslError::NotAuthorized => "not-authorized",
            SaslError::TemporaryAuthFailure => "temporary-auth-failure",
        }
    }
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The mechanism parsed the client's first message and needs the stored credentials of `username`
    /// (the authcid, as sent, not normalised). Call [`SaslServer::provide_credentials`] next.
    NeedCredentials { username: String },
    /// Send this challenge (raw bytes; the caller base64-encodes it, an empty one as `=`, RFC 6120 §6.4.2) and
    /// feed the client's response to [`SaslServer::step`].
    Challenge(Vec<u8>),
    /// Authentication succeeded; `additional_data` goes into `<success/>` (SCRAM server-final "v=..."), None for PLAIN.
    Success { username: String, additional_data: Option<Vec<u8>> },
}

/// One SASL exchange, from the `<auth/>` to `<success/>` or `<failure/>`. Once it has succeeded or failed, every
/// further call is `Err(MalformedRequest)`: a new attempt needs a new `SaslServer` (and a new nonce).
pub struct SaslServer {
    mechanism: Mechanism,
    domain: String,
    nonce: String,
    fake_salt_secret: [u8; 32],
    fake_iterations: u32,
    tls: bool,
    state: State,
}

enum State {
    /// Nothing received yet; `sent_empty_challenge` once an empty initial response was answered.
    Start {
        sent_empty_challenge: bool,
    },
    ScramNeedCredentials(scram::ClientFirst),
    ScramAwaitFinal(scram::ServerFirst),
    PlainNeedCredentials(plain::Request),
    /// Succeeded or failed.
    Done,
}

impl SaslServer {
    /// `domain`: the server's domain, to check an authzid. `nonce`: a fresh random printable server nonce (the
    /// caller generates it). `fake_salt_secret`: a per-process secret from which the keys of unknown users are
    /// derived, so that an unknown account looks exactly like a known one until the final proof fails (no account
    /// enumeration). `tls`: whether the stream is encrypted (PLAIN without TLS fails with `EncryptionRequired`).
    pub fn new(mechanism: Mechanism, domain: &str, nonce: String, fake_salt_secret: [u8; 32], tls: bool) -> SaslServer {
        SaslServer {
            mechanism,
            domain: domain.to_owned(),
            nonce,
            fake_salt_secret,
            fake_iterations: DEFAULT_ITERATIONS,
            tls,
            state: State::Start { sent_empty_challenge: false },
        }
    }

    /// Iteration count announced for unknown accounts (default [`DEFAULT_ITERATIONS`]). Set it to the count used
    /// for real accounts, or an unknown account stands out by its `i=`.
    #[must_use]
    pub fn with_fake_iterations(mut self, iterations: u32) -> SaslServer {
        self.fake_iterations = iterations;
        self
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Feed the (already base64-decoded) initial response or a later response. An empty first input is taken as
    /// "no initial response" (RFC 6120 §6.4.2) and answered once with an empty challenge.
    pub fn step(&mut self, input: &[u8]) -> Result<Step, SaslError> {
        let state = std::mem::replace(&mut self.state, State::Done);
        let (next, step) = self.advance(state, input)?;
        self.state = next;
        Ok(step)
    }

    /// Answer a [`Step::NeedCredentials`]: `Some(creds)` for a known account, `None` for an unknown one (SCRAM then
    /// goes on with fake keys and fails at the proof with `NotAuthorized`; PLAIN fails with `NotAuthorized`).
    pub fn provide_credentials(&mut self, creds: Option<&Credentials>) -> Result<Step, SaslError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::ScramNeedCredentials(first) => {
                let keys = match creds {
                    Some(c) if first.hash == ScramHash::Sha1 => c.sha1.clone(),
                    Some(c) => c.sha256.clone(),
                    None => keys::fake_keys(first.hash, &self.fake_salt_secret, &first.username, self.fake_iterations),
                };
                let (server_first, challenge) = scram::server_first(first, keys, creds.is_some(), &self.nonce);
                self.state = State::ScramAwaitFinal(server_first);
                Ok(Step::Challenge(challenge))
            }
            State::PlainNeedCredentials(request) => {
                let keys = match creds {
                    Some(c) => c.sha256.clone(),
                    None => keys::fake_keys(
                        ScramHash::Sha256,
                        &self.fake_salt_secret,
                        &request.authcid,
                        self.fake_iterations,
                    ),
                };
                let username = plain::verify(request, &keys, creds.is_some(), &self.fake_salt_secret)?;
                Ok(Step::Success { username, additional_data: None })
            }
            State::Start { .. } | State::ScramAwaitFinal(_) | State::Done => Err(SaslError::MalformedRequest),
        }
    }

    fn advance(&self, state: State, input: &[u8]) -> Result<(State, Step), SaslError> {
        match state {
            State::Start { sent_empty_challenge } => {
                if self.mechanism == Mechanism::Plain && !self.tls {
                    return Err(SaslError::EncryptionRequired);
                }
                if input.is_empty() && !sent_empty_challenge {
                    return Ok((State::Start { sent_empty_challenge: true }, Step::Challenge(Vec::new())));
                }
                match self.mechanism.scram_hash() {
                    Some(hash) => {
                        if !scram::is_printable(&self.nonce) {
                            // The caller's nonce would corrupt the server-first message.
                            return Err(SaslError::TemporaryAuthFailure);
                        }
                        let first = scram::parse_client_first(hash, input, &self.domain)?;
                        let username = first.username.clone();
                        Ok((State::ScramNeedCredentials(first), Step::NeedCredentials { username }))
                    }
                    None => {
                        let request = plain::parse(input, &self.domain)?;
                        let username = request.authcid.clone();
                        Ok((State::PlainNeedCredentials(request), Step::NeedCredentials { username }))
                    }
                }
            }
            State::ScramAwaitFinal(server_first) => {
                let success = scram::verify_client_final(&server_first, input, &self.fake_salt_secret)?;
                let username = server_first.into_username();
                Ok((State::Done, Step::Success { username, additional_data: Some(success) }))
            }
            State::ScramNeedCredentials(_) | State::PlainNeedCredentials(_) | State::Done => {
                Err(SaslError::MalformedRequest)
            }
        }
    }
}

impl fmt::Debug for SaslServer {
    /// Shows where the exchange is, never keys, secrets or passwords.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Start { .. } => "start",
            State::ScramNeedCredentials(_) | State::PlainNeedCredentials(_) => "need-credentials",
            State::ScramAwaitFinal(_) => "await-client-final",
            State::Done => "done",
        };
        f.debug_struct("SaslServer")
            .field("mechanism", &self.mechanism)
            .field("domain", &self.domain)
            .field("tls", &self.tls)
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

/// RFC 6120 §6.3.8: the client may only act as itself. An authzid is accepted when absent, equal to the authcid,
/// or the bare JID `authcid@domain` (domain compared ASCII-case-insensitively); anything else is `InvalidAuthzid`.
fn check_authzid(authzid: &str, authcid: &str, domain: &str) -> Result<(), SaslError> {
    let own_jid =
        authzid.rsplit_once('@').is_some_and(|(local, host)| local == authcid && host.eq_ignore_ascii_case(domain));
    if authzid.is_empty() || authzid == authcid || own_jid {
        Ok(())
    } else {
        Err(SaslError::InvalidAuthzid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mechanisms_and_conditions() {
        for mechanism in [Mechanism::ScramSha256, Mechanism::ScramSha1, Mechanism::Plain] {
            assert_eq!(Mechanism::from_name(mechanism.name()), Some(mechanism));
        }
        assert_eq!(Mechanism::from_name("scram-sha-1"), None);
        assert_eq!(Mechanism::from_name("SCRAM-SHA-1-PLUS"), None);
        assert_eq!(Mechanism::offered(false), [Mechanism::ScramSha256, Mechanism::ScramSha1]);
        assert_eq!(Mechanism::offered(true), [Mechanism::ScramSha256, Mechanism::ScramSha1, Mechanism::Plain]);
        assert_eq!(SaslError::NotAuthorized.condition(), "not-authorized");
        assert_eq!(SaslError::InvalidAuthzid.condition(), "invalid-authzid");
        assert_eq!(SaslError::TemporaryAuthFailure.to_string(), "temporary-auth-failure");
    }

    #[test]
    fn unusable_server_nonce_is_a_temporary_failure() {
        for nonce in ["", "has space", "has,comma", "é"] {
            let mut server = SaslServer::new(Mechanism::ScramSha1, "example.org", nonce.into(), [0; 32], false);
            assert_eq!(server.step(b"n,,n=user,r=abc"), Err(SaslError::TemporaryAuthFailure), "{nonce:?}");
        }
    }

    #[test]
    fn debug_shows_no_secrets() {
        let server = SaslServer::new(Mechanism::Plain, "example.org", "nonce".into(), [0x5a; 32], true);
        let shown = format!("{server:?}");
        assert!(shown.contains("Plain") && shown.contains("start") && !shown.contains("90"), "{shown}");
    }

    #[test]
    fn authzid_must_name_the_authenticating_user() {
        assert_eq!(check_authzid("", "juliet", "capulet.lit"), Ok(()));
        assert_eq!(check_authzid("juliet", "juliet", "capulet.lit"), Ok(()));
        assert_eq!(check_authzid("juliet@capulet.lit", "juliet", "capulet.lit"), Ok(()));
        assert_eq!(check_authzid("juliet@Capulet.LIT", "juliet", "capulet.lit"), Ok(()));
        for other in ["romeo", "romeo@capulet.lit", "juliet@montague.lit", "juliet@capulet.lit/balcony", "@"] {
            assert_eq!(check_authzid(other, "juliet", "capulet.lit"), Err(SaslError::InvalidAuthzid), "{other}");
        }
    }
}
