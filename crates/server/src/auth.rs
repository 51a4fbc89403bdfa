//! Slowing down password guessing across connections.
//!
//! Each address (IPv6 by /64) has a penalty clock: every failed authentication from it moves the clock on by a delay
//! that doubles with each recent failure (`auth.failure_delay_ms` up to `auth.max_failure_delay_ms`), and no new
//! attempt from it is verified while its clock is more than `auth.max_failure_delay_ms` ahead (the client gets
//! `temporary-auth-failure` at once). Attempts in flight together all pay: 170 parallel connections from one address
//! make as many guesses as one connection would, about one per `max_failure_delay_ms` once failures pile up.
//! Refused attempts do not move the clock, so an address can never be shut out for longer than its own failures
//! paid for.
//!
//! Each account also counts its failures, from any address, and a failure's answer waits for the larger of the two
//! delays. The account's own successful login resets its count; nothing resets an address's count but time (another
//! account logging in from behind the same NAT does not). An account is never refused before its password is
//! checked, so the real owner, from another address, logs in without delay whatever an attacker does.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Auth;

pub struct AuthThrottle {
    inner: Mutex<Tables>,
    base: Duration,
    max: Duration,
    window: Duration,
}

#[derive(Default)]
struct Tables {
    addresses: HashMap<IpAddr, Record>,
    accounts: HashMap<String, Record>,
}

/// Recent failures of one address or account.
#[derive(Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    /// The penalty clock: when the failures so far have been paid for.
    clock: Instant,
}

/// Whether an attempt from an address may be verified now.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Verify it after this wait (zero for an address without recent failures).
    After(Duration),
    /// Refuse it at once: the address's failures are not yet paid for.
    Refused,
}

/// Tables beyond this many entries are pruned of expired ones, keeping them bounded under a distributed attack.
const PRUNE_AT: usize = 4096;

/// The address failures are counted under: IPv4 as is, IPv6 by its /64 (one customer's network).
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

impl AuthThrottle {
    pub fn new(config: &Auth) -> AuthThrottle {
        AuthThrottle {
            inner: Mutex::new(Tables::default()),
            base: Duration::from_millis(config.failure_delay_ms),
            max: Duration::from_millis(config.max_failure_delay_ms),
            window: Duration::from_secs(config.failure_window_secs),
        }
    }

    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        // The tables hold counters only: a panic elsewhere cannot leave them half-changed.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Before verifying an attempt from `ip` at `now`.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Admission {
        let tables = self.tables();
        let Some(record) = tables.addresses.get(&key(ip)) else { return Admission::After(Duration::ZERO) };
        let ahead = record.clock.saturating_duration_since(now);
        if ahead > self.max {
            Admission::Refused
        } else {
            Admission::After(ahead)
        }
    }

    /// Records a failed attempt from `ip` (for `account`, when the client named one) at `now`; returns how long to
    /// wait before answering it.
    pub fn failure(&self, ip: IpAddr, account: Option<&str>, now: Instant) -> Duration {
        let mut tables = self.tables();
        let window = self.window;
        if tables.addresses.len() >= PRUNE_AT {
            tables.addresses.retain(|_, r| now.saturating_duration_since(r.last) < window);
        }
        if tables.accounts.len() >= PRUNE_AT {
            tables.accounts.retain(|_, r| now.saturating_duration_since(r.last) < window);
        }
        let by_address = self.bump(tables.addresses.entry(key(ip)).or_insert_with(|| fresh(now)), now);
        let by_account = match account {
            Some(account) => self.bump(tables.accounts.entry(account.to_owned()).or_insert_with(|| fresh(now)), now),
            None => Duration::ZERO,
        };
        by_address.max(by_account)
    }

    /// Counts one failure on `record` and moves its clock on; returns the wait until the clock.
    fn bump(&self, record: &mut Record, now: Instant) -> Duration {
        if now.saturating_duration_since(record.last) >= self.window {
            *record = fresh(now);
        }
        record.failures = record.failures.saturating_add(1);
        record.last = now;
        let delay = self.base.saturating_mul(1u32 << (record.failures - 1).min(16)).min(self.max);
        record.clock = record.clock.max(now) + delay;
        record.clock.saturating_duration_since(now).min(self.max)
    }

    /// `account` logged in (from `ip`): its own count starts over; the address's does not.
    pub fn success(&self, account: &str) {
        self.tables().accounts.remove(account);
    }
}

fn fresh(now: Instant) -> Record {
    Record { failures: 0, last: now, clock: now }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> AuthThrottle {
        AuthThrottle::new(&Auth {
            failure_delay_ms: 100,
            max_failure_delay_ms: 1000,
            failure_window_secs: 60,
            ..Auth::default()
        })
    }

    const A: &str = "127.0.0.1";

    #[test]
    fn delay_grows_per_address_and_is_bounded() {
        let t = throttle();
        let a: IpAddr = A.parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let mut now = Instant::now();
        let mut delays = Vec::new();
        for _ in 0..6 {
            let d = t.failure(a, None, now);
            delays.push(d.as_millis());
            // One connection: waits for its answer, then tries again.
            now += d;
            assert_eq!(t.admit(a, now), Admission::After(Duration::ZERO));
        }
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(t.failure(b, None, now).as_millis(), 100, "other addresses are unaffected");
        assert_eq!(t.failure(a, None, now + Duration::from_secs(61)).as_millis(), 100, "window expired");
    }

    #[test]
    fn parallel_connections_from_one_address_guess_no_faster_than_one() {
        // 170 connections, each retrying as soon as it is answered, for 15.6 s of simulated time.
        let t = throttle();
        let ip: IpAddr = A.parse().unwrap();
        let start = Instant::now();
        let end = start + Duration::from_millis(15_600);
        let mut ready = vec![start; 170];
        let mut guesses = 0;
        let mut step = start;
        while step < end {
            for at in ready.iter_mut().filter(|at| **at <= step) {
                match t.admit(ip, step) {
                    Admission::Refused => *at = step + Duration::from_millis(10),
                    Admission::After(wait) => {
                        guesses += 1;
                        *at = step + wait + t.failure(ip, Some("victim"), step + wait);
                    }
                }
            }
            step += Duration::from_millis(10);
        }
        // Today's probe made 510 guesses in 15.6 s this way. Now: the first burst and about one per second.
        assert!(guesses <= 170 + 20, "{guesses} guesses");
        let after_burst = guesses - 170;
        assert!(after_burst <= 20, "{after_burst} guesses after the first burst");
    }

    #[test]
    fn another_accounts_success_resets_nothing_and_the_owner_elsewhere_is_not_delayed() {
        let t = throttle();
        let nat: IpAddr = A.parse().unwrap();
        let home: IpAddr = "192.0.2.7".parse().unwrap();
        let now = Instant::now();
        for i in 0..5 {
            t.failure(nat, Some("victim"), now + Duration::from_millis(i));
        }
        t.success("someone-else");
        assert_eq!(t.admit(nat, now), Admission::Refused, "a success from behind the NAT reset the address");
        // The owner, from home: admitted at once (its password is checked; success is never delayed).
        assert_eq!(t.admit(home, now), Admission::After(Duration::ZERO));
        // A wrong guess at the victim from another address still waits for the account's count.
        assert_eq!(t.failure(home, Some("victim"), now), Duration::from_millis(1000));
        t.success("victim");
        assert_eq!(t.failure(home, Some("victim"), now + Duration::from_secs(2)), Duration::from_millis(200));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let t = throttle();
        let now = Instant::now();
        for i in 0..5u16 {
            let ip: IpAddr = format!("2001:db8:1:2::{i:x}").parse().unwrap();
            t.failure(ip, None, now);
        }
        assert_eq!(t.admit("2001:db8:1:2:ffff::1".parse().unwrap(), now), Admission::Refused);
        assert_eq!(t.admit("2001:db8:1:3::1".parse().unwrap(), now), Admission::After(Duration::ZERO));
    }
}
