//! What every session shares: configuration, store, router, TLS, throttling and the shutdown signal. Built once at
//! start and passed by `Arc`; nothing here is global.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use drupe_store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::AuthThrottle;
use crate::config::Config;
use crate::router::Router;

/// A resumable session: its account, its session id, and where to ask it for its state.
type Resumable = (String, u64, TakeoverSender);
type TakeoverSender = crate::queue::Sender<crate::c2s::Takeover>;

pub struct Context {
    pub config: Config,
    pub store: Store,
    pub router: Router,
    /// TLS for the HTTPS listener (tokio-rustls).
    pub tls: tokio_rustls::TlsAcceptor,
    /// TLS for client streams (STARTTLS and direct TLS, `c2s::tls` on rustls's unbuffered API).
    pub tls_config: Arc<rustls::ServerConfig>,
    pub throttle: AuthThrottle,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    /// Per-process secret for the fake SCRAM salts of unknown accounts (no account enumeration).
    pub fake_salt_secret: [u8; 32],
    /// Key the XEP-0484 FAST tokens are derived with (kept in `data_dir/fast.key`, not in the database).
    pub fast_key: [u8; 32],
    pub blocklists: crate::modules::blocking::Blocklists,
    pub mam_prefs: crate::modules::mam::PrefsCache,
    pub muc: crate::modules::muc::Muc,
    /// XEP-0163 PEP: verified XEP-0115 caps of available resources, avatar hashes.
    pub pep: crate::modules::pep::Pep,
    /// XEP-0363 upload service (address and URL signing key).
    pub upload: crate::modules::upload::Upload,
    next_id: AtomicU64,
    /// XEP-0198 resumption ids: owner account, session id, and the channel to ask that session for its state.
    resumption: Mutex<HashMap<String, Resumable>>,
}

impl Context {
    pub fn new(config: Config, store: Store, tls: Arc<rustls::ServerConfig>, fast_key: [u8; 32]) -> Context {
        let throttle = AuthThrottle::new(&config.auth);
        let muc = crate::modules::muc::Muc::new(format!("{}.{}", config.muc.subdomain, config.domain));
        let pep = crate::modules::pep::Pep::new(&config.pubsub);
        let upload = crate::modules::upload::Upload::new(&config);
        Context {
            config,
            store,
            router: Router::default(),
            tls: tokio_rustls::TlsAcceptor::from(tls.clone()),
            tls_config: tls,
            throttle,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            fake_salt_secret: rand::random(),
            fast_key,
            blocklists: Default::default(),
            mam_prefs: Default::default(),
            muc,
            pep,
            upload,
            next_id: AtomicU64::new(1),
            resumption: Mutex::new(HashMap::new()),
        }
    }

    /// A process-unique number for a session.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn resumption_register(&self, id: &str, user: &str, session: u64, tx: TakeoverSender) {
        let mut map = self.resumption.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(id.to_owned(), (user.to_owned(), session, tx));
    }

    /// The channel to the session holding resumption id `id`, if it belongs to `user`.
    pub fn resumption_lookup(&self, id: &str, user: &str) -> Option<TakeoverSender> {
        let map = self.resumption.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id).filter(|(owner, _, _)| owner == user).map(|(_, _, tx)| tx.clone())
    }

    /// Forgets a resumption id, unless it now belongs to another session.
    pub fn resumption_remove(&self, id: &str, session: u64) {
        let mut map = self.resumption.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(id).is_some_and(|(_, s, _)| *s == session) {
            map.remove(id);
        }
    }

    pub fn domain(&self) -> &str {
        &self.config.domain
    }
}

/// Runs `work` every `period`, the first time at once, until shutdown (periodic upkeep: retention, expiry,
/// indexing). A run that overruns delays the next one rather than bunching them up.
pub async fn every<F, Fut>(ctx: &Context, period: std::time::Duration, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = ctx.shutdown.cancelled() => return,
        }
        work().await;
    }
}

/// A unique id that sorts by creation time (XEP-0359 stanza-ids), made at `ms` (Unix milliseconds; negative
/// counts as 0): 8 base-62 digits of the time, then 12 random ones (71 bits). The archive finds an id by the
/// time in it (`drupe_store::stanza_id_millis`).
pub fn time_ordered_id_at(ms: i64) -> String {
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let ms = u64::try_from(ms).unwrap_or(0);
    let mut id = [0u8; 8];
    let mut rest = ms;
    for digit in id.iter_mut().rev() {
        *digit = ALPHABET[(rest % 62) as usize];
        rest /= 62;
    }
    let mut id = String::from_utf8_lossy(&id).into_owned();
    id.push_str(&random_token(12));
    id
}

/// A random printable token (stream ids, SCRAM nonces, generated resources).
pub fn random_token(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..len).map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn time_ordered_ids_sort_by_time_and_differ() {
        let a = super::time_ordered_id_at(1_764_000_000_000);
        let b = super::time_ordered_id_at(1_764_000_000_001);
        assert_eq!((a.len(), b.len()), (20, 20));
        assert!(a < b, "{a} {b}");
        assert_ne!(super::time_ordered_id_at(5), super::time_ordered_id_at(5));
    }

    #[test]
    fn the_store_reads_the_time_of_an_id() {
        for ms in [0, 1, 1_764_000_000_123, 62_i64.pow(8) - 1] {
            assert_eq!(drupe_store::stanza_id_millis(&super::time_ordered_id_at(ms)), Some(ms));
        }
    }
}
