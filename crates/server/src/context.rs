//! What every session shares: configuration, store, router, TLS, throttling and the shutdown signal. Built once at
//! start and passed by `Arc`; nothing here is global.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use drupe_store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::AuthThrottle;
use crate::config::Config;
use crate::router::Router;

pub struct Context {
    pub config: Config,
    pub store: Store,
    pub router: Router,
    pub tls: tokio_rustls::TlsAcceptor,
    pub throttle: AuthThrottle,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    /// Per-process secret for the fake SCRAM salts of unknown accounts (no account enumeration).
    pub fake_salt_secret: [u8; 32],
    next_id: AtomicU64,
}

impl Context {
    pub fn new(config: Config, store: Store, tls: Arc<rustls::ServerConfig>) -> Context {
        let throttle = AuthThrottle::new(&config.auth);
        Context {
            config,
            store,
            router: Router::default(),
            tls: tokio_rustls::TlsAcceptor::from(tls),
            throttle,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            fake_salt_secret: rand::random(),
            next_id: AtomicU64::new(1),
        }
    }

    /// A process-unique number for a session.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn domain(&self) -> &str {
        &self.config.domain
    }
}

/// A random printable token (stream ids, SCRAM nonces, generated resources).
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}
