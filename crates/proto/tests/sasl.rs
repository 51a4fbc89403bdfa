//! SASL server exchanges: the RFC 5802 and RFC 7677 test vectors, PLAIN, misuse, and hostile input.

use base64::{engine::general_purpose::STANDARD, Engine};
use drupe_proto::sasl::{Credentials, Mechanism, SaslError, SaslServer, ScramHash, ScramKeys, Step};
use ring::{digest, hmac, pbkdf2};
use std::num::NonZeroU32;

const DOMAIN: &str = "example.org";
const SECRET: [u8; 32] = [42; 32];
const NONCE: &str = "3rfcNHYJY1ZVvWVs7j";
const SCRAMS: [Mechanism; 2] = [Mechanism::ScramSha1, Mechanism::ScramSha256];

// RFC 5802 §5 (SCRAM-SHA-1) and RFC 7677 §3 (SCRAM-SHA-256): user "user", password "pencil".
const SHA1_SALT: &str = "QSXCR+Q6sek8bf92";
const SHA1_CLIENT_FIRST: &str = "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL";
const SHA1_SERVER_FIRST: &str = "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096";
const SHA1_CLIENT_FINAL: &str = "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=";
const SHA1_SERVER_FINAL: &str = "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=";
const SHA256_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
const SHA256_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const SHA256_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const SHA256_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const SHA256_CLIENT_FINAL: &str =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SHA256_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

/// The store's record for `password` with the RFC salts, as if it had been set with them.
fn rfc_credentials(password: &str) -> Credentials {
    let salt = |b64: &str| STANDARD.decode(b64).unwrap();
    Credentials {
        sha1: ScramKeys::derive_with_salt(ScramHash::Sha1, password, &salt(SHA1_SALT), 4096).unwrap(),
        sha256: ScramKeys::derive_with_salt(ScramHash::Sha256, password, &salt(SHA256_SALT), 4096).unwrap(),
    }
}

/// The RFC exchange of `mechanism`: (server nonce, client-first, server-first, client-final, server-final).
fn rfc_exchange(mechanism: Mechanism) -> [&'static str; 5] {
    match mechanism {
        Mechanism::ScramSha1 => [NONCE, SHA1_CLIENT_FIRST, SHA1_SERVER_FIRST, SHA1_CLIENT_FINAL, SHA1_SERVER_FINAL],
        _ => [SHA256_NONCE, SHA256_CLIENT_FIRST, SHA256_SERVER_FIRST, SHA256_CLIENT_FINAL, SHA256_SERVER_FINAL],
    }
}

fn hash_of(mechanism: Mechanism) -> ScramHash {
    if mechanism == Mechanism::ScramSha1 {
        ScramHash::Sha1
    } else {
        ScramHash::Sha256
    }
}

fn challenge(step: Result<Step, SaslError>) -> String {
    match step {
        Ok(Step::Challenge(bytes)) => String::from_utf8(bytes).unwrap(),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

/// A server of the RFC exchange of `mechanism` that has sent its server-first message.
fn rfc_server_after_first(mechanism: Mechanism, creds: Option<&Credentials>) -> SaslServer {
    let [nonce, client_first, ..] = rfc_exchange(mechanism);
    let mut server = SaslServer::new(mechanism, DOMAIN, nonce.into(), SECRET, false);
    assert_eq!(server.step(client_first.as_bytes()), Ok(Step::NeedCredentials { username: "user".into() }));
    challenge(server.provide_credentials(creds));
    server
}

/// What an honest client answers to `server_first`: computes ClientProof from `password` (RFC 5802 §3).
fn client_final(hash: ScramHash, password: &str, gs2: &str, bare: &str, server_first: &str) -> String {
    let attr = |name: &str| server_first.split(',').find_map(|a| a.strip_prefix(name)).unwrap().to_owned();
    let (nonce, salt, iterations) = (attr("r="), STANDARD.decode(attr("s=")).unwrap(), attr("i=").parse().unwrap());
    let (pbkdf2_alg, hmac_alg, digest_alg) = match hash {
        ScramHash::Sha1 => {
            (pbkdf2::PBKDF2_HMAC_SHA1, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &digest::SHA1_FOR_LEGACY_USE_ONLY)
        }
        ScramHash::Sha256 => (pbkdf2::PBKDF2_HMAC_SHA256, hmac::HMAC_SHA256, &digest::SHA256),
    };
    let mut salted = vec![0; hash.output_len()];
    pbkdf2::derive(pbkdf2_alg, NonZeroU32::new(iterations).unwrap(), &salt, password.as_bytes(), &mut salted);
    let client_key = hmac::sign(&hmac::Key::new(hmac_alg, &salted), b"Client Key");
    let stored_key = digest::digest(digest_alg, client_key.as_ref());
    let without_proof = format!("c={},r={nonce}", STANDARD.encode(gs2));
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let signature = hmac::sign(&hmac::Key::new(hmac_alg, stored_key.as_ref()), auth_message.as_bytes());
    let proof: Vec<u8> = client_key.as_ref().iter().zip(signature.as_ref()).map(|(k, s)| k ^ s).collect();
    format!("{without_proof},p={}", STANDARD.encode(proof))
}

/// A whole SCRAM login by an honest client with header `gs2` and saslname `user`, against `creds` from the store.
fn scram_login(
    mechanism: Mechanism,
    gs2: &str,
    user: &str,
    password: &str,
    creds: Option<&Credentials>,
) -> Result<Step, SaslError> {
    let mut server = SaslServer::new(mechanism, DOMAIN, NONCE.into(), SECRET, false);
    let bare = format!("n={user},r=clientnonce");
    assert!(matches!(server.step(format!("{gs2}{bare}").as_bytes())?, Step::NeedCredentials { .. }));
    let server_first = challenge(server.provide_credentials(creds));
    server.step(client_final(hash_of(mechanism), password, gs2, &bare, &server_first).as_bytes())
}

fn plain(tls: bool, message: &[u8], creds: Option<&Credentials>) -> Result<Step, SaslError> {
    let mut server = SaslServer::new(Mechanism::Plain, DOMAIN, NONCE.into(), SECRET, tls);
    match server.step(message)? {
        Step::NeedCredentials { .. } => server.provide_credentials(creds),
        other => Ok(other),
    }
}

fn success(username: &str, additional_data: Option<&str>) -> Result<Step, SaslError> {
    Ok(Step::Success { username: username.into(), additional_data: additional_data.map(|d| d.as_bytes().to_vec()) })
}

#[test]
fn rfc_5802_and_7677_exchanges() {
    let creds = rfc_credentials("pencil");
    for mechanism in SCRAMS {
        let [nonce, client_first, server_first, client_final, server_final] = rfc_exchange(mechanism);
        let mut server = SaslServer::new(mechanism, DOMAIN, nonce.into(), SECRET, false);
        assert_eq!(server.step(client_first.as_bytes()), Ok(Step::NeedCredentials { username: "user".into() }));
        assert_eq!(challenge(server.provide_credentials(Some(&creds))), server_first);
        assert_eq!(server.step(client_final.as_bytes()), success("user", Some(server_final)));
        // Done: nothing more is accepted.
        assert_eq!(server.step(client_final.as_bytes()), Err(SaslError::MalformedRequest));
        assert_eq!(server.provide_credentials(Some(&creds)), Err(SaslError::MalformedRequest));
    }
}

#[test]
fn scram_wrong_password_is_not_authorized() {
    let creds = rfc_credentials("pencil2");
    for mechanism in SCRAMS {
        let mut server = rfc_server_after_first(mechanism, Some(&creds));
        assert_eq!(server.step(rfc_exchange(mechanism)[3].as_bytes()), Err(SaslError::NotAuthorized));
        assert_eq!(server.step(rfc_exchange(mechanism)[3].as_bytes()), Err(SaslError::MalformedRequest));
    }
}

#[test]
fn scram_unknown_user_looks_known_until_the_proof() {
    let known = Credentials::derive("pencil", 4096).unwrap();
    for mechanism in SCRAMS {
        let first = |user: &str, creds: Option<&Credentials>| {
            let mut server = SaslServer::new(mechanism, DOMAIN, NONCE.into(), SECRET, false);
            server.step(format!("n,,n={user},r=abc").as_bytes()).unwrap();
            challenge(server.provide_credentials(creds))
        };
        let (ghost, again, other, real) =
            (first("ghost", None), first("ghost", None), first("ghost2", None), first("user", Some(&known)));
        assert_eq!(ghost, again, "the fake salt must be stable");
        assert_ne!(ghost, other);
        let shape = |m: &str| m.split(',').map(|a| a.len()).collect::<Vec<_>>();
        assert_eq!(shape(&ghost), shape(&real), "{ghost} vs {real}");
        assert!(ghost.ends_with(",i=4096"));
        // Even the right password of some other account does not open an unknown one.
        assert_eq!(scram_login(mechanism, "n,,", "ghost", "pencil", None), Err(SaslError::NotAuthorized));
        let login = scram_login(mechanism, "n,,", "user", "pencil", Some(&known));
        assert!(matches!(login, Ok(Step::Success { additional_data: Some(_), .. })), "{login:?}");
    }
    let mut server =
        SaslServer::new(Mechanism::ScramSha256, DOMAIN, NONCE.into(), SECRET, false).with_fake_iterations(10_000);
    server.step(b"n,,n=ghost,r=abc").unwrap();
    assert!(challenge(server.provide_credentials(None)).ends_with(",i=10000"));
}

#[test]
fn scram_authzid_and_saslnames() {
    let creds = rfc_credentials("pencil");
    for mechanism in SCRAMS {
        for gs2 in ["n,,", "y,,", "n,a=user,", "y,a=user@example.org,", "n,a=user@EXAMPLE.org,"] {
            let result = scram_login(mechanism, gs2, "user", "pencil", Some(&creds));
            assert!(
                matches!(result, Ok(Step::Success { ref username, .. }) if username == "user"),
                "{gs2}: {result:?}"
            );
        }
        for gs2 in ["n,a=admin,", "n,a=admin@example.org,", "n,a=user@evil.org,", "n,a=user@example.org/res,"] {
            let mut server = SaslServer::new(mechanism, DOMAIN, NONCE.into(), SECRET, false);
            assert_eq!(server.step(format!("{gs2}n=user,r=abc").as_bytes()), Err(SaslError::InvalidAuthzid), "{gs2}");
        }
        let mut server = SaslServer::new(mechanism, DOMAIN, NONCE.into(), SECRET, false);
        assert_eq!(
            server.step(b"n,a=a=2Cb=3D,n=a=2Cb=3D,r=abc"),
            Ok(Step::NeedCredentials { username: "a,b=".into() })
        );
    }
}

#[test]
fn scram_final_message_errors() {
    let creds = rfc_credentials("pencil");
    for mechanism in SCRAMS {
        let [_, _, server_first, client_final, _] = rfc_exchange(mechanism);
        let full_nonce = &server_first[2..server_first.find(",s=").unwrap()];
        let client_nonce = &full_nonce[..20];
        let proof = &client_final[client_final.find(",p=").unwrap()..];
        let cases = [
            (format!("c=biws,r={client_nonce}{proof}"), SaslError::MalformedRequest), // nonce without the server's part
            (format!("c=biws,r={full_nonce}x{proof}"), SaslError::MalformedRequest),
            (format!("c=eSws,r={full_nonce}{proof}"), SaslError::MalformedRequest), // "y,," is not what was sent
            (format!("c=bixx,r={full_nonce}{proof}"), SaslError::MalformedRequest),
            (format!("c=!!,r={full_nonce}{proof}"), SaslError::IncorrectEncoding),
            (format!("c=biws,r={full_nonce},p=!!"), SaslError::IncorrectEncoding),
            (format!("c=biws,r={full_nonce},p=AAAA"), SaslError::MalformedRequest),
            (format!("r={full_nonce},c=biws{proof}"), SaslError::MalformedRequest),
            (format!("c=biws,r={full_nonce},m=x{proof}"), SaslError::MalformedRequest),
            (format!("c=biws,r={full_nonce}"), SaslError::MalformedRequest),
            (format!("{client_final},x=trailing"), SaslError::MalformedRequest),
        ];
        for (input, expected) in cases {
            let mut server = rfc_server_after_first(mechanism, Some(&creds));
            assert_eq!(server.step(input.as_bytes()), Err(expected), "{input}");
        }
        // An unknown extension is part of AuthMessage: it breaks the RFC proof, but parses.
        let mut server = rfc_server_after_first(mechanism, Some(&creds));
        let with_ext = client_final.replace(",p=", ",x=1,p=");
        assert_eq!(server.step(with_ext.as_bytes()), Err(SaslError::NotAuthorized));
    }
}

#[test]
fn out_of_order_calls_are_malformed() {
    let creds = rfc_credentials("pencil");
    for mechanism in [Mechanism::ScramSha1, Mechanism::ScramSha256, Mechanism::Plain] {
        let mut server = SaslServer::new(mechanism, DOMAIN, NONCE.into(), SECRET, true);
        assert_eq!(server.provide_credentials(Some(&creds)), Err(SaslError::MalformedRequest));
        assert_eq!(server.step(b"n,,n=user,r=abc"), Err(SaslError::MalformedRequest));

        let mut server = SaslServer::new(mechanism, DOMAIN, NONCE.into(), SECRET, true);
        let first: &[u8] = if mechanism == Mechanism::Plain { b"\0user\0pencil" } else { b"n,,n=user,r=abc" };
        assert!(matches!(server.step(first), Ok(Step::NeedCredentials { .. })));
        assert_eq!(server.step(first), Err(SaslError::MalformedRequest), "step instead of provide_credentials");
        assert_eq!(server.provide_credentials(Some(&creds)), Err(SaslError::MalformedRequest));
    }
}

#[test]
fn empty_initial_response_gets_one_empty_challenge() {
    let creds = rfc_credentials("pencil");
    let mut server = SaslServer::new(Mechanism::ScramSha1, DOMAIN, NONCE.into(), SECRET, false);
    assert_eq!(server.step(b""), Ok(Step::Challenge(Vec::new())));
    assert_eq!(server.step(SHA1_CLIENT_FIRST.as_bytes()), Ok(Step::NeedCredentials { username: "user".into() }));
    assert_eq!(challenge(server.provide_credentials(Some(&creds))), SHA1_SERVER_FIRST);
    assert_eq!(server.step(SHA1_CLIENT_FINAL.as_bytes()), success("user", Some(SHA1_SERVER_FINAL)));

    let mut server = SaslServer::new(Mechanism::Plain, DOMAIN, NONCE.into(), SECRET, true);
    assert_eq!(server.step(b""), Ok(Step::Challenge(Vec::new())));
    assert_eq!(server.step(b""), Err(SaslError::MalformedRequest));
}

#[test]
fn plain_logins() {
    let creds = Credentials::derive("pencil", 64).unwrap();
    assert_eq!(plain(true, b"\0user\0pencil", Some(&creds)), success("user", None));
    assert_eq!(plain(true, b"user\0user\0pencil", Some(&creds)), success("user", None));
    assert_eq!(plain(true, b"user@example.org\0user\0pencil", Some(&creds)), success("user", None));
    assert_eq!(plain(true, b"\0user\0pencil2", Some(&creds)), Err(SaslError::NotAuthorized));
    assert_eq!(plain(true, b"\0user\0Pencil", Some(&creds)), Err(SaslError::NotAuthorized));
    assert_eq!(plain(true, b"\0ghost\0pencil", None), Err(SaslError::NotAuthorized));
    assert_eq!(plain(true, b"admin\0user\0pencil", Some(&creds)), Err(SaslError::InvalidAuthzid));
    assert_eq!(plain(true, b"user@evil.org\0user\0pencil", Some(&creds)), Err(SaslError::InvalidAuthzid));
    assert_eq!(plain(false, b"\0user\0pencil", Some(&creds)), Err(SaslError::EncryptionRequired));
    assert_eq!(plain(false, b"", Some(&creds)), Err(SaslError::EncryptionRequired));
    assert_eq!(plain(true, b"\0\0pencil", Some(&creds)), Err(SaslError::MalformedRequest));
    assert_eq!(plain(true, b"\0user\0", Some(&creds)), Err(SaslError::MalformedRequest));
    assert_eq!(plain(true, b"\0user\0pen\0cil", Some(&creds)), Err(SaslError::MalformedRequest));
    assert_eq!(plain(true, b"\0user\0pen\ncil", Some(&creds)), Err(SaslError::MalformedRequest));
    assert_eq!(plain(true, b"\0user", Some(&creds)), Err(SaslError::MalformedRequest));
    assert_eq!(plain(true, b"\0us\xffer\0pencil", Some(&creds)), Err(SaslError::IncorrectEncoding));
    // PLAIN checks against the SHA-256 keys, so credentials set for SCRAM work for PLAIN too.
    assert_eq!(plain(true, b"\0user\0pencil", Some(&rfc_credentials("pencil"))), success("user", None));
}

#[test]
fn credentials_derivation() {
    let a = Credentials::derive("pencil", 4096).unwrap();
    let b = Credentials::derive("pencil", 4096).unwrap();
    assert_eq!((a.sha1.salt.len(), a.sha256.salt.len()), (16, 16));
    assert_ne!(a.sha1.salt, a.sha256.salt);
    assert_ne!(a.sha256.salt, b.sha256.salt);
    assert_eq!((a.sha1.stored_key.len(), a.sha1.server_key.len()), (20, 20));
    assert_eq!((a.sha256.stored_key.len(), a.sha256.server_key.len()), (32, 32));
    assert_eq!(a.sha256.iterations, 4096);
    for (password, iterations) in [("", 4096), ("pen\0cil", 4096), ("pen\u{1b}cil", 4096), ("pencil", 0)] {
        assert_eq!(Credentials::derive(password, iterations), Err(SaslError::MalformedRequest), "{password:?}");
    }
    for mechanism in SCRAMS {
        assert!(matches!(scram_login(mechanism, "n,,", "user", "pencil", Some(&a)), Ok(Step::Success { .. })));
        assert_eq!(scram_login(mechanism, "n,,", "user", "pencil!", Some(&a)), Err(SaslError::NotAuthorized));
    }
}

/// Every prefix of every valid message, at its own step: never a panic, never a success before the whole message,
/// and after any error the exchange is over.
#[test]
fn truncated_messages_never_succeed() {
    let creds = rfc_credentials("pencil");
    for mechanism in SCRAMS {
        let [nonce, client_first, _, client_final, _] = rfc_exchange(mechanism);
        for end in 0..client_first.len() {
            let mut server = SaslServer::new(mechanism, DOMAIN, nonce.into(), SECRET, false);
            match server.step(&client_first.as_bytes()[..end]) {
                Ok(Step::Challenge(empty)) => assert!(end == 0 && empty.is_empty()),
                // A shorter nonce is still a valid client-first message.
                Ok(Step::NeedCredentials { username }) => assert_eq!(username, "user"),
                Ok(success) => panic!("{success:?} from {end} bytes"),
                Err(_) => assert_eq!(server.step(client_first.as_bytes()), Err(SaslError::MalformedRequest)),
            }
        }
        for end in 0..client_final.len() {
            let mut server = rfc_server_after_first(mechanism, Some(&creds));
            assert!(server.step(&client_final.as_bytes()[..end]).is_err(), "{end} bytes");
            assert_eq!(server.step(client_final.as_bytes()), Err(SaslError::MalformedRequest));
        }
    }
    let creds = Credentials::derive("pencil", 16).unwrap();
    let message = b"user\0user\0pencil";
    for end in 0..message.len() {
        let result = plain(true, &message[..end], Some(&creds));
        assert!(matches!(result, Err(_) | Ok(Step::Challenge(_))), "{end} bytes: {result:?}");
    }
}

/// Any single changed byte of the client-final message must fail: each one is covered by the proof, the nonce
/// check or the channel-binding check.
#[test]
fn altered_final_messages_never_succeed() {
    let creds = rfc_credentials("pencil");
    for mechanism in SCRAMS {
        let client_final = rfc_exchange(mechanism)[3].as_bytes();
        for at in 0..client_final.len() {
            for byte in [0, b',', b'=', b'A', b'x', b'/', 0x80, 0xff] {
                if client_final[at] == byte {
                    continue;
                }
                let mut altered = client_final.to_vec();
                altered[at] = byte;
                let mut server = rfc_server_after_first(mechanism, Some(&creds));
                assert!(server.step(&altered).is_err(), "{}", String::from_utf8_lossy(&altered));
            }
        }
    }
}

/// Pseudo-random bytes, and pseudo-random mixes of the grammar's own characters, at every step of every mechanism.
#[test]
fn garbage_never_panics_or_succeeds() {
    let creds = Credentials::derive("pencil", 16).unwrap();
    let rfc_creds = rfc_credentials("pencil");
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    const ALPHABET: &[u8] = b"nypacrmsiv=,2C3D\0xX+/ \xff\xc3\xa9";
    for round in 0..3000 {
        let len = (next() % 48) as usize;
        let input: Vec<u8> = (0..len)
            .map(|_| if round % 2 == 0 { next() as u8 } else { ALPHABET[(next() % ALPHABET.len() as u64) as usize] })
            .collect();
        for mechanism in [Mechanism::ScramSha1, Mechanism::ScramSha256, Mechanism::Plain] {
            let mut server = SaslServer::new(mechanism, DOMAIN, NONCE.into(), SECRET, true);
            if let Ok(Step::NeedCredentials { .. }) = server.step(&input) {
                let known = if round % 3 == 0 { None } else { Some(&creds) };
                if let Ok(step) = server.provide_credentials(known) {
                    assert!(matches!(step, Step::Challenge(_)), "{mechanism:?} {input:?}: {step:?}");
                }
            }
            let result = server.step(&input);
            assert!(!matches!(result, Ok(Step::Success { .. })), "{mechanism:?} {input:?}");
        }
        for mechanism in SCRAMS {
            let mut server = rfc_server_after_first(mechanism, Some(&rfc_creds));
            assert!(server.step(&input).is_err(), "{mechanism:?} {input:?}");
        }
    }
}
