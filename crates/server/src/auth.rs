//! Slowing down password guessing: every failed authentication is answered after a delay that doubles with each
//! recent failure from the same address (bounded by config), so one address cannot try passwords quickly, while
//! other users are unaffected.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Auth;

pub struct AuthThrottle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
    base: Duration,
    max: Duration,
    window: Duration,
}

/// Entries beyond this many are pruned of expired ones, keeping the map bounded under a distributed attack.
const PRUNE_AT: usize = 4096;

impl AuthThrottle {
    pub fn new(config: &Auth) -> AuthThrottle {
        AuthThrottle {
            failures: Mutex::new(HashMap::new()),
            base: Duration::from_millis(config.failure_delay_ms),
            max: Duration::from_millis(config.max_failure_delay_ms),
            window: Duration::from_secs(config.failure_window_secs),
        }
    }

    /// Records a failure from `ip` at `now` and returns how long to wait before answering it.
    pub fn failure(&self, ip: IpAddr, now: Instant) -> Duration {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= PRUNE_AT {
            map.retain(|_, (_, last)| now.duration_since(*last) < self.window);
        }
        let entry = map.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= self.window {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        let factor = 1u32 << (entry.0 - 1).min(16);
        self.base.saturating_mul(factor).min(self.max)
    }

    pub fn success(&self, ip: IpAddr) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_per_address_and_is_bounded() {
        let t = AuthThrottle::new(&Auth {
            failure_delay_ms: 100,
            max_failure_delay_ms: 1000,
            failure_window_secs: 60,
            ..Auth::default()
        });
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let now = Instant::now();
        let delays: Vec<_> = (0..6).map(|_| t.failure(a, now).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(t.failure(b, now).as_millis(), 100, "other addresses are unaffected");
        assert_eq!(t.failure(a, now + Duration::from_secs(61)).as_millis(), 100, "window expired");
        t.success(b);
        assert_eq!(t.failure(b, now).as_millis(), 100);
    }
}
